"""Judge each fact of an extraction against its source: quotes aligned, then the statuses.

Quotes are aligned by ``grounding.align``. A quote that is found but carries no
content (``evidence.informative``) gets the status ``uninformative`` and no span.
Each fact then gets a status (``FactStatus``), from the first rule that applies:
``ungrounded`` (a quote not found), ``uninformative`` (a quote with no content),
``unsupported`` (the quotes do not state the fact's main value),
``assertion_conflict`` (they state it with the opposite assertion), else
``grounded``; the rules are in ``grounding.evidence`` (content, main value,
support) and ``grounding.assertion`` (negation). Article-level values a model
class lists in ``__grounded_values__`` (CaseReport: title, journal, year, DOI,
PMID, author names) carry no quotes: each value is looked up in the source
itself (``grounding.values``) and is ``grounded``, ``ungrounded``, or
``from_prompt`` when it is not in the source but is in the prompt the model was
sent. Re-asked (``needs_reask``) are only the facts a re-ask can fix: a quote not
in the report, a quote with no content, quotes that share nothing with the
fact's main value, and both value failures; ``ungrounded_message`` quotes each
and says what to fix. Flagged only, never re-asked: an assertion conflict, a
number mismatch, and support found only through a weak cue
(``evidence.WEAK_REASONS``: the fact is ``grounded`` with ``review`` set).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from caseextract.grounding import assertion, evidence, values
from caseextract.grounding.align import Aligner, Alignment, MatchStatus
from caseextract.grounding.status import FactStatus, GroundedFact
from caseextract.normalize import expand_spinal_levels, numbers_in
from pydantic import BaseModel

LEAD_CHARS = 60
# main values that are measurements: their numbers must not be contradicted by the quotes
# (an investigation stated by its name whose quoted result is another number)
MEASURED_FIELDS = ("result",)  # source text before a quote that the assertion check also reads


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
    review: int = 0  # grounded, but flagged for review (support only through a weak cue)

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
            f"assertion conflicts; {self.review} flagged for review; "
            f"{self.number_mismatches} number mismatches; quotes exact "
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

    plausible = getattr(fact, "plausibility_problems", None)  # a model's own range checks
    if callable(plausible):
        problems.extend(plausible())
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
) -> tuple[FactStatus, str | None, str | None]:
    """The fact's status, its reason and a review note (module docstring, first rule wins)."""
    missing = [a.quote for a in alignments if a.status is MatchStatus.not_found]
    if missing:
        return FactStatus.ungrounded, f"quote not found in the report: {missing[0]!r}", None
    empty = [a.quote for a in alignments if a.status is MatchStatus.uninformative]
    if empty:
        return FactStatus.uninformative, f"quote carries no content: {empty[0]!r}", None
    mains = evidence.main_values(fact)
    if not mains:
        return FactStatus.grounded, None, None
    quotes = "; ".join(a.quote for a in alignments)  # a clause break between quotes
    how = [(name, value, evidence.support_reason(value, quotes)) for name, value in mains]
    if all(reason is None for _, _, reason in how):
        name, value = mains[0]
        return FactStatus.unsupported, f"its quotes do not state its {name} {value!r}", None
    for name, value in mains:  # a measured result whose numbers the quotes contradict
        if name in MEASURED_FIELDS and evidence.numbers_contradict(value, quotes):
            why = f"its {name} {value!r} writes numbers its quotes do not (they write others)"
            return FactStatus.unsupported, why, None
    review = None
    if all(reason is None or reason in evidence.WEAK_REASONS for _, _, reason in how):
        name, value, reason = next(h for h in how if h[2] is not None)
        review = f"its {name} {value!r} is supported only weakly ({reason})"
    # the assertion is judged on each quote with what leads up to it in its clause
    in_context = "; ".join(_lead(text, a) + a.quote for a in alignments)
    conflict = assertion.assertion_conflict(fact, mains[0][1], in_context)
    for name, value in mains:  # a measured result is asserted as it is written
        if not conflict and name in MEASURED_FIELDS:
            conflict = assertion.result_conflict(value, in_context)
    if conflict:
        return FactStatus.assertion_conflict, conflict, None
    return FactStatus.grounded, None, review


