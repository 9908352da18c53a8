"""The Responses API path (``/v1/responses``): the request as sent, the answer as counted.

instructor 1.17's ``Mode.RESPONSES_TOOLS`` (instructor/v2/providers/openai/handlers.py,
read in the installed package) builds a forced function tool from the response
model *and* a ``text.format`` json_schema of the same schema, keeps the messages
as ``messages`` (its own client maps them to ``input``), parses the first
``function_call`` output item, and re-asks by appending user messages. It sends
no ``strict`` flag on the tool. ``request`` turns what instructor built into the
request this project sends, just before it goes:

- ``input`` is the messages (role/content items are Responses input messages);
- one output path: a strict function tool (``strict: true``, the schema through
  ``strict.strict_schema``, as ``--mode tools_strict`` on Chat Completions) forced
  by ``tool_choice``; instructor's duplicate ``text.format`` is dropped;
- ``max_output_tokens``, ``reasoning.effort`` and temperature from ``params``;
- ``prompt_cache_key``: ``caseextract-`` and a hash of the system message (the
  rendered prompt: one per prompt version) and the tool (the schema), so every
  document of a run shares it and a new prompt version or schema gets a new one
  (https://platform.openai.com/docs/guides/prompt-caching). Chat Completions
  requests carry none, so the requests recorded before stay byte-identical.

``received`` counts one response once (``input_tokens``, ``output_tokens``,
``input_tokens_details.cached_tokens`` / ``cache_write_tokens``,
``output_tokens_details.reasoning_tokens``: the SDK's types/responses/response_usage.py);
``check`` refuses what is not an answer: ``incomplete_details.reason ==
"max_output_tokens"`` is ``OutputTruncated``, a ``refusal`` content item or a
``content_filter`` stop is ``ModelRefused``, more than one function call or a call
to another tool is ``ValidationFailed`` (re-asked).

Documentation: https://platform.openai.com/docs/api-reference/responses/create,
https://developers.openai.com/api/docs/guides/migrate-to-responses.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

from caseextract.errors import ModelRefused, OutputTruncated, ValidationFailed
from caseextract.llm.failures import short, truncated_message
from caseextract.llm.params import RequestParams
from caseextract.llm.strict import restore_text, strict_schema
from caseextract.llm.types import CallStats, ModelSettings

Restore = Callable[[Any], bool]


def _tool(kwargs: dict[str, Any], wire: dict[str, Any] | None) -> dict[str, Any]:
    """The strict function tool: from the wired model's schema when known (the same
    bytes as the Chat Completions tool), else from the tool instructor built."""
    built = next((t for t in kwargs.get("tools") or [] if t.get("type") == "function"), {})
    name = (wire or {}).get("name") or built.get("name")
    params = (wire or {}).get("parameters") or built.get("parameters") or {}
    tool: dict[str, Any] = {"type": "function", "name": name}
    description = (wire or {}).get("description") or built.get("description")
    if description:
        tool["description"] = description
    tool["parameters"] = strict_schema(params)
    tool["strict"] = True
    return tool


def request(
    kwargs: dict[str, Any],
    settings: ModelSettings,
    params: RequestParams,
    wire: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Restore]:
    """The Responses request for what instructor built, and the answer's restorer.

    ``wire`` is the wired response model's ``openai_schema`` (name, description,
    parameters); the restorer drops the nulls strict mode forced (``strict``)."""
    out = {k: v for k, v in kwargs.items() if k not in ("messages", "tools", "text")}
    out.setdefault("model", settings.model)
    out["input"] = copy.deepcopy(list(kwargs.get("messages") or []))
    tool = _tool(kwargs, wire)
    out["tools"] = [tool]
    out["tool_choice"] = {"type": "function", "name": tool["name"]}
    out = params.apply_responses(out)
    out.setdefault("prompt_cache_key", prompt_cache_key(out["input"], tool))
    original = (wire or {}).get("parameters") or {}

    def restore(response: Any) -> bool:
        changed = False
        for item in function_calls(response):
            if original and isinstance(item.arguments, str):
                fixed = restore_text(item.arguments, original)
                changed |= fixed != item.arguments
                item.arguments = fixed
        return changed

    return out, restore


def prompt_cache_key(messages: list[Any], tool: dict[str, Any]) -> str:
    """Stable per prompt (the system message) and schema (the tool), never per document."""
    system = [
        m.get("content") for m in messages if isinstance(m, dict) and m.get("role") == "system"
    ]
    text = json.dumps([system[:1], tool], sort_keys=True, ensure_ascii=False)
    return "caseextract-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def function_calls(response: Any) -> list[Any]:
    return [
        i
        for i in getattr(response, "output", None) or []
        if getattr(i, "type", "") == "function_call"
    ]


def _refusal(response: Any) -> str | None:
    for item in getattr(response, "output", None) or []:
        for part in getattr(item, "content", None) or []:
            if getattr(part, "type", "") == "refusal":
                return str(getattr(part, "refusal", "") or "refused")
    return None


def received(stats: CallStats, response: Any) -> None:
    """Count one response once (whatever instructor totals)."""
    usage = getattr(response, "usage", None)
    stats.attempts += 1
    if usage is not None:
        inputs = getattr(usage, "input_tokens_details", None)
        outputs = getattr(usage, "output_tokens_details", None)
        stats.prompt_tokens += getattr(usage, "input_tokens", 0) or 0
        stats.completion_tokens += getattr(usage, "output_tokens", 0) or 0
        stats.cached_tokens += getattr(inputs, "cached_tokens", 0) or 0
        stats.cache_write_tokens += getattr(inputs, "cache_write_tokens", 0) or 0
        stats.reasoning_tokens += getattr(outputs, "reasoning_tokens", 0) or 0
    stats.model = getattr(response, "model", None) or stats.model
    incomplete = getattr(response, "incomplete_details", None)
    reason = getattr(incomplete, "reason", None)
    stats.finish_reason = reason or getattr(response, "status", None)


def check(settings: ModelSettings, response: Any, tool_name: str | None) -> None:
    """Refuse what is not an answer (see the module docstring)."""
    incomplete = getattr(response, "incomplete_details", None)
    reason = getattr(incomplete, "reason", None)
    if reason == "max_output_tokens":
        outputs = getattr(getattr(response, "usage", None), "output_tokens_details", None)
        reasoning = getattr(outputs, "reasoning_tokens", 0) or 0
        raise OutputTruncated(truncated_message(settings, reasoning), completion=response)
    refusal = _refusal(response)
    if refusal is not None or reason == "content_filter":
        text = refusal or "content filter"
        raise ModelRefused(f"the model refused: {short(text, 200)}", completion=response)
    calls = function_calls(response)
    names = [str(getattr(c, "name", "?")) for c in calls]
    if len(calls) > 1:
        raise ValidationFailed(
            f"the model made {len(calls)} tool calls ({short(', '.join(names), 200)}); "
            f"one call to {tool_name!r} is expected",
            completion=response,
        )
    if calls and tool_name and names[0] != tool_name:
        raise ValidationFailed(
            f"the model called {short(names[0], 100)!r}, not {tool_name!r}", completion=response
        )


def arguments(response: Any) -> str | None:
    """The first function call's arguments (or the output text), for errors and grounding."""
    calls = function_calls(response)
    if calls:
        return getattr(calls[0], "arguments", None)
    text = getattr(response, "output_text", None)
    return text if isinstance(text, str) else None


