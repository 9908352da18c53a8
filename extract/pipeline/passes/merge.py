"""Merging the answers of several passes into one extraction, without duplicates.

Each pass answers a part of the response model for a range of the document.
``Merger.annotate`` marks every fact of an answer (a dict with ``evidence``)
with where its quotes stand in the *original* text (``_spans``, found from the
pass's offset on) and which pass gave it (``_origin``). ``merge_value`` then
folds answers together:

* objects: field by field; a value the first answer left empty is taken from
  the next (first non-empty wins);
* lists: an item is a duplicate of one already kept when both come from
  different passes, have similar names (rapidfuzz ratio ≥ ``SIMILAR`` on their
  ``fact_label``) and their quotes overlap in the document (or share a quote);
  duplicates are merged (evidence united), other items appended; items with
  the same name (ratio ≥ ``SAME_NAME``) whose quotes stand apart are merged too
  when no field of theirs disagrees (a fact quoted in the text and in a table);
* strings in lists (evidence, degrees …) are kept once, compared folded.

``finish`` removes the marks and returns, per fact path, the document offset
to ground its quotes from (so a quote that occurs twice is placed where the
pass that read it found it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from caseextract.grounding import Aligner, GroundedFact, fold, iter_models, judge_fact
from caseextract.records import fact_label
from pydantic import BaseModel
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

SIMILAR = 85.0
SAME_NAME = 95.0
_MARKS = ("_spans", "_origin", "_at")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _overlap(a: list[list[int]], b: list[list[int]]) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b)


def _similar(a: str, b: str, threshold: float = SIMILAR) -> bool:
    if not a or not b:
        return False
    return fuzz.ratio(a, b, processor=default_process) >= threshold


def label_key(label: str) -> str:
    """A roster label compared loosely: "Case #2", "CASE 2" and "case 2." are one."""
    return re.sub(r"[\W_]+", "", label.casefold())


class Merger:
    def __init__(self, aligner: Aligner) -> None:
        self.aligner = aligner

    def spans(self, quotes: Iterable[str], offset: int) -> list[list[int]]:
        out = []
        after = offset
        for quote in quotes:
            a = self.aligner.align(quote, after)
            if a.start is not None and a.end is not None:
                out.append([a.start, a.end])
                after = a.start
        return out

    def annotate(self, value: Any, offset: int, origin: int) -> Any:
        """``value`` (a pass's answer as JSON data) with every fact marked."""
        if isinstance(value, list):
            return [self.annotate(v, offset, origin) for v in value]
        if not isinstance(value, dict):
            return value
        out = {k: self.annotate(v, offset, origin) for k, v in value.items()}
        evidence = value.get("evidence")
        if isinstance(evidence, list):
            spans = self.spans([q for q in evidence if isinstance(q, str)], offset)
            out.update(_spans=spans, _origin=origin, _at=spans[0][0] if spans else offset)
        return out


def duplicate(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return fold(a) == fold(b)
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return a == b
    if "_origin" in a and a.get("_origin") == b.get("_origin"):
        return False  # one pass listed both: two facts
    name_a, name_b = fact_label(a, negate=False), fact_label(b, negate=False)
    if "_spans" in a and "_spans" in b:
        quotes_a = {fold(q) for q in a.get("evidence") or []}
        quotes_b = {fold(q) for q in b.get("evidence") or []}
        same_place = _overlap(a["_spans"], b["_spans"]) or bool(quotes_a & quotes_b)
        if same_place:
            return _similar(name_a, name_b)
        # one fact quoted in two places read by different passes (the case text and a
        # summary table): the same name and no field that disagrees
        return _similar(name_a, name_b, SAME_NAME) and not _conflict(a, b)
    if name_a or name_b:
        return _similar(name_a, name_b, 90.0)
    return {k: v for k, v in a.items() if k not in _MARKS} == {
        k: v for k, v in b.items() if k not in _MARKS
    }


def _conflict(a: Any, b: Any) -> bool:
    """Whether two answers for one fact state different values somewhere."""
    if _empty(a) or _empty(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (k for k in a if k in b and k != "evidence" and k not in _MARKS)
        return any(_conflict(a[k], b[k]) for k in keys)
    if isinstance(a, list) or isinstance(b, list):
        return False
    return fold(str(a)) != fold(str(b))


def merge_lists(a: list[Any], b: list[Any]) -> list[Any]:
    out = list(a)
    for item in b:
        for i, kept in enumerate(out):
            if duplicate(kept, item):
                out[i] = merge_value(kept, item)
                break
        else:
            out.append(item)
    return out


def merge_value(a: Any, b: Any) -> Any:
    if _empty(a):
        return a if b is None else b
    if _empty(b):
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = {}
        for key in [*a, *(k for k in b if k not in a)]:
            if key == "_spans":
                out[key] = a.get(key, []) + [s for s in b.get(key, []) if s not in a.get(key, [])]
            elif key in _MARKS:
                out[key] = a.get(key, b.get(key))
            else:
                out[key] = merge_value(a.get(key), b.get(key))
        return out
    if isinstance(a, list) and isinstance(b, list):
        return merge_lists(a, b)
    return a


def merge_all(values: Iterable[Any]) -> Any:
    out: Any = None
    for value in values:
        out = merge_value(out, value)
    return out


def merge_roster(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Roster entries from several passes, one per label (their quotes united)."""
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        key = label_key(str(entry.get("label", "")))
        if key in out:
            kept = out[key]
            kept["evidence"] = merge_lists(kept.get("evidence") or [], entry.get("evidence") or [])
            kept["_spans"] = kept.get("_spans", []) + entry.get("_spans", [])
        else:
            out[key] = dict(entry)
    return list(out.values())


def finish(value: Any, path: str = "", hints: dict[str, int] | None = None) -> Any:
    """``value`` without merge marks; fills ``hints`` (fact path → offset)."""
    if isinstance(value, list):
        return [finish(v, f"{path}[{i}]", hints) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if hints is not None and "_at" in value:
        hints[path or "$"] = int(value["_at"])
    return {
        k: finish(v, f"{path}.{k}" if path else k, hints)
        for k, v in value.items()
        if k not in _MARKS
    }


def ground(value: BaseModel, aligner: Aligner, hints: dict[str, int]) -> list[GroundedFact]:
    """``grounding.ground`` (alignment and judgement, article values too) with each
    fact's quotes searched from its hint on: the start of the chunk it was read in."""
    from caseextract.grounding import values as metadata

    out: list[GroundedFact] = []
    for path, obj in iter_models(value):
        out.extend(metadata.ground_values(path, obj, aligner))
        fact = judge_fact(obj, aligner, path or "$", after=hints.get(path, 0))
        if fact is not None:
            out.append(fact)
    return out
