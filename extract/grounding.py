"""Align evidence quotes to character spans of the original document.

The model writes the quote; this module finds where it stands. Matching goes
from strict to loose and stops at the first hit:

* ``exact``      the quote is a substring of the original text;
* ``normalised`` equal after folding case, whitespace and line breaks, end-of-line
  hyphenation, ligatures, dashes and quote marks (as PDF text needs);
* ``fuzzy``      the best approximate substring scores at least
  ``FUZZY_THRESHOLD`` (rapidfuzz ``partial_ratio`` on the normalised texts);
* ``not_found``  none of the above.

Spans always index the *original* text (``text[start:end]``), whatever
characters it holds. When a quote occurs several times, the first occurrence at
or after the previous quote of the same fact is taken, else the first in the
document: deterministic, and it keeps a fact's quotes together.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel
from rapidfuzz import fuzz

from .normalize import expand_spinal_levels, numbers_in

FUZZY_THRESHOLD = 90.0
_MIN_FUZZY_LEN = 12  # shorter quotes must match exactly or after normalisation

_FOLD = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u00ad": "",
    "\u00b5": "\u03bc",
}


class MatchStatus(str, Enum):
    exact = "exact"
    normalised = "normalised"
    fuzzy = "fuzzy"
    not_found = "not_found"


@dataclass(frozen=True)
class Alignment:
    quote: str
    status: MatchStatus
    start: int | None = None
    end: int | None = None
    score: float = 0.0
    occurrences: int = 0

    @property
    def grounded(self) -> bool:
        return self.status is not MatchStatus.not_found


class NormalisedText:
    """A folded copy of a text with a map from each folded char to its original index."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        index: list[int] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            # end-of-line hyphenation: "compres-\nsion" -> "compression"
            if ch in "-\u00ad\u2010" and i + 1 < n and text[i + 1] in "\r\n":
                j = i + 1
                while j < n and text[j].isspace():
                    j += 1
                if j < n and text[j].islower() and chars and chars[-1].isalpha():
                    i = j
                    continue
            if ch.isspace():
                if chars and chars[-1] != " ":
                    chars.append(" ")
                    index.append(i)
                i += 1
                continue
            for out in _FOLD.get(ch, ch).casefold():
                chars.append(out)
                index.append(i)
            i += 1
        if chars and chars[-1] == " ":
            chars.pop()
            index.pop()
        self.text = "".join(chars)
        self.index = index

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span for folded [start, end)."""
        return self.index[start], self.index[end - 1] + 1


def fold(text: str) -> str:
    return NormalisedText(text).text


def _all_occurrences(haystack: str, needle: str) -> list[int]:
    out, pos = [], haystack.find(needle)
    while pos != -1:
        out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


def _pick(positions: list[int], after: int) -> int:
    later = [p for p in positions if p >= after]
    return later[0] if later else positions[0]


class Aligner:
    """Aligns quotes against one document; build once per document."""

    def __init__(self, text: str, fuzzy_threshold: float = FUZZY_THRESHOLD) -> None:
        self.text = text
        self.threshold = fuzzy_threshold
        self._norm: NormalisedText | None = None

    @property
    def norm(self) -> NormalisedText:
        if self._norm is None:
            self._norm = NormalisedText(self.text)
        return self._norm

    def align(self, quote: str, after: int = 0) -> Alignment:
        quote = quote.strip()
        if not quote:
            return Alignment(quote, MatchStatus.not_found)
        hits = _all_occurrences(self.text, quote)
        if hits:
            start = _pick(hits, after)
            return Alignment(quote, MatchStatus.exact, start, start + len(quote), 100.0, len(hits))
        folded = fold(quote)
        if not folded:
            return Alignment(quote, MatchStatus.not_found)
        norm = self.norm
        hits = _all_occurrences(norm.text, folded)
        if hits:
            after_norm = bisect_left(norm.index, after)
            k = _pick(hits, after_norm)
            start, end = norm.span(k, k + len(folded))
            return Alignment(quote, MatchStatus.normalised, start, end, 100.0, len(hits))
        if len(folded) >= _MIN_FUZZY_LEN and norm.text:
            res = fuzz.partial_ratio_alignment(folded, norm.text, score_cutoff=self.threshold)
            if res is not None and res.dest_end > res.dest_start:
                start, end = norm.span(res.dest_start, res.dest_end)
                while start < end and self.text[start].isspace():
                    start += 1
                return Alignment(quote, MatchStatus.fuzzy, start, end, round(res.score, 1), 1)
        return Alignment(quote, MatchStatus.not_found)


# --------------------------------------------------------------------------- facts


@dataclass
class GroundedFact:
    """One fact of an extraction with the alignment of each of its quotes."""

    path: str
    alignments: list[Alignment]
    number_mismatches: list[str] = field(default_factory=list)

    @property
    def grounded(self) -> bool:
        return bool(self.alignments) and all(a.grounded for a in self.alignments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "grounded": self.grounded,
            "number_mismatches": self.number_mismatches,
            "quotes": [
                {**asdict(a), "status": a.status.value, "quote": a.quote} for a in self.alignments
            ],
        }


@dataclass
class GroundingStats:
    facts: int = 0
    quotes: int = 0
    exact: int = 0
    normalised: int = 0
    fuzzy: int = 0
    not_found: int = 0
    ungrounded_facts: int = 0
    number_mismatches: int = 0

    def add(self, other: GroundingStats) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    @property
    def rate(self) -> float | None:
        return None if not self.facts else (self.facts - self.ungrounded_facts) / self.facts


def iter_facts(obj: Any, path: str = "") -> Iterator[tuple[str, BaseModel]]:
    """Every pydantic object in a tree that carries an ``evidence`` list, with its path."""
    if isinstance(obj, BaseModel):
        if (
            isinstance(getattr(obj, "evidence", None), list)
            and "evidence" in type(obj).model_fields
        ):
            yield path or "$", obj
        for name in type(obj).model_fields:
            if name != "evidence":
                yield from iter_facts(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from iter_facts(item, f"{path}[{i}]")


_NUMBER_FIELDS = ("value", "raw", "dose", "frequency", "when")


def number_mismatches(fact: BaseModel) -> list[str]:
    """Values whose numbers are not written in the fact's own quotes.

    Checks numbers in ``value``/``raw``/``dose``/``frequency``/``when`` and in
    nested spans, and that spinal ``levels`` follow from the levels quoted.
    """
    quotes = " ".join(getattr(fact, "evidence", []) or [])
    quoted = numbers_in(quotes)
    problems: list[str] = []

    def check(label: str, value: Any) -> None:
        if isinstance(value, bool) or value is None:
            return
        text = f"{value:g}" if isinstance(value, float | int) else str(value)
        missing = sorted(numbers_in(text) - quoted)
        if missing:
            problems.append(f"{label}={text!r}: {', '.join(missing)} not in the quote")

    for name in _NUMBER_FIELDS:
        if name in type(fact).model_fields:
            check(name, getattr(fact, name))
    for name in type(fact).model_fields:
        child = getattr(fact, name)
        if (
            isinstance(child, BaseModel)
            and "raw" in type(child).model_fields
            and not hasattr(child, "evidence")
        ):
            check(f"{name}.raw", child.raw)
    levels = getattr(fact, "levels", None)
    if levels:
        allowed = set(expand_spinal_levels(quotes))
        extra = [lv for lv in levels if lv not in allowed]
        if extra:
            problems.append(f"levels={levels}: {', '.join(extra)} not in the quoted levels")
    return problems


def ground(extraction: BaseModel, text: str, aligner: Aligner | None = None) -> list[GroundedFact]:
    """Align every quote of every fact in ``extraction`` against ``text``."""
    aligner = aligner or Aligner(text)
    out: list[GroundedFact] = []
    for path, fact in iter_facts(extraction):
        after = 0
        alignments = []
        for quote in fact.evidence:
            a = aligner.align(quote, after)
            if a.end is not None:
                after = a.start or 0
            alignments.append(a)
        if not alignments:
            continue
        out.append(GroundedFact(path, alignments, number_mismatches(fact)))
    return out


def stats(facts: list[GroundedFact]) -> GroundingStats:
    s = GroundingStats(facts=len(facts))
    for f in facts:
        s.ungrounded_facts += not f.grounded
        s.number_mismatches += bool(f.number_mismatches)
        for a in f.alignments:
            s.quotes += 1
            setattr(s, a.status.value, getattr(s, a.status.value) + 1)
    return s


def ungrounded_message(facts: list[GroundedFact], limit: int = 10) -> str:
    """Feedback for a re-ask: names each quote that is not in the report."""
    lines = []
    for f in facts:
        for a in f.alignments:
            if not a.grounded:
                lines.append(f"- {f.path}: quote not found in the report: {a.quote!r}")
    more = len(lines) - limit
    text = "\n".join(lines[:limit]) + (f"\n- … and {more} more" if more > 0 else "")
    return (
        "These evidence quotes do not occur in the report. Copy each quote character "
        "for character from the report text, or drop the item if the report does not "
        "state it:\n" + text
    )
