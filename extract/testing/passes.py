"""Crafted answers for every pass of a multi-pass extraction, cut from one complete answer.

``CraftedPasses`` is a responder for ``FakeOpenAIServer``. It is given, per
document, the text and one complete *crafted* answer (a test's own answer, or a
hand-made gold label — never a model's output) and answers each request with
the part of that answer the request asks for, the way a faithful reader would:

* the fields are the properties of the requested tool;
* the range of the report is the text between the prompt's data markers, found
  in the document; a fact is kept when one of its quotes lies in that range
  (with only those quotes), so overlapping chunks answer the same fact twice;
* a planning pass ("planning pass" in the system message) answers the plan
  fields and a roster: each unit's label and quotes of where it starts (the
  first quote of each stretch of the text that describes it);
* a fill pass for one unit (its label between « » in the system message)
  answers that unit's fields; any other request answers the whole answer.

An answer longer than ``budget`` tokens (estimated as characters / 4, as the
crafted usage figures are) is cut and sent with ``finish_reason: "length"``,
like a real server at ``max_tokens``; a tool name OpenAI would refuse gets its
HTTP 400. Every request is kept in ``seen``.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from caseextract.documents import tidy
from caseextract.grounding.evidence import quotes_in
from caseextract.llm.responses import as_chat_request
from caseextract.testing.server import Reply, crafted_error, crafted_tool_completion

_REPORT = re.compile(r"<<<REPORT\n(.*)\nREPORT>>>", re.S)
_LABEL = re.compile(r"«(.+?)»")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
REGION_GAP = 3000  # characters between two stretches describing one unit


def _key(label: str) -> str:
    return re.sub(r"[\W_]+", "", label.casefold())


@dataclass
class Request:
    """What one request asked for (as the crafted server read it)."""

    tool: str
    fields: list[str]
    kind: str  # plan, fill or whole
    label: str | None
    start: int
    end: int
    truncated: bool = False


@dataclass
class CraftedPasses:
    cases: list[tuple[str, dict[str, Any]]]  # (document text, complete crafted answer)
    unit_field: str | None = "patients"
    budget: int | None = None  # answer tokens before the crafted cut
    model: str = "crafted-model"
    seen: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tidy = [(tidy(text), text, answer) for text, answer in self.cases]

    # -- reading the request -----------------------------------------------------

    def _locate(self, chunk: str) -> tuple[str, dict[str, Any], int, int]:
        head = chunk[:300]
        for tidied, text, answer in self._tidy:
            if chunk and tidied.find(head) != -1:
                start = max(0, text.find(head))
                return text, answer, start, min(len(text), start + len(chunk))
        raise LookupError("the crafted server knows no document holding this text")

    # -- cutting the answer -------------------------------------------------------

    def _positions(self, text: str, quote: str, start: int, end: int) -> int | None:
        at = text.find(quote, start)
        return at if at != -1 and at + len(quote) <= end else None

    def _cut(self, value: Any, text: str, start: int, end: int) -> Any:
        """``value`` with only the facts stated in ``text[start:end]``."""
        if isinstance(value, list):
            kept = [self._cut(v, text, start, end) for v in value]
            return [v for v in kept if v is not None]
        if not isinstance(value, dict):
            return value
        out = {k: self._cut(v, text, start, end) for k, v in value.items() if k != "evidence"}
        if "evidence" in value:
            quotes = [
                q for q in value["evidence"] if self._positions(text, q, start, end) is not None
            ]
            if not quotes and value["evidence"]:
                return None
            out["evidence"] = quotes
        return out

    def _roster(self, units: list[dict[str, Any]], text: str, start: int, end: int) -> list[Any]:
        roster = []
        for unit in units:
            found = sorted(
                (at, q)
                for q in quotes_in(unit)
                if (at := self._positions(text, q, start, end)) is not None
            )
            if not found:
                continue
            marks, last = [], None
            for at, quote in found:
                if last is None or at - last > REGION_GAP:
                    marks.append(quote)
                last = at
            roster.append({"label": unit.get("label"), "evidence": marks})
        return roster

    def answer(self, payload: dict[str, Any]) -> tuple[Request, dict[str, Any]]:
        payload = as_chat_request(payload)  # a /v1/responses request reads the same
        messages = payload.get("messages") or []
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        fn = (payload.get("tools") or [{}])[0].get("function", {})
        fields = list((fn.get("parameters") or {}).get("properties", {}))
        match = _REPORT.search(user)
        text, full, start, end = self._locate(match.group(1) if match else "")
        label_match = _LABEL.search(system) if "multi-pass" in system else None
        label = label_match.group(1) if label_match else None
        kind = (
            "plan" if "planning pass" in system else "fill" if "multi-pass" in system else "whole"
        )
        source: dict[str, Any] = full
        if label is not None and self.unit_field:
            units = full.get(self.unit_field) or []
            source = next((u for u in units if _key(str(u.get("label"))) == _key(label)), {})
        out: dict[str, Any] = {}
        for name in fields:
            if kind == "plan" and name == self.unit_field:
                out[name] = self._roster(full.get(name) or [], text, start, end)
            elif name in source:
                out[name] = self._cut(source[name], text, start, end)
        return Request(fn.get("name", ""), fields, kind, label, start, end), out

    def __call__(self, payload: dict[str, Any], _index: int) -> Reply:
        for tool in payload.get("tools") or []:
            name = str(tool.get("function", {}).get("name", ""))
            # OpenAI's rule for tools[].function.name: a-z, A-Z, 0-9, underscores and
            # dashes, at most 64 (https://platform.openai.com/docs/api-reference/chat/create)
            if not _TOOL_NAME.fullmatch(name):
                return crafted_error(400, f"Invalid 'tools[0].function.name': {name!r}")
        request, out = self.answer(payload)
        args = json.dumps(out)
        prompt = len(json.dumps(payload.get("messages"))) + len(json.dumps(payload.get("tools")))
        completion = len(args) // 4 + 1
        finish = "tool_calls"
        if self.budget is not None and completion > self.budget:
            args, completion, finish = args[: self.budget * 4], self.budget, "length"
            request.truncated = True
        with self._lock:
            self.seen.append(request)
        body = crafted_tool_completion(
            args,
            tool_name=request.tool,
            model=self.model,
            finish_reason=finish,
            prompt_tokens=prompt // 4 + 1,
            completion_tokens=completion,
        )
        return Reply(body=body)
