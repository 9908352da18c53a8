"""The OpenAI API's request rules per model, for both endpoints, with the API's error bodies.

``chat_rules(payload, spec)`` and ``responses_rules(payload, spec)`` return the
``Reply`` the API gives a request it refuses (``None`` when it passes), for
``/v1/chat/completions`` and ``/v1/responses``. Each rule cites its source beside
it: a documentation page, the openai SDK's types, or a public issue quoting the
API's own error body. What each family accepts is the cited table in
``caseextract.llm.models``. ``ConformanceServer`` applies these rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from caseextract.llm.models import Family
from caseextract.testing.server import Reply
from caseextract.testing.strict_rules import check_strict_schema

DOCS_CHAT = "https://platform.openai.com/docs/api-reference/chat/create"
DOCS_RESPONSES = "https://platform.openai.com/docs/api-reference/responses/create"
DOCS_REASONING = "https://developers.openai.com/api/docs/guides/reasoning"
DOCS_ERRORS = "https://platform.openai.com/docs/guides/error-codes"


@dataclass(frozen=True)
class ModelSpec:
    """What a served model accepts (its family's row in ``caseextract.llm.models``)."""

    family: str  # "reasoning" or "chat"
    max_output: int  # output tokens, from each model's page on platform.openai.com/docs/models
    efforts: tuple[str, ...] = ()
    chat_tools: str = "always"  # see caseextract.llm.models

    @classmethod
    def of(cls, row: Family) -> ModelSpec:
        return cls(row.kind, row.max_output, row.efforts, row.chat_tools)

    def tools_on_chat(self, effort: str | None) -> bool:
        probe = Family("", "", self.family, 0, False, self.efforts, self.chat_tools, 0, "")
        return probe.tools_on_chat(effort)


def api_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> Reply:
    """The OpenAI API's error envelope: message, type, param, code (DOCS_ERRORS)."""
    err = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return Reply(status=status, body={"error": err})


def _effort_rule(effort: Any, spec: ModelSpec, param: str) -> Reply | None:
    if effort is None:
        return None
    if spec.family != "reasoning":
        # DOCS_CHAT (reasoning_effort): the parameter exists for reasoning models only
        return api_error(
            400,
            f"Unsupported parameter: '{param}' is not supported with this model.",
            param,
            "unsupported_parameter",
        )
    if effort not in spec.efforts:
        # DOCS_REASONING ("Not all reasoning models support every value"); the values per
        # family: caseextract.llm.models (each row cites where they were measured)
        supported = ", ".join(f"'{e}'" for e in spec.efforts)
        return api_error(
            400,
            f"Unsupported value: '{param}' does not support '{effort}' with this model. "
            f"Supported values are: {supported}.",
            param,
            "unsupported_value",
        )
    return None


def _temperature_rule(payload: dict[str, Any], spec: ModelSpec) -> Reply | None:
    temperature = payload.get("temperature")
    if spec.family == "reasoning" and temperature is not None and temperature != 1:
        # DOCS_REASONING: reasoning models take only the default temperature (1)
        return api_error(
            400,
            f"Unsupported value: 'temperature' does not support {temperature} with this "
            "model. Only the default (1) value is supported.",
            "temperature",
            "unsupported_value",
        )
    return None


def _budget_rule(budget: Any, spec: ModelSpec, param: str) -> Reply | None:
    if isinstance(budget, int) and budget > spec.max_output:
        # DOCS_CHAT (max_completion_tokens), DOCS_RESPONSES (max_output_tokens): at most
        # the model's output limit
        return api_error(
            400,
            f"{param} is too large: {budget}. This model supports at most "
            f"{spec.max_output} completion tokens, whereas you provided {budget}.",
            param,
            "invalid_value",
        )
    return None


def _tools_rule(payload: dict[str, Any], spec: ModelSpec, model: str) -> Reply | None:
    tools = [t for t in payload.get("tools") or [] if t.get("type") == "function"]
    effort = payload.get("reasoning_effort")
    if not tools or spec.tools_on_chat(effort):
        return None
    if spec.chat_tools == "without_effort":
        # gpt-5.2/5.4/5.5 with an effort: the API's body quoted in pipecat-ai/pipecat#4043
        # and openai/openai-openapi#541 (param reasoning_effort, code null)
        message = (
            f"Function tools with reasoning_effort are not supported for {model} in "
            "/v1/chat/completions. Please use /v1/responses instead."
        )
    else:
        # gpt-5.6-* / gpt-6-*: refused even with no effort sent (their default applies),
        # accepted only with 'none': GEMISIS/leviath#333 and BerriAI/litellm#34569 quote
        # the body; Wei-Shaw/sub2api#6740 the same for gpt-6-astra
        message = (
            f"Function tools with reasoning_effort are not supported for {model} in "
            "/v1/chat/completions. To use function tools, use /v1/responses or set "
            "reasoning_effort to 'none'."
        )
    return api_error(400, message, "reasoning_effort", None)


def _chat_strict_rules(payload: dict[str, Any]) -> Reply | None:
    for i, tool in enumerate(payload.get("tools") or []):
        fn = tool.get("function") or {}
        if fn.get("strict") is True and (problem := check_strict_schema(fn.get("parameters"))):
            return api_error(
                400,
                f"Invalid schema for function '{fn.get('name')}': {problem}",
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
    mentions_json = "json" in json.dumps(payload.get("messages") or []).lower()
    # DOCS_CHAT (response_format): JSON mode needs the word JSON in the messages
    if fmt.get("type") == "json_object" and not mentions_json:
        return api_error(
            400,
            "'messages' must contain the word 'json' in some form, to use "
            "'response_format' of type 'json_object'.",
            "messages",
        )
    return None


def chat_rules(payload: dict[str, Any], spec: ModelSpec, model: str) -> Reply | None:
    """Why ``/v1/chat/completions`` refuses ``payload`` for a model of ``spec``, or None."""
    if spec.family == "reasoning" and "max_tokens" in payload:
        # DOCS_CHAT (max_tokens): refused by reasoning models (o-series, GPT-5.x, GPT-6)
        return api_error(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    budget = payload.get("max_completion_tokens", payload.get("max_tokens"))
    return (
        _temperature_rule(payload, spec)
        or _effort_rule(payload.get("reasoning_effort"), spec, "reasoning_effort")
        or _budget_rule(budget, spec, "max_tokens")
        or _tools_rule(payload, spec, model)
        or _chat_strict_rules(payload)
    )


# Chat Completions names the Responses API does not take (DOCS_RESPONSES: the budget is
# max_output_tokens, the effort reasoning.effort, structure text.format, input not messages);
# the SDK's types/responses/response_create_params.py has none of these.
_NOT_RESPONSES = ("max_tokens", "max_completion_tokens", "reasoning_effort", "response_format")


def _responses_strict_rules(payload: dict[str, Any]) -> Reply | None:
    for i, tool in enumerate(payload.get("tools") or []):
        if tool.get("type") != "function":
            continue
        # openai SDK types/responses/function_tool_param.py: name, parameters and strict
        # at the tool's top level (no "function" wrapper on this endpoint)
        if "function" in tool or not tool.get("name"):
            return api_error(
                400,
                f"Missing required parameter: 'tools[{i}].name'.",
                f"tools[{i}].name",
                "missing_required_parameter",
            )
        if tool.get("strict") is not False and (
            problem := check_strict_schema(tool.get("parameters"))
        ):
            # DOCS_RESPONSES (tools[].strict): strict unless told otherwise
            return api_error(
                400,
                f"Invalid schema for function '{tool['name']}': {problem}",
                f"tools[{i}].parameters",
                "invalid_function_parameters",
            )
    fmt = (payload.get("text") or {}).get("format") or {}
    strict_format = fmt.get("type") == "json_schema" and fmt.get("strict") is True
    if strict_format and (problem := check_strict_schema(fmt.get("schema"))):
        return api_error(
            400,
            f"Invalid schema for response_format '{fmt.get('name')}': {problem}",
            "text.format.schema",
            "invalid_json_schema",
        )
    return None


def responses_rules(payload: dict[str, Any], spec: ModelSpec) -> Reply | None:
    """Why ``/v1/responses`` refuses ``payload`` for a model of ``spec``, or None."""
    for name in _NOT_RESPONSES:
        if name in payload:
            # DOCS_RESPONSES: unknown parameters are refused by name
            return api_error(
                400, f"Unsupported parameter: '{name}'.", name, "unsupported_parameter"
            )
    if "messages" in payload or "input" not in payload:
        return api_error(
            400, "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    effort = (payload.get("reasoning") or {}).get("effort")
    return (
        _temperature_rule(payload, spec)
        or _effort_rule(effort, spec, "reasoning.effort")
        or _budget_rule(payload.get("max_output_tokens"), spec, "max_output_tokens")
        or _responses_strict_rules(payload)
    )
