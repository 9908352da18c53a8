"""A loopback server that enforces the OpenAI API's documented request rules.

``ConformanceServer`` is a ``FakeOpenAIServer`` whose every request is first
checked against the rules the OpenAI API and Azure OpenAI document (each rule
below cites its page); a request the real API would refuse is refused with the
same status, error body and code. A request that passes gets a *crafted* answer
(never a model's output) in the shape its mode asks for; in a strict mode the
answer carries every property, ``null`` where nothing was found, as a strict
model's does. Usage reports ``cached_tokens`` once a request repeats an earlier
request's prefix (tools + first message), as the prompt cache does, and
``reasoning_tokens`` for reasoning models; both figures are crafted.

``check_strict_schema`` is the strict-subset check on its own, for tests.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from caseextract.testing.server import (
    FakeOpenAIServer,
    Reply,
    crafted_text_completion,
    crafted_tool_completion,
)

DOCS_STRICT = "https://platform.openai.com/docs/guides/structured-outputs#supported-schemas"
DOCS_CHAT = "https://platform.openai.com/docs/api-reference/chat/create"
DOCS_REASONING = "https://platform.openai.com/docs/guides/reasoning"
DOCS_CACHING = "https://platform.openai.com/docs/guides/prompt-caching"
DOCS_AZURE = "https://learn.microsoft.com/azure/ai-foundry/openai/reference"


@dataclass(frozen=True)
class ModelSpec:
    family: str  # "reasoning" or "chat"
    max_output: int  # completion tokens, from each model's page on platform.openai.com/docs/models
    efforts: tuple[str, ...] = ()


MODELS: dict[str, ModelSpec] = {
    "gpt-4o-mini": ModelSpec("chat", 16384),
    "gpt-4.1-mini": ModelSpec("chat", 32768),
    "gpt-5-mini": ModelSpec("reasoning", 128000, ("minimal", "low", "medium", "high")),
    "gpt-5": ModelSpec("reasoning", 128000, ("minimal", "low", "medium", "high")),
    "o4-mini": ModelSpec("reasoning", 100000, ("low", "medium", "high")),
    "o3": ModelSpec("reasoning", 100000, ("low", "medium", "high")),
}

# https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
# Keywords a strict schema may use ("Supported schemas" and "Supported
# properties"); anything else is refused with "'<keyword>' is not permitted".
STRICT_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "enum",
        "const",
        "$ref",
        "$defs",
        "definitions",
        "description",
        "title",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
# https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
# limit: objects nest at most 10 levels deep
STRICT_MAX_DEPTH = 10
# https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
# limit: 5,000 object properties in all
STRICT_MAX_PROPERTIES = 5000


def api_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> Reply:
    """The OpenAI API's error envelope: message, type, param, code.

    https://platform.openai.com/docs/guides/error-codes
    """
    err = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Reply(status=status, body={"error": err})


def azure_error(status: int, code: str, message: str) -> Reply:
    """Azure OpenAI's error envelope: a code and a message.

    https://learn.microsoft.com/azure/ai-foundry/openai/reference
    """
    return Reply(status=status, body={"error": {"code": code, "message": message}})


# ------------------------------------------------------------------ strict schemas


def check_strict_schema(schema: Any) -> str | None:
    """The first reason the strict subset refuses ``schema`` (as the API words it), or None."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
        # the root is an object schema, never a union
        got = schema.get("type") if isinstance(schema, dict) else None
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    count = [0]
    return _check_node(schema, (), 0, count)


