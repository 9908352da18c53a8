"""A reviewed document: its facts, their problems, and the decisions applied to them.

Facts are found generically: every object in a record's extraction that carries
an ``evidence`` list is a fact, at a path such as ``patients[0].findings[2]``
(the paths grounding writes). Problems are read generically from the record's
``grounding.facts`` entry: ungrounded, any quote whose status is not ``exact``,
number mismatches, and any other field the grounding step adds (a non-empty
list, ``True``, or a ``*status`` that is not ok) — so new checks slot in.

Decisions never change the record: the corrected extraction is the record's
extraction with the latest decision per fact applied (edits and additions set
values; rejections drop the fact — list items are removed, single facts become
``null`` — after all edits, so paths stay stable while reviewing).
"""

from __future__ import annotations

import copy
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from caseextract.errors import ReviewError
from caseextract.grounding import Aligner, GroundedFact, MatchStatus, number_mismatches
from caseextract.records import ResultRecord, fact_label
from caseextract.review.decisions import Decision
from pydantic import BaseModel, ValidationError

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
_KNOWN = {"path", "quotes", "grounded", "number_mismatches", "review"}
_OK_STATUS = {None, "", "exact", "ok", "grounded", "supported", "consistent", "present"}
STATES = ("undecided", "accepted", "rejected", "edited", "added")


# --------------------------------------------------------------------- paths


def parse_path(path: str) -> list[str | int]:
    if path in ("", "$"):
        return []
    parts: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        if m.start() != pos:
            raise ReviewError(f"bad fact path {path!r}")
        parts.append(m.group(1) if m.group(1) else int(m.group(2)))
        pos = m.end()
    if pos != len(path):
        raise ReviewError(f"bad fact path {path!r}")
    return parts


def format_path(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "$"


def get_at(obj: Any, parts: list[str | int]) -> Any:
    for p in parts:
        try:
            obj = obj[p]
        except (KeyError, IndexError, TypeError):
            return None
    return obj


def _set_at(obj: Any, parts: list[str | int], value: Any) -> None:
    if not parts:
        raise ReviewError("cannot replace the whole extraction")
    parent = get_at(obj, parts[:-1])
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(parent, list):
            raise ReviewError(f"{format_path(parts[:-1])} is not a list")
        while len(parent) <= last:
            parent.append(None)
        parent[last] = value
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise ReviewError(f"{format_path(parts[:-1])} is not an object")


def fact_type(model: type[BaseModel], parts: list[str | int]) -> type[BaseModel]:
    """The pydantic class of the fact at ``parts`` (list indices may be absent)."""
    current: type[BaseModel] = model
    for p in parts:
        if isinstance(p, int):
            continue
        info = current.model_fields.get(p)
        inner = _model_in(info.annotation) if info else None
        if inner is None:
            raise ReviewError(f"{p!r} is not a field holding facts in {current.__name__}")
        current = inner
    return current


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def fact_lists(model: type[BaseModel], extraction: dict[str, Any]) -> list[str]:
    """Paths of the lists a new fact can be added to, e.g. ``patients[0].findings``."""
    out: list[str] = []

    def walk(cls: type[BaseModel], node: Any, parts: list[str | int]) -> None:
        for name, info in cls.model_fields.items():
            inner = _model_in(info.annotation)
            if inner is None:
                continue
            is_list = typing.get_origin(info.annotation) is list
            value = node.get(name) if isinstance(node, dict) else None
            if is_list and "evidence" in inner.model_fields:
                out.append(format_path([*parts, name]))
            elif is_list and isinstance(value, list):
                for i, item in enumerate(value):
                    walk(inner, item, [*parts, name, i])
            elif not is_list and isinstance(value, dict):
                walk(inner, value, [*parts, name])

    walk(model, extraction, [])
    return out


def main_field(cls: type[BaseModel]) -> str:
    """The first required text field of a fact class (what a selection names)."""
    for name, info in cls.model_fields.items():
        if name != "evidence" and info.is_required() and info.annotation is str:
            return name
    return "name"


# --------------------------------------------------------------------- facts


def fact_problems(entry: dict[str, Any] | None) -> list[str]:
    """What a grounding entry says is wrong with a fact (empty: nothing known)."""
    if entry is None:
        return []
    problems: list[str] = []
    if entry.get("grounded") is False:
        problems.append("ungrounded")
    for q in entry.get("quotes") or []:
        if q.get("status") not in _OK_STATUS:
            problems.append(f"quote {q.get('status')}")
        for key, value in q.items():
            if key not in ("quote", "status", "start", "end", "score", "occurrences"):
                problems.extend(_flag(key, value))
    problems.extend(entry.get("number_mismatches") or [])
    if entry.get("review"):  # grounded, but only through a weak cue (grounding.status)
        problems.append(f"for review: {entry['review']}")
    for key, value in entry.items():
        if key not in _KNOWN:
            problems.extend(_flag(key, value))
    return list(dict.fromkeys(problems))


def _flag(key: str, value: Any) -> list[str]:
    if value is True:
        return [key]
    if isinstance(value, list) and value:
        return [f"{key}: {v}" for v in value]
    if isinstance(value, str) and key.endswith("status") and value not in _OK_STATUS:
        return [value]
    return []


def evidence_paths(node: Any, parts: list[str | int] | None = None) -> list[str]:
    """Every object carrying an ``evidence`` list, in document order of the tree."""
    parts = parts or []
    out: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("evidence"), list):
            out.append(format_path(parts))
        for key, value in node.items():
            if key != "evidence":
                out.extend(evidence_paths(value, [*parts, key]))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            out.extend(evidence_paths(item, [*parts, i]))
    return out


