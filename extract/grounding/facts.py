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
sent. The first three non-grounded statuses and both value failures are
re-asked (``needs_reask``); an assertion conflict and a number mismatch are
flagged only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from caseextract.grounding import assertion, evidence, values
from caseextract.grounding.align import Aligner, Alignment, MatchStatus
from caseextract.grounding.status import FactStatus, GroundedFact
from caseextract.normalize import expand_spinal_levels, numbers_in
from pydantic import BaseModel

LEAD_CHARS = 60  # source text before a quote that the assertion check also reads


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
    aligner = aligner or Aligner(text)
    out: list[GroundedFact] = []
    for path, obj in iter_models(extraction):
        out.extend(values.ground_values(path, obj, aligner))
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