def _check_node(node: Any, ctx: tuple[str, ...], depth: int, count: list[int]) -> str | None:
    if not isinstance(node, dict):
        return None
    where = f"In context={ctx!r}, "
    for key in node:
        # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
        # unsupported keywords
        if key not in STRICT_KEYWORDS:
            return f"{where}'{key}' is not permitted."
    # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
    # nesting limit
    if depth > STRICT_MAX_DEPTH:
        return f"{where}schema nesting exceeds {STRICT_MAX_DEPTH} levels."
    if node.get("type") == "object" or "properties" in node:
        props = node.get("properties", {})
        count[0] += len(props)
        # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
        # size limit
        if count[0] > STRICT_MAX_PROPERTIES:
            return f"{where}more than {STRICT_MAX_PROPERTIES} properties."
        # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
        # every object closes itself with additionalProperties false
        if node.get("additionalProperties") is not False:
            return f"{where}'additionalProperties' is required to be supplied and to be false."
        # https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
        # every property is listed in required (optional = union with null)
        missing = [name for name in props if name not in (node.get("required") or [])]
        if missing:
            return (
                f"{where}'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
        for name, prop in props.items():
            if found := _check_node(prop, (*ctx, "properties", name), depth + 1, count):
                return found
    if "items" in node and (found := _check_node(node["items"], (*ctx, "items"), depth + 1, count)):
        return found
    for i, alt in enumerate(node.get("anyOf", [])):
        if found := _check_node(alt, (*ctx, "anyOf", str(i)), depth, count):
            return found
    for name, sub in (node.get("$defs") or {}).items():
        if found := _check_node(sub, (*ctx, "$defs", name), 0, count):
            return found
    return None


def _strict_rules(payload: dict[str, Any]) -> Reply | None:
    for i, tool in enumerate(payload.get("tools") or []):
        fn = tool.get("function") or {}
        if fn.get("strict") is True and (problem := check_strict_schema(fn.get("parameters"))):
            name = fn.get("name")
            return api_error(
                400,
                f"Invalid schema for function '{name}': {problem}",
                f"tools[{i}].function.parameters",
                "invalid_function_parameters",
            )
    fmt = payload.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        if spec.get("strict") is True and (problem := check_strict_schema(spec.get("schema"))):
            return api_error(
                400,
                f"Invalid schema for response_format '{spec.get('name')}': {problem}",
                "response_format",
                "invalid_json_schema",
            )
    if fmt.get("type") == "json_object":
        # https://platform.openai.com/docs/api-reference/chat/create (response_format)
        # JSON mode needs the word JSON in the messages
        text = json.dumps(payload.get("messages") or []).lower()
        if "json" not in text:
            return api_error(
                400,
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'.",
                "messages",
            )
    return None


# ------------------------------------------------------------------ parameters


def _parameter_rules(payload: dict[str, Any], spec: ModelSpec) -> Reply | None:
    if spec.family == "reasoning":
        # https://platform.openai.com/docs/api-reference/chat/create (max_tokens)
        # max_tokens is refused by reasoning models (o-series, GPT-5.x)
        if "max_tokens" in payload:
            return api_error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        # https://platform.openai.com/docs/guides/reasoning
        # reasoning models take only the default temperature (1)
        temperature = payload.get("temperature")
        if temperature is not None and temperature != 1:
            return api_error(
                400,
                f"Unsupported value: 'temperature' does not support {temperature} with this "
                "model. Only the default (1) value is supported.",
                "temperature",
                "unsupported_value",
            )
        effort = payload.get("reasoning_effort")
        # https://platform.openai.com/docs/api-reference/chat/create (reasoning_effort)
        # the values each reasoning model supports
        if effort is not None and effort not in spec.efforts:
            supported = ", ".join(f"'{e}'" for e in spec.efforts)
            return api_error(
                400,
                f"Unsupported value: 'reasoning_effort' does not support '{effort}' with this "
                f"model. Supported values are: {supported}.",
                "reasoning_effort",
                "unsupported_value",
            )
    elif "reasoning_effort" in payload:
        # https://platform.openai.com/docs/api-reference/chat/create (reasoning_effort)
        # the parameter exists for reasoning models only
        return api_error(
            400,
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "reasoning_effort",
            "unsupported_parameter",
        )
    budget = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if isinstance(budget, int) and budget > spec.max_output:
        # https://platform.openai.com/docs/api-reference/chat/create (max_completion_tokens)
        # at most the model's output limit
        return api_error(
            400,
            f"max_tokens is too large: {budget}. This model supports at most "
            f"{spec.max_output} completion tokens, whereas you provided {budget}.",
            "max_tokens",
            "invalid_value",
        )
    return None


# ------------------------------------------------------------------ the server


def _fill_strict(data: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """``data`` with every property the strict ``schema`` lists (null, or [] for a list)."""
    while "$ref" in schema:
        schema = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
    if isinstance(data, dict):
        alt = next(
            (a for a in schema.get("anyOf", []) if isinstance(a, dict) and "properties" in a), None
        )
        node = alt or schema
        for name, prop in node.get("properties", {}).items():
            if name in data:
                data[name] = _fill_strict(data[name], prop, defs)
            else:
                data[name] = [] if prop.get("type") == "array" else None
    elif isinstance(data, list):
        items = schema.get("items")
        if items is None:
            items = next((a["items"] for a in schema.get("anyOf", []) if "items" in a), None)
        if isinstance(items, dict):
            data = [_fill_strict(x, items, defs) for x in data]
    return data


class ConformanceServer(FakeOpenAIServer):
    """OpenAI-compatible loopback server that refuses what the real API refuses.

    ``answer(payload)`` gives the crafted answer (a dict) for a request that
    passes. ``deployments`` maps Azure deployment names to model names; Azure
    requests go to ``/openai/deployments/<name>/chat/completions?api-version=…``
    at ``endpoint``, OpenAI requests to ``/v1/chat/completions`` at ``base_url``.
    """

    REASONING_TOKENS = 320  # crafted: what each reasoning answer "spent" thinking

    def __init__(
        self,
        answer: Callable[[dict[str, Any]], dict[str, Any]],
        models: dict[str, ModelSpec] | None = None,
        deployments: dict[str, str] | None = None,
    ) -> None:
        super().__init__(self._respond)
        self.pass_headers = True
        self.answer = answer
        self.models = dict(MODELS if models is None else models)
        self.deployments = dict(deployments or {})
        self.refused: list[dict[str, Any]] = []  # error bodies sent, in order
        self._prefixes: set[str] = set()
        self._cache_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The Azure resource endpoint (``--azure-endpoint``)."""
        return self.base_url.removesuffix("/v1")

    def _respond(self, payload: dict[str, Any], _index: int) -> Reply:
        reply = self._check(payload)
        if reply is not None:
            self.refused.append(reply.body)
            return reply
        return self._answer(payload)

    def _route(self, payload: dict[str, Any]) -> tuple[str | None, Reply | None]:
        url = urlparse(payload.get("_path", ""))
        headers = {k.lower(): v for k, v in (payload.get("_headers") or {}).items()}
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["openai", "deployments"] and parts[3:] == ["chat", "completions"]:
            # https://learn.microsoft.com/azure/ai-foundry/openai/reference
            # api-key header; api-version query parameter (without it: 404)
            if not headers.get("api-key") and not headers.get("authorization"):
                return None, azure_error(
                    401,
                    "401",
                    "Access denied due to invalid subscription key or wrong API endpoint.",
                )
            if not parse_qs(url.query).get("api-version"):
                return None, azure_error(404, "404", "Resource not found")
            model = self.deployments.get(parts[2])
            # https://learn.microsoft.com/azure/ai-foundry/openai/reference
            # the deployment named in the path must exist
            if model is None:
                return None, azure_error(
                    404,
                    "DeploymentNotFound",
                    "The API deployment for this resource does not exist.",
                )
            return model, None
        if url.path.rstrip("/") != "/v1/chat/completions":
            return None, api_error(404, f"Invalid URL (POST {url.path})", None, "not_found")
        # https://platform.openai.com/docs/api-reference/chat/create
        # bearer auth
        if not headers.get("authorization", "").startswith("Bearer "):
            return None, api_error(401, "You didn't provide an API key.", None, "invalid_api_key")
        model = payload.get("model", "")
        if model not in self.models:
            return None, api_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                None,
                "model_not_found",
            )
        return model, None

    def _check(self, payload: dict[str, Any]) -> Reply | None:
        model, refused = self._route(payload)
        if refused is not None:
            return refused
        spec = self.models.get(model or "")
        if spec is None:
            return api_error(404, f"The model `{model}` does not exist.", None, "model_not_found")
        payload["_model"] = model
        return _parameter_rules(payload, spec) or _strict_rules(payload)

    def _usage(self, payload: dict[str, Any]) -> tuple[int, int, int]:
        """Crafted (prompt, cached, reasoning) token counts; ~4 characters a token."""
        messages = payload.get("messages") or []
        prefix = json.dumps(payload.get("tools") or payload.get("response_format") or "")
        prefix += json.dumps(messages[:1])
        prompt = (len(prefix) + len(json.dumps(messages[1:]))) // 4
        prefix_tokens = len(prefix) // 4
        with self._cache_lock:
            seen = prefix in self._prefixes
            self._prefixes.add(prefix)
        # https://platform.openai.com/docs/guides/prompt-caching
        # prompts of 1,024 tokens or more; hits in 128-token steps
        cached = (prefix_tokens // 128) * 128 if seen and prefix_tokens >= 1024 else 0
        spec = self.models[payload["_model"]]
        return prompt, cached, self.REASONING_TOKENS if spec.family == "reasoning" else 0

    def _answer(self, payload: dict[str, Any]) -> Reply:
        data = json.loads(json.dumps(self.answer(payload)))
        tools = payload.get("tools") or []
        schema = None
        if tools and (tools[0].get("function") or {}).get("strict"):
            schema = tools[0]["function"]["parameters"]
        fmt = payload.get("response_format") or {}
        if (fmt.get("json_schema") or {}).get("strict"):
            schema = fmt["json_schema"]["schema"]
        if schema is not None:
            data = _fill_strict(data, schema, schema.get("$defs", {}))
        text = json.dumps(data)
        model = payload["_model"]
        if tools:
            body = crafted_tool_completion(data, tools[0]["function"]["name"], model)
        elif fmt.get("type") in ("json_schema", "json_object"):
            body = crafted_text_completion(text, model)
        else:
            body = crafted_text_completion(f"```json\n{text}\n```", model)
        prompt, cached, reasoning = self._usage(payload)
        completion = len(text) // 4 + reasoning
        body["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        return Reply(body=body)