def as_chat_request(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses request read as the Chat Completions request it stands for (messages,
    ``tools[].function``, ``tool_choice.function``), for what reads either kind the same
    way: fingerprints, briefs, pass names. A chat request is returned as it is."""
    if not isinstance(body, dict) or "input" not in body or "messages" in body:
        return body
    out = {k: v for k, v in body.items() if k not in ("input", "tools", "tool_choice")}
    out["messages"] = body.get("input") or []
    tools = []
    for tool in body.get("tools") or []:
        fn = {k: v for k, v in tool.items() if k != "type"}
        tools.append({"type": "function", "function": fn})
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("name"):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    return out


def imported_response(arguments: str, tool: str | None, answered_by: str, ident: str, now: int):
    """The Responses answer that carries one imported answer (no usage: not measured)."""
    if tool:
        output = [
            {
                "type": "function_call",
                "id": "fc_imported",
                "call_id": "call_imported",
                "name": tool,
                "arguments": arguments,
                "status": "completed",
            }
        ]
    else:
        text = [{"type": "output_text", "text": arguments, "annotations": []}]
        output = [{"type": "message", "id": "msg_imported", "role": "assistant", "content": text}]
    return {
        "id": ident,
        "object": "response",
        "created_at": now,
        "status": "completed",
        "incomplete_details": None,
        "model": answered_by,
        "output": output,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
    }