def ground(extraction: BaseModel, text: str, aligner: Aligner | None = None) -> list[GroundedFact]:
    """Align and judge every fact and article-level value in ``extraction``."""
    aligner = aligner or Aligner(text)
    out: list[GroundedFact] = []
    for path, obj in iter_models(extraction):
        out.extend(values.ground_values(path, obj, aligner))
        fact = judge_fact(obj, aligner, path or "$")
        if fact is not None:
            out.append(fact)
    return out


def _own_id(obj: BaseModel, quote: str) -> bool:
    """A quote that is the object's own identifier as printed (a bare PMID, a DOI)."""
    ids = (getattr(obj, name, None) for name in ("pmid", "doi"))
    return any(isinstance(v, str) and v.strip() == quote.strip() for v in ids)


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
        if a.grounded and not evidence.informative(quote, value) and not _own_id(obj, quote):
            a = Alignment(
                a.quote, MatchStatus.uninformative, score=a.score, occurrences=a.occurrences
            )
        if a.end is not None:
            after = a.start or 0
        alignments.append(a)
    if not alignments:
        return None
    status, reason, review = _judge(obj, alignments, aligner.text)
    return GroundedFact(path, alignments, number_mismatches(obj), status, reason, review=review)


def stats(facts: list[GroundedFact]) -> GroundingStats:
    s = GroundingStats(facts=len(facts))
    for f in facts:
        s.grounded += f.grounded
        s.review += bool(f.grounded and f.review)
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


_FIX = {
    FactStatus.ungrounded: "copy each quote character for character from the report, or "
    "drop the item if the report does not state it",
    FactStatus.uninformative: "quote the clause of the report that states the item (a "
    "quote must hold words, not only single characters, bare numbers or stop words)",
    FactStatus.unsupported: "quote the words of the report that state this value (the "
    "report's own wording, shorthand or abbreviation is fine), fix the value to what the "
    "quote states, or drop the item",
}
_FIX_VALUE = {
    FactStatus.ungrounded: "copy it as printed in the report, or set it to null",
    FactStatus.from_prompt: "copy the value from the report, never from these "
    "instructions, or set it to null",
}


def _describe(obj: BaseModel | None) -> str:
    """A fact's own values as short JSON, without its quotes and unset fields."""
    if obj is None:
        return ""
    data = {
        k: v
        for k, v in obj.model_dump(mode="json", exclude={"evidence"}).items()
        if v not in (None, "", [], {})
    }
    text = json.dumps(data, ensure_ascii=False)
    return " " + (text if len(text) <= 200 else text[:199] + "…")


def _reask_line(f: GroundedFact, obj: BaseModel | None) -> str:
    if f.kind == "value":
        value = f.alignments[0].quote if f.alignments else ""
        return f"- {f.path} = {value[:120]!r}: {f.reason}. Fix: {_FIX_VALUE[f.status]}."
    quotes = [a.quote for a in f.alignments]
    what = f.reason or f.status.value
    if f.status is FactStatus.ungrounded:
        missing = [a.quote for a in f.alignments if a.status is MatchStatus.not_found]
        what = "quote not found in the report: " + "; ".join(repr(q) for q in missing)
    return (
        f"- {f.path}{_describe(obj)}, quotes {json.dumps(quotes, ensure_ascii=False)}: "
        f"{what}. Fix: {_FIX[f.status]}."
    )


def ungrounded_message(
    facts: list[GroundedFact], limit: int = 10, extraction: BaseModel | None = None
) -> str:
    """Feedback for a re-ask: each fact that needs one (``GroundedFact.needs_reask``),
    quoted with its values (when ``extraction`` is given) and its quotes, what is wrong
    and exactly what to fix. Facts that are only flagged (an assertion conflict, a
    weak support for review) are not named: a re-ask would not help them."""
    objects = dict(iter_models(extraction)) if extraction is not None else {}
    lines = [
        _reask_line(f, objects.get("" if f.path == "$" else f.path)) for f in facts if f.needs_reask
    ]
    more = len(lines) - limit
    text = "\n".join(lines[:limit]) + (f"\n- … and {more} more" if more > 0 else "")
    if not lines:
        return ""
    return (
        "Some items of your answer are not evidenced by the report. Each item below is "
        "quoted with its values and its quotes, then what is wrong and what to fix. Keep "
        "every other item as it is.\n" + text
    )