@dataclass
class FactView:
    path: str
    value: dict[str, Any]
    grounding: dict[str, Any] | None
    problems: list[str]
    state: str = "undecided"
    decision: Decision | None = None
    history: list[Decision] = field(default_factory=list)

    @property
    def label(self) -> str:
        return fact_label(self.value) or self.path

    @property
    def group(self) -> str:
        parts = [p for p in parse_path(self.path) if isinstance(p, str)]
        return parts[-1] if parts else "extraction"

    @property
    def spans(self) -> list[tuple[int, int, str]]:
        out = []
        for q in (self.grounding or {}).get("quotes") or []:
            if q.get("start") is not None and q.get("end") is not None:
                out.append((int(q["start"]), int(q["end"]), str(q.get("status"))))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "group": self.group,
            "value": self.value,
            "grounding": self.grounding,
            "problems": self.problems,
            "state": self.state,
            "by": self.decision.reviewer if self.decision else None,
        }


_STATE_OF = {"accept": "accepted", "reject": "rejected", "edit": "edited", "add": "added"}


def latest(decisions: list[Decision]) -> dict[str, Decision]:
    out: dict[str, Decision] = {}
    for d in decisions:
        out[d.path] = d
    return out


def document_facts(record: ResultRecord, decisions: list[Decision]) -> list[FactView]:
    """Every fact of a record with its current state; problem facts first."""
    extraction = record.extraction or {}
    entries = {f.get("path"): f for f in (record.grounding.facts if record.grounding else [])}
    last = latest(decisions)
    history: dict[str, list[Decision]] = {}
    for d in decisions:
        history.setdefault(d.path, []).append(d)
    views: list[FactView] = []
    for path in evidence_paths(extraction):
        value = get_at(extraction, parse_path(path))
        views.append(FactView(path, value, entries.get(path), fact_problems(entries.get(path))))
    for d in decisions:
        if d.action == "add" and d.path not in {v.path for v in views}:
            views.append(FactView(d.path, {}, None, []))
    for v in views:
        d = last.get(v.path)
        v.history = history.get(v.path, [])
        if d is None:
            continue
        v.decision, v.state = d, _STATE_OF[d.action]
        if d.action in ("edit", "add") and d.after:
            v.value = d.after.get("value") or v.value
            v.grounding = d.after.get("grounding")
            v.problems = fact_problems(v.grounding)
        if d.action == "accept" and v.history:
            edits = [h for h in v.history if h.action in ("edit", "add")]
            if edits and edits[-1].after:
                v.value = edits[-1].after.get("value") or v.value
                v.grounding = edits[-1].after.get("grounding")
                v.problems = fact_problems(v.grounding)
    order = {p: i for i, p in enumerate(v.path for v in views)}
    views.sort(key=lambda v: (not v.problems, order[v.path]))
    return views


def corrected_extraction(record: ResultRecord, decisions: list[Decision]) -> dict[str, Any]:
    """The record's extraction with the decisions applied (the results are untouched)."""
    extraction = copy.deepcopy(record.extraction or {})
    views = document_facts(record, decisions)
    adds = sorted(
        (v for v in views if any(h.action == "add" for h in v.history)),
        key=lambda v: parse_path(v.path),
    )
    added = {v.path for v in adds}
    for v in views:
        if v.state in ("edited", "accepted") and v.path not in added and v.value:
            _set_at(extraction, parse_path(v.path), copy.deepcopy(v.value))
    for v in adds:
        _set_at(extraction, parse_path(v.path), copy.deepcopy(v.value))
    drops = [parse_path(v.path) for v in views if v.state == "rejected"]
    for parts in sorted(drops, key=lambda p: [str(x).zfill(8) for x in p], reverse=True):
        parent = get_at(extraction, parts[:-1])
        last = parts[-1]
        if isinstance(last, int) and isinstance(parent, list) and last < len(parent):
            del parent[last]
        elif isinstance(parent, dict):
            parent[last] = None
    _drop_holes(extraction)
    return extraction


def _drop_holes(node: Any) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _drop_holes(value)
    elif isinstance(node, list):
        node[:] = [x for x in node if x is not None]
        for value in node:
            _drop_holes(value)


# ----------------------------------------------------------- edits and grounding


def check_fact(
    model: type[BaseModel], path: str, value: dict[str, Any], text: str, after: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a fact against the response model and ground its evidence.

    Returns (normalised value, grounding entry); raises :class:`ReviewError`
    listing every invalid field or quote not found in the source.
    """
    parts = parse_path(path)
    cls = fact_type(model, parts)
    if not isinstance(value, dict):
        raise ReviewError("a fact is a JSON object")
    try:
        fact = cls.model_validate(value)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(x) for x in e['loc']) or cls.__name__}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ReviewError(f"not a valid {cls.__name__}", errors) from None
    aligner = Aligner(text)
    alignments = []
    for quote in getattr(fact, "evidence", []) or []:
        a = aligner.align(quote, after)
        if a.start is not None:
            after = a.start
        alignments.append(a)
    lost = [a.quote for a in alignments if a.status is MatchStatus.not_found]
    if lost:
        raise ReviewError(
            "evidence not found in the source", [f"quote not in the source: {q!r}" for q in lost]
        )
    entry = GroundedFact(path, alignments, number_mismatches(fact)).to_dict()
    return fact.model_dump(mode="json"), entry
