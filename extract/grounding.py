"""Align evidence quotes to character spans of the original document.

The model writes the quote; this module finds where it stands. Matching goes
from strict to loose and stops at the first hit:

* ``exact``      the quote is a substring of the original text;
* ``normalised`` equal after folding case, whitespace and line breaks, end-of-line
  hyphenation, ligatures, dashes and quote marks (as PDF text needs);
* ``fuzzy``      the best approximate substring scores at least
  ``FUZZY_THRESHOLD`` (rapidfuzz ``partial_ratio`` on the normalised texts);
* ``not_found``  none of the above.

A hit counts only at word boundaries: where the quote begins (ends) with a
letter or digit, the text must not continue that word before (after) it — a
"2" inside "T2" or a "1" inside "1st" is no match. A fuzzy hit is widened to
whole words and scored again. A quote that is found but carries no content
(``evidence.informative``) gets the status ``uninformative`` and no span.

Each fact then gets a status (``FactStatus``), from the first rule that applies:
``ungrounded`` (a quote not found), ``uninformative`` (a quote with no content),
``unsupported`` (the quotes do not state the fact's main value),
``assertion_conflict`` (they state it with the opposite assertion), else
``grounded``; the rules are in ``extract.evidence`` (content, main value,
support) and ``extract.assertion`` (negation). Article-level values a model
class lists in ``__grounded_values__`` (CaseReport: title, journal, year, DOI,
PMID, author names) carry no quotes: each value is looked up in the source
itself (``extract.metadata``) and is ``grounded``, ``ungrounded``, or
``from_prompt`` when it is not in the source but is in the prompt the model was
sent. The first three non-grounded statuses and both metadata failures are
re-asked (``needs_reask``); an assertion conflict and a number mismatch are
flagged only.

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

from . import assertion, evidence
from .normalize import expand_spinal_levels, numbers_in

FUZZY_THRESHOLD = 90.0
LEAD_CHARS = 60  # source text before a quote that the assertion check also reads
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
    uninformative = "uninformative"


class FactStatus(str, Enum):
    grounded = "grounded"
    ungrounded = "ungrounded"
    uninformative = "uninformative"
    unsupported = "unsupported"
    assertion_conflict = "assertion_conflict"
    from_prompt = "from_prompt"


REASK_STATUSES = frozenset(
    {
        FactStatus.ungrounded,
        FactStatus.uninformative,
        FactStatus.unsupported,
        FactStatus.from_prompt,
    }
)


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
        return self.status not in (MatchStatus.not_found, MatchStatus.uninformative)


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


def _wordish(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces (Thai, kana and
    CJK ideographs do not: any position between two of them is a boundary)."""
    if not ch.isalnum():
        return False
    code = ord(ch)
    return not (
        0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x2E80 <= code <= 0x9FFF  # CJK radicals, kana, ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions
    )


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` neither begins nor ends inside a word."""
    if _wordish(text[start]) and start > 0 and _wordish(text[start - 1]):
        return False
    return not (_wordish(text[end - 1]) and end < len(text) and _wordish(text[end]))


def _all_occurrences(haystack: str, needle: str) -> list[int]:
    """Start of every occurrence of ``needle`` at word boundaries."""
    out, pos, n = [], haystack.find(needle), len(needle)
    while pos != -1:
        if _bounded(haystack, pos, pos + n):
            out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and _wordish(text[start]) and _wordish(text[start - 1]):
        start -= 1
    while end < len(text) and _wordish(text[end - 1]) and _wordish(text[end]):
        end += 1
    return start, end


def _pick(positions: list[int], after: int) -> int:
    later = [p for p in positions if p >= after]
    return later[0] if later else positions[0]


class Aligner:
    """Aligns quotes against one document; build once per document."""

    def __init__(
        self, text: str, fuzzy_threshold: float = FUZZY_THRESHOLD, prompt: str = ""
    ) -> None:
        self.text = text
        self.threshold = fuzzy_threshold
        self.prompt = prompt  # what the model was sent, to name values copied from it
        self._norm: NormalisedText | None = None
        self.words: dict[str, tuple[str, list[int]]] = {}  # cache of extract.metadata

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
                ds, de = _widen(norm.text, res.dest_start, res.dest_end)
                score = fuzz.ratio(folded, norm.text[ds:de].strip())
                if score < self.threshold:
                    return Alignment(quote, MatchStatus.not_found)
                start, end = norm.span(ds, de)
                while start < end and self.text[start].isspace():
                    start += 1
                return Alignment(quote, MatchStatus.fuzzy, start, end, round(score, 1), 1)
        return Alignment(quote, MatchStatus.not_found)


# --------------------------------------------------------------------------- facts


@dataclass
class GroundedFact:
    """One fact of an extraction with the alignment of each of its quotes.

    ``kind`` is ``fact`` (an object with evidence quotes) or ``value`` (an
    article-level value grounded by itself; its one alignment is the value).
    """

    path: str
    alignments: list[Alignment]
    number_mismatches: list[str] = field(default_factory=list)
    status: FactStatus = FactStatus.grounded
    reason: str | None = None
    kind: str = "fact"

    @property
    def grounded(self) -> bool:
        return self.status is FactStatus.grounded

    @property
    def needs_reask(self) -> bool:
        return self.status in REASK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "status": self.status.value,
            "reason": self.reason,
            "grounded": self.grounded,
            "number_mismatches": self.number_mismatches,
            "quotes": [
                {**asdict(a), "status": a.status.value, "quote": a.quote} for a in self.alignments
            ],
        }


@dataclass
class GroundingStats:
    """Counts over every fact and article-level value (``facts`` counts both)."""

    facts: int = 0
    quotes: int = 0
    exact: int = 0
    normalised: int = 0
    fuzzy: int = 0
    not_found: int = 0
    ungrounded_facts: int = 0
    number_mismatches: int = 0
    uninformative: int = 0  # quotes found but carrying no content
    values: int = 0  # article-level values among ``facts``
    grounded: int = 0
    uninformative_facts: int = 0
    unsupported: int = 0
    assertion_conflicts: int = 0
    from_prompt: int = 0

    def add(self, other: GroundingStats) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    @property
    def flagged(self) -> int:
        return self.facts - self.grounded

    @property
    def rate(self) -> float | None:
        return None if not self.facts else self.grounded / self.facts

    def describe(self) -> str:
        """One line for people: every count, the new statuses included."""
        rate = "" if self.rate is None else f" ({self.rate:.0%})"
        return (
            f"{self.facts} facts and values ({self.values} article values): "
            f"{self.grounded} grounded{rate}, {self.ungrounded_facts} ungrounded "
            f"({self.from_prompt} copied from the prompt), {self.uninformative_facts} "
            f"uninformative, {self.unsupported} unsupported, {self.assertion_conflicts} "
            f"assertion conflicts; {self.number_mismatches} number mismatches; quotes exact "
            f"{self.exact} / normalised {self.normalised} / fuzzy {self.fuzzy} / not found "
            f"{self.not_found} / uninformative {self.uninformative}"
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroundingStats:
        """From a record; records written before the fact statuses count as before."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        out = cls(**known)
        if "grounded" not in data:
            out.grounded = out.facts - out.ungrounded_facts
        return out


def iter_facts(obj: Any, path: str = "") -> Iterator[tuple[str, BaseModel]]:
    """Every pydantic object in a tree that carries an ``evidence`` list, with its path."""
    for p, o in iter_models(obj, path):
        if isinstance(getattr(o, "evidence", None), list) and "evidence" in type(o).model_fields:
            yield p or "$", o


def iter_models(obj: Any, path: str = "") -> Iterator[tuple[str, BaseModel]]:
    """Every pydantic object in a tree, with its path."""
    if isinstance(obj, BaseModel):
        yield path, obj
        for name in type(obj).model_fields:
            if name != "evidence":
                yield from iter_models(getattr(obj, name), f"{path}.{name}" if path else name)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from iter_models(item, f"{path}[{i}]")


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


def _lead(text: str, alignment: Alignment) -> str:
    """The words before a located quote in its own clause of the source (at most
    ``LEAD_CHARS``): a reader who quotes "a prior history of pelvic pain" from
    "without a prior history of pelvic pain" has quoted a negated mention."""
    if alignment.start is None or not text:
        return ""
    before = text[max(0, alignment.start - LEAD_CHARS) : alignment.start]
    cut = max(before.rfind(c) for c in ".;:!?\n")
    return before[cut + 1 :]


def _judge(
    fact: BaseModel, alignments: list[Alignment], text: str = ""
) -> tuple[FactStatus, str | None]:
    """The fact's status from its aligned quotes (module docstring, first rule wins)."""
    missing = [a.quote for a in alignments if a.status is MatchStatus.not_found]
    if missing:
        return FactStatus.ungrounded, f"quote not found in the report: {missing[0]!r}"
    empty = [a.quote for a in alignments if a.status is MatchStatus.uninformative]
    if empty:
        return FactStatus.uninformative, f"quote carries no content: {empty[0]!r}"
    mains = evidence.main_values(fact)
    if not mains:
        return FactStatus.grounded, None
    quotes = "; ".join(a.quote for a in alignments)  # a clause break between quotes
    if all(evidence.support_reason(value, quotes) is None for _, value in mains):
        name, value = mains[0]
        return FactStatus.unsupported, f"its quotes do not state its {name} {value!r}"
    # the assertion is judged on each quote with what leads up to it in its clause
    in_context = "; ".join(_lead(text, a) + a.quote for a in alignments)
    conflict = assertion.assertion_conflict(fact, mains[0][1], in_context)
    if conflict:
        return FactStatus.assertion_conflict, conflict
    return FactStatus.grounded, None


def ground(extraction: BaseModel, text: str, aligner: Aligner | None = None) -> list[GroundedFact]:
    """Align and judge every fact and article-level value in ``extraction``."""
    from . import metadata  # it builds on this module

    aligner = aligner or Aligner(text)
    out: list[GroundedFact] = []
    for path, obj in iter_models(extraction):
        out.extend(metadata.ground_values(path, obj, aligner))
        fact = judge_fact(obj, aligner, path or "$")
        if fact is not None:
            out.append(fact)
    return out


def judge_fact(
    obj: BaseModel, aligner: Aligner, path: str = "$", after: int = 0
) -> GroundedFact | None:
    """One object with ``evidence``: its quotes aligned and its status; None without quotes.

    ``after``: where in the text to look first (a repeated quote takes the first
    occurrence from there; multi-pass passes the start of the chunk it read)."""
    fact_quotes = getattr(obj, "evidence", None)
    if not isinstance(fact_quotes, list) or "evidence" not in type(obj).model_fields:
        return None
    mains = evidence.main_values(obj)
    value = mains[0][1] if mains else None
    alignments = []
    for quote in fact_quotes:
        a = aligner.align(quote, after)
        if a.grounded and not evidence.informative(quote, value):
            a = Alignment(
                a.quote, MatchStatus.uninformative, score=a.score, occurrences=a.occurrences
            )
        if a.end is not None:
            after = a.start or 0
        alignments.append(a)
    if not alignments:
        return None
    status, reason = _judge(obj, alignments, aligner.text)
    return GroundedFact(path, alignments, number_mismatches(obj), status, reason)


def stats(facts: list[GroundedFact]) -> GroundingStats:
    s = GroundingStats(facts=len(facts))
    for f in facts:
        s.grounded += f.grounded
        s.ungrounded_facts += f.status in (FactStatus.ungrounded, FactStatus.from_prompt)
        s.uninformative_facts += f.status is FactStatus.uninformative
        s.unsupported += f.status is FactStatus.unsupported
        s.assertion_conflicts += f.status is FactStatus.assertion_conflict
        s.from_prompt += f.status is FactStatus.from_prompt
        s.number_mismatches += bool(f.number_mismatches)
        if f.kind == "value":
            s.values += 1
            continue
        for a in f.alignments:
            s.quotes += 1
            setattr(s, a.status.value, getattr(s, a.status.value) + 1)
    return s


def ungrounded_message(facts: list[GroundedFact], limit: int = 10) -> str:
    """Feedback for a re-ask: names each quote not in the report, then other problems."""
    lines = []
    for f in facts:
        for a in f.alignments:
            if a.status is MatchStatus.not_found and f.kind == "fact":
                lines.append(f"- {f.path}: quote not found in the report: {a.quote!r}")
    more = len(lines) - limit
    text = "\n".join(lines[:limit]) + (f"\n- … and {more} more" if more > 0 else "")
    parts = []
    if lines:
        parts.append(
            "These evidence quotes do not occur in the report. Copy each quote character "
            "for character from the report text, or drop the item if the report does not "
            "state it:\n" + text
        )
    other = [
        f"- {f.path}: {f.reason}"
        for f in facts
        if f.needs_reask and not (f.kind == "fact" and f.status is FactStatus.ungrounded)
    ]
    if other:
        more = len(other) - limit
        parts.append(
            "These items are not evidenced by the report: each quote must be words of the "
            "report that state the item (not single characters, bare numbers or "
            "stop words), and article values must be copied from the report, never from "
            "these instructions. Fix or drop each:\n"
            + "\n".join(other[:limit])
            + (f"\n- … and {more} more" if more > 0 else "")
        )
    return "\n\n".join(parts)
