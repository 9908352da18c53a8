"""Checks and repairs on one chat completion, before instructor parses it.

* ``repair_control_characters`` escapes raw control characters inside the JSON of
  tool-call arguments or content (``escape_control_characters``); the recording
  keeps the raw answer.
* ``check_tool_calls``: one call, to a tool the request offered, or
  ``ValidationFailed`` (re-asked like any invalid answer).
* ``usage_details``: cached prompt tokens and reasoning tokens of one usage block.
* ``completion_text``: the answer's text, shortened, for error context.
"""

from __future__ import annotations

import re
from typing import Any

from caseextract.errors import ValidationFailed
from caseextract.llm.failures import short


def completion_text(completion: Any, limit: int = 4000) -> str:
    """The text of a raw completion (tool-call arguments or content), shortened."""
    if hasattr(completion, "output"):  # a Responses API answer: its function call's arguments
        calls = [i for i in completion.output or [] if getattr(i, "type", "") == "function_call"]
        text = (
            getattr(calls[0], "arguments", "") if calls else getattr(completion, "output_text", "")
        )
        return short(str(text or ""), limit)
    try:
        message = completion.choices[0].message
        calls = getattr(message, "tool_calls", None) or []
        text = calls[0].function.arguments if calls else (message.content or "")
    except (AttributeError, IndexError, TypeError):
        text = str(completion)
    return short(text, limit)


def escape_control_characters(text: str) -> str:
    """``text`` with raw control characters inside JSON strings escaped.

    JSON forbids U+0000–U+001F unescaped inside a string; a grammar-constrained
    local server (llama.cpp) lets them through, and pydantic's parser then rejects
    the whole answer. Outside strings they are whitespace or errors and are left
    for the parser to judge. Nothing else is changed.
    """
    out: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch < " ":
                out.append(_CONTROL_ESCAPES.get(ch) or f"\\u{ord(ch):04x}")
                continue
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_CONTROL = re.compile(r"[\x00-\x1f]")


def repair_control_characters(message: Any) -> bool:
    """Escape raw control characters in a message's JSON (tool-call arguments and
    content) in place; True when anything changed. The recording keeps the raw answer."""
    changed = False
    for call in getattr(message, "tool_calls", None) or []:
        fn = getattr(call, "function", None)
        args = getattr(fn, "arguments", None)
        if isinstance(args, str) and _CONTROL.search(args):
            fixed = escape_control_characters(args)
            changed |= fixed != args
            fn.arguments = fixed
    content = getattr(message, "content", None)
    if isinstance(content, str) and content.lstrip()[:1] in ("{", "[") and _CONTROL.search(content):
        fixed = escape_control_characters(content)
        changed |= fixed != content
        message.content = fixed
    return changed


def check_tool_calls(message: Any, request: dict[str, Any], completion: Any) -> None:
    """One call, to a tool the request offered: anything else is not an answer."""
    offered = [
        (tool.get("function") or {}).get("name")
        for tool in request.get("tools") or []
        if isinstance(tool, dict)
    ]
    calls = getattr(message, "tool_calls", None) or []
    if not offered or not calls:
        return
    names = [str(getattr(getattr(c, "function", None), "name", "?")) for c in calls]
    if len(calls) > 1:
        raise ValidationFailed(
            f"the model made {len(calls)} tool calls ({short(', '.join(names), 200)}); "
            f"one call to {offered[0]!r} is expected",
            completion=completion,
        )
    if names[0] not in offered:
        raise ValidationFailed(
            f"the model called {short(names[0], 100)!r}, not {offered[0]!r}", completion=completion
        )


def usage_details(usage: Any) -> tuple[int, int]:
    """(cached prompt tokens, reasoning tokens) of one completion's usage; 0 when absent."""
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt, "cached_tokens", None) or 0
    reasoning = getattr(completion, "reasoning_tokens", None) or 0
    return int(cached), int(reasoning)
