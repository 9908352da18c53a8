"""A loopback server that enforces the OpenAI API's documented request rules.

``ConformanceServer`` is a ``FakeOpenAIServer`` whose every request is first
checked against the rules the OpenAI API and Azure OpenAI document (the rules and
their citations: ``api_rules`` per endpoint, ``strict_rules`` for strict schemas);
a request the real API would refuse is refused with the same status, error body
and code. It serves both endpoints, ``/v1/chat/completions`` and ``/v1/responses``,
and Azure OpenAI at the v1 base URL (``/openai/v1/…``, no api-version) and the
dated deployment path (``/openai/deployments/<name>/chat/completions?api-version=…``).
A model whose announced shutdown date (``caseextract.llm.models.SHUTDOWNS``) has
passed answers 404 ``model_not_found``, as a retired model does.

A request that passes gets a *crafted* answer (never a model's output) in the
shape its endpoint and mode ask for; in a strict mode the answer carries every
property, ``null`` where nothing was found, as a strict model's does. Usage
reports cached tokens once a request repeats an earlier request's prefix (tools,
first message, ``prompt_cache_key``), as the prompt cache does, cache-write tokens
the first time (Responses), and reasoning tokens for reasoning models; all figures
are crafted.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

from caseextract.llm import models
from caseextract.testing.api_rules import ModelSpec, api_error, chat_rules, responses_rules
from caseextract.testing.server import (
    FakeOpenAIServer,
    Reply,
    crafted_function_call,
    crafted_response,
    crafted_text_completion,
    crafted_tool_completion,
)
from caseextract.testing.strict_rules import check_strict_schema

DOCS_CACHING = "https://platform.openai.com/docs/guides/prompt-caching"
DOCS_AZURE = "https://learn.microsoft.com/azure/ai-foundry/openai/reference"
DOCS_AZURE_V1 = "https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle"
# a retired model's answer: hkjang/node-red-contrib-openai#7 quotes the API's body
# ("The model `text-davinci-003` has been deprecated, learn more here: …", model_not_found)
RETIRED = "https://platform.openai.com/docs/deprecations"

__all__ = ["MODELS", "ConformanceServer", "ModelSpec", "api_error", "check_strict_schema"]


def _spec(name: str) -> ModelSpec:
    row = models.family_of(name)
    assert row is not None, name
    return ModelSpec.of(row)


# The models served, each with its family's row (caseextract.llm.models, cited per row).
# o4-mini and o3-mini are listed to be refused: their shutdown (2026-10-23) has passed.
SERVED = (
    "gpt-6-sol",
    "gpt-6-astra",
    "gpt-5.6-terra",
    "gpt-5.6-sol",
    "gpt-5.6-luna",
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.2",
    "gpt-5-mini",
    "gpt-5",
    "o3",
    "o4-mini",
    "o3-mini",
    "gpt-4.1-mini",
    "gpt-4o-mini",
)
MODELS: dict[str, ModelSpec] = {name: _spec(name) for name in SERVED}


def azure_error(status: int, code: str, message: str) -> Reply:
    """Azure OpenAI's error envelope: a code and a message (DOCS_AZURE)."""
    return Reply(status=status, body={"error": {"code": code, "message": message}})


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
    passes (``payload["messages"]`` holds the messages on either endpoint).
    ``deployments`` maps Azure deployment names to model names. ``today`` decides
    which announced shutdowns have passed (default: the real date).
    """

    REASONING_TOKENS = 320  # crafted: what each reasoning answer "spent" thinking

    def __init__(
        self,
        answer: Callable[[dict[str, Any]], dict[str, Any]],
        models: dict[str, ModelSpec] | None = None,
        deployments: dict[str, str] | None = None,
        today: dt.date | None = None,
    ) -> None:
        super().__init__(self._respond)
        self.pass_headers = True
        self.answer = answer
        self.models = dict(MODELS if models is None else models)
        self.deployments = dict(deployments or {})
        self.today = today
        self.refused: list[dict[str, Any]] = []  # error bodies sent, in order
        self._prefixes: set[str] = set()
        self._cache_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The Azure resource endpoint (``--azure-endpoint``)."""
        return self.base_url.removesuffix("/v1")

    @property
    def azure_v1(self) -> str:
        """The Azure v1 base URL (``https://NAME.openai.azure.com/openai/v1/``)."""
        return f"{self.endpoint}/openai/v1/"

    def _respond(self, payload: dict[str, Any], _index: int) -> Reply:
        reply = self._check(payload)
        if reply is not None:
            self.refused.append(reply.body)
            return reply
        return self._answer(payload)

    def _azure_auth(self, headers: dict[str, str]) -> Reply | None:
        # DOCS_AZURE: an api-key header (or a bearer token)
        if not headers.get("api-key") and not headers.get("authorization"):
            return azure_error(
                401, "401", "Access denied due to invalid subscription key or wrong API endpoint."
            )
        return None

    def _deployment(self, name: str) -> tuple[str | None, Reply | None]:
        model = self.deployments.get(name)
        # DOCS_AZURE: the deployment named (in the path, or as the v1 API's model) must exist
        if model is None:
            return None, azure_error(
                404, "DeploymentNotFound", "The API deployment for this resource does not exist."
            )
        return model, None

    def _route(self, payload: dict[str, Any]) -> tuple[str | None, str, Reply | None]:
        """(model, endpoint "chat" or "responses", refusal)."""
        url = urlparse(payload.get("_path", ""))
        headers = {k.lower(): v for k, v in (payload.get("_headers") or {}).items()}
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["openai", "deployments"] and parts[3:] == ["chat", "completions"]:
            if refused := self._azure_auth(headers):
                return None, "chat", refused
            # DOCS_AZURE: the dated path needs the api-version query parameter (else 404)
            if not parse_qs(url.query).get("api-version"):
                return None, "chat", azure_error(404, "404", "Resource not found")
            model, refused = self._deployment(parts[2])
            return model, "chat", refused
        if parts[:2] == ["openai", "v1"] and parts[2:] in (["chat", "completions"], ["responses"]):
            # DOCS_AZURE_V1: the v1 API (https://NAME.openai.azure.com/openai/v1/), no
            # api-version; the request's model names the deployment
            endpoint = "responses" if parts[2:] == ["responses"] else "chat"
            if refused := self._azure_auth(headers):
                return None, endpoint, refused
            model, refused = self._deployment(str(payload.get("model", "")))
            return model, endpoint, refused
        path = url.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/responses"):
            return None, "chat", api_error(404, f"Invalid URL (POST {url.path})", None, "not_found")
        endpoint = "responses" if path == "/v1/responses" else "chat"
        # https://platform.openai.com/docs/api-reference/authentication: bearer auth
        if not headers.get("authorization", "").startswith("Bearer "):
            return (
                None,
                endpoint,
                api_error(401, "You didn't provide an API key.", None, "invalid_api_key"),
            )
        return str(payload.get("model", "")), endpoint, None

    def _check(self, payload: dict[str, Any]) -> Reply | None:
        model, endpoint, refused = self._route(payload)
        payload["_endpoint"] = endpoint
        if refused is not None:
            return refused
        model = model or ""
        retired = models.shutdown_date(model)
        if retired and dt.date.fromisoformat(retired) <= (self.today or dt.date.today()):
            # RETIRED: a model past its shutdown date is gone (404 model_not_found)
            return api_error(
                404,
                f"The model `{model}` has been deprecated, learn more here: {RETIRED}",
                None,
                "model_not_found",
            )
        spec = self.models.get(model)
        if spec is None:
            return api_error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                None,
                "model_not_found",
            )
        payload["_model"] = model
        if endpoint == "responses":
            return responses_rules(payload, spec)
        return chat_rules(payload, spec, model)

    def _usage(self, payload: dict[str, Any]) -> tuple[int, int, int, int]:
        """Crafted (prompt, cached, cache-write, reasoning) token counts; ~4 characters a token."""
        messages = payload.get("messages") or payload.get("input") or []
        prefix = json.dumps(payload.get("tools") or payload.get("response_format") or "")
        prefix += json.dumps(messages[:1]) + str(payload.get("prompt_cache_key") or "")
        prompt = (len(prefix) + len(json.dumps(messages[1:]))) // 4
        prefix_tokens = len(prefix) // 4
        with self._cache_lock:
            seen = prefix in self._prefixes
            self._prefixes.add(prefix)
        # DOCS_CACHING: prompts of 1,024 tokens or more; hits in 128-token steps
        cacheable = (prefix_tokens // 128) * 128 if prefix_tokens >= 1024 else 0
        cached, written = (cacheable, 0) if seen else (0, cacheable)
        spec = self.models[payload["_model"]]
        return prompt, cached, written, self.REASONING_TOKENS if spec.family == "reasoning" else 0

    def _data(self, payload: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
        view = {**payload, "messages": payload.get("messages") or payload.get("input") or []}
        data = json.loads(json.dumps(self.answer(view)))
        if schema is not None:
            data = _fill_strict(data, schema, schema.get("$defs", {}))
        return data

    def _answer(self, payload: dict[str, Any]) -> Reply:
        if payload["_endpoint"] == "responses":
            return self._answer_responses(payload)
        tools = payload.get("tools") or []
        schema = None
        if tools and (tools[0].get("function") or {}).get("strict"):
            schema = tools[0]["function"]["parameters"]
        fmt = payload.get("response_format") or {}
        if (fmt.get("json_schema") or {}).get("strict"):
            schema = fmt["json_schema"]["schema"]
        data = self._data(payload, schema)
        text = json.dumps(data)
        model = payload["_model"]
        if tools:
            body = crafted_tool_completion(data, tools[0]["function"]["name"], model)
        elif fmt.get("type") in ("json_schema", "json_object"):
            body = crafted_text_completion(text, model)
        else:
            body = crafted_text_completion(f"```json\n{text}\n```", model)
        prompt, cached, written, reasoning = self._usage(payload)
        completion = len(text) // 4 + reasoning
        body["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }
        return Reply(body=body)

    def _answer_responses(self, payload: dict[str, Any]) -> Reply:
        tools = [t for t in payload.get("tools") or [] if t.get("type") == "function"]
        fmt = (payload.get("text") or {}).get("format") or {}
        schema = None
        if tools and tools[0].get("strict") is not False:
            schema = tools[0].get("parameters")
        elif fmt.get("type") == "json_schema" and fmt.get("strict"):
            schema = fmt.get("schema")
        data = self._data(payload, schema)
        text = json.dumps(data)
        if tools:
            output = [crafted_function_call(data, tools[0]["name"])]
        else:
            content = [{"type": "output_text", "text": text, "annotations": []}]
            output = [
                {"type": "message", "id": "msg_crafted", "role": "assistant", "content": content}
            ]
        prompt, cached, written, reasoning = self._usage(payload)
        completion = len(text) // 4 + reasoning
        body = crafted_response(output, payload["_model"], (prompt, completion))
        body["usage"]["input_tokens_details"] = {
            "cached_tokens": cached,
            "cache_write_tokens": written,
        }
        body["usage"]["output_tokens_details"] = {"reasoning_tokens": reasoning}
        return Reply(body=body)
