"""Two independent extractions of the same documents, paired fact by fact.

Contract:

* The pairing is the scorer's (``caseextract.evals.scoring``): patients are
  aligned one to one (``align_units``); inside each pair, and at the top level,
  each list of facts is matched one to one on name plus shared quotes
  (``match_items`` with ``Scorer.overlap``, gated), and the items left over that
  cite the same text are paired too (``Scorer.cited_pairs``). Single facts (the
  article, a patient's age and sex) pair when both extractions have them.
* A fact is what the review app calls one: an object carrying ``evidence``, at a
  path such as ``patients[0].findings[2]`` (``caseextract.review.state``).
* Each fact gets one status: ``agreed`` (paired, every value equal after
  normalisation), ``differs`` (paired, the differing fields named with both
  values), ``only_a`` or ``only_b``. Values compare as the scorer normalises them
  (enums and numbers exactly, ages in years, spans by ISO duration, lists one to
  one) and short texts fuzzily but with the same numbers ("38.5 C" ≠ "39.5 C").
  Quotes are evidence, not values: they are highlighted, not compared.
* The document's figures are the ``agreement`` figures: B scored against A (F1 is
  symmetric), by name, cited and strict.
* Nothing is written here; ``agreement_line`` is the JSONL form of one record.
"""

from __future__ import annotations

import enum
import json
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract.documents import SUPPORTED, load_document
from caseextract.errors import ConfigError, ExtractError
from caseextract.evals.scoring import (
    MATCH_THRESHOLD,
    Counts,
    Scorer,
    align_units,
    count,
    match_items,
    normalised_value,
    text_similarity,
    values_agree,
)
from caseextract.records import ResultRecord, fact_label
from caseextract.review.session import fingerprint, resolve_model
from caseextract.store import read_records
from pydantic import BaseModel, ValidationError

STATUSES = ("agreed", "differs", "only_a", "only_b")
NEEDS_A_PERSON = ("differs", "only_a", "only_b")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
TextOf = Callable[[ResultRecord], str | None]


@dataclass
class PairedFact:
    """One fact of A, of B, or of both, with its status."""

    status: str
    family: str  # the field path without indices, e.g. "patients.findings"
    unit: str  # the patient (A's label ↔ B's) or "" at the top level
    a: str | None = None  # path in A's extraction
    b: str | None = None  # path in B's extraction
    label_a: str | None = None
    label_b: str | None = None
    fields: list[dict[str, Any]] = field(default_factory=list)  # {field, a, b} that differ
    paired_by: str | None = None  # "name" or "citation" (paired facts only)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DocumentAgreement:
    """The agreement record of one document."""

    document: str
    a: dict[str, Any]
    b: dict[str, Any]
    facts: list[PairedFact] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    families: dict[str, Counts] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def tally(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for f in self.facts:
            out[f.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        t = self.counts
        return {
            "kind": "agreement",
            "document": self.document,
            "a": self.a,
            "b": self.b,
            "tally": self.tally(),
            "f1": t.prf()[2],
            "f1_cited": t.prf(cited=True)[2],
            "f1_strict": t.prf(True)[2],
            "warnings": self.warnings,
            "facts": [f.to_dict() for f in self.facts],
        }


def agreement_line(doc: DocumentAgreement) -> str:
    return json.dumps(doc.to_dict(), ensure_ascii=False) + "\n"


# ------------------------------------------------------------------ values


def _numbers(text: str) -> list[str]:
    return sorted(n.replace(",", ".") for n in _NUMBER.findall(text))


def _show(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True, exclude={"evidence"})
    if isinstance(value, list):
        return [_show(v) for v in value]
    return normalised_value(value) if value is not None else None


def value_agrees(a: Any, b: Any, name: str = "") -> bool:
    """Equal after normalisation (see the module's contract)."""
    if a in (None, "", []) or b in (None, "", []):
        return a in (None, "", []) and b in (None, "", [])
    if isinstance(a, list) and isinstance(b, list):
        if all(isinstance(x, str) for x in [*a, *b]) and name == "levels":
            return sorted(a) == sorted(b)
        pairs, lone_a, lone_b = match_items(a, b)
        return not lone_a and not lone_b and all(value_agrees(a[i], b[j]) for i, j in pairs)
    if isinstance(a, enum.Enum | bool) or isinstance(b, enum.Enum | bool):
        return normalised_value(a) == normalised_value(b)
    if isinstance(a, str) and isinstance(b, str):
        same = text_similarity(a, b) >= MATCH_THRESHOLD and _numbers(a) == _numbers(b)
        return same if name not in ("doi", "pmid") else a.strip().lower() == b.strip().lower()
    return values_agree(a, b, name)


def differing_fields(a: BaseModel, b: BaseModel) -> list[dict[str, Any]]:
    """The fields (evidence aside) whose values differ after normalisation."""
    if "years" in type(a).model_fields:  # an age: compared as one value, in years
        return [] if values_agree(a, b) else [{"field": "age", "a": a.raw, "b": b.raw}]
    out = []
    for name in type(a).model_fields:
        if name == "evidence":
            continue
        va, vb = getattr(a, name, None), getattr(b, name, None)
        if not value_agrees(va, vb, name):
            out.append({"field": name, "a": _show(va), "b": _show(vb)})
    return out


# ------------------------------------------------------------------ the walk


def _is_fact(obj: Any) -> bool:
    return isinstance(obj, BaseModel) and "evidence" in type(obj).model_fields


def _fact_class(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        return _fact_class(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) is not list:
        return False
    (inner,) = typing.get_args(annotation)
    is_model = isinstance(inner, type) and issubclass(inner, BaseModel)
    return is_model and "evidence" in inner.model_fields


def _is_unit(obj: Any) -> bool:
    """A model with lists of facts among its fields (a patient), not itself a fact."""
    if not isinstance(obj, BaseModel) or _is_fact(obj):
        return False
    return any(_fact_class(f.annotation) for f in type(obj).model_fields.values())


def _label(obj: Any) -> str:
    data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
    return fact_label(data) if isinstance(data, dict) else str(data)


class _Walk:
    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.out: list[PairedFact] = []

    def node(self, a: Any, b: Any, pa: str, pb: str, family: str, unit: str) -> None:
        """Compare the fields of two objects of one class (either may be None)."""
        cls = type(a if a is not None else b)
        for name in cls.model_fields:
            if name == "evidence":
                continue
            va = getattr(a, name, None) if a is not None else None
            vb = getattr(b, name, None) if b is not None else None
            fam = f"{family}.{name}" if family else name
            ca, cb = f"{pa}.{name}" if pa else name, f"{pb}.{name}" if pb else name
            items = [*(va or []), *(vb or [])] if isinstance(va or vb, list) else []
            if items and all(_is_unit(x) for x in items):
                self.units(va or [], vb or [], ca, cb, fam)
            elif items and all(_is_fact(x) for x in items):
                self.facts(va or [], vb or [], ca, cb, fam, unit)
            elif _is_fact(va) or _is_fact(vb):
                self.single(va, vb, ca, cb, fam, unit)

    def single(self, a: Any, b: Any, pa: str, pb: str, fam: str, unit: str) -> None:
        if a is not None and b is not None:
            self.pair(a, b, pa, pb, fam, unit, "name")
        elif a is not None:
            self.out.append(PairedFact("only_a", fam, unit, a=pa, label_a=_label(a)))
        elif b is not None:
            self.out.append(PairedFact("only_b", fam, unit, b=pb, label_b=_label(b)))

    def pair(self, a: Any, b: Any, pa: str, pb: str, fam: str, unit: str, by: str) -> None:
        diffs = differing_fields(a, b)
        status = "differs" if diffs else "agreed"
        fact = PairedFact(status, fam, unit, pa, pb, _label(a), _label(b), diffs, by)
        self.out.append(fact)
        self.node(a, b, pa, pb, fam, unit)  # facts inside a fact (none in CaseReport)

    def facts(self, la: list, lb: list, pa: str, pb: str, fam: str, unit: str) -> None:
        pairs, lone_a, lone_b = match_items(la, lb, self.scorer.overlap)
        cited = self.scorer.cited_pairs(la, lb, lone_a, lone_b)
        paired = [(i, j, "name") for i, j in pairs] + [(i, j, "citation") for i, j in cited]
        for i, j, by in paired:
            self.pair(la[i], lb[j], f"{pa}[{i}]", f"{pb}[{j}]", fam, unit, by)
        taken_a, taken_b = {i for i, _ in cited}, {j for _, j in cited}
        for i in (i for i in lone_a if i not in taken_a):
            self.out.append(PairedFact("only_a", fam, unit, a=f"{pa}[{i}]", label_a=_label(la[i])))
        for j in (j for j in lone_b if j not in taken_b):
            self.out.append(PairedFact("only_b", fam, unit, b=f"{pb}[{j}]", label_b=_label(lb[j])))

    def units(self, la: list, lb: list, pa: str, pb: str, fam: str) -> None:
        pairs, lone_a, lone_b = align_units(la, lb)
        for i, j in pairs:
            unit = _unit_name(la[i], lb[j])
            self.node(la[i], lb[j], f"{pa}[{i}]", f"{pb}[{j}]", fam, unit)
        for i in lone_a:
            self.node(la[i], None, f"{pa}[{i}]", "", fam, _unit_name(la[i], None))
        for j in lone_b:
            self.node(None, lb[j], "", f"{pb}[{j}]", fam, _unit_name(None, lb[j]))


def _unit_name(a: Any, b: Any) -> str:
    la, lb = getattr(a, "label", None), getattr(b, "label", None)
    if la and lb and la != lb:
        return f"{la} ↔ {lb}"
    return la or lb or "?"


def pair_facts(a: BaseModel, b: BaseModel, text: str | None) -> list[PairedFact]:
    """Every fact of two extractions of one document, paired and marked."""
    walk = _Walk(Scorer(text))
    walk.node(a, b, "", "", "", "")
    return walk.out


# ------------------------------------------------------------------ records and files


def side(record: ResultRecord | None, results: Path) -> dict[str, Any]:
    """Which extraction this is: file, model, prompt, schema and the record's fingerprint."""
    info: dict[str, Any] = {"results": str(results)}
    if record is None:
        return {**info, "missing": True}
    return {
        **info,
        "model": record.model,
        "model_returned": record.model_returned,
        "mode": record.mode,
        "prompt_set": record.prompt_set,
        "prompt_version": record.prompt_version,
        "schema": record.schema_name,
        "schema_version": record.schema_version,
        "status": record.status,
        "record": fingerprint(record),
    }


def latest(results: Path) -> dict[str, ResultRecord]:
    """The record that counts per document (the last ok one, else the last one)."""
    if not results.is_file():
        raise ConfigError(f"no results file at {results}")
    by_id: dict[str, ResultRecord] = {}
    for record in read_records(results):
        doc = str(record.document.id)
        if record.ok or doc not in by_id:
            by_id[doc] = record
    return by_id


def _validated(model: type[BaseModel], record: ResultRecord | None) -> BaseModel | None:
    if record is None or not record.extraction:
        return None
    try:
        return model.model_validate(record.extraction)
    except ValidationError:
        return None


def compare_records(
    doc: str,
    ra: ResultRecord | None,
    rb: ResultRecord | None,
    paths: tuple[Path, Path],
    text: str | None,
    schema: str | None = None,
) -> DocumentAgreement:
    """The agreement record of one document (either record may be missing or failed)."""
    out = DocumentAgreement(doc, side(ra, paths[0]), side(rb, paths[1]))
    if ra is not None and rb is not None and ra.document.sha256 != rb.document.sha256:
        out.warnings.append("A and B extracted different texts (sha256 differs): not compared")
        return out
    model = resolve_model(ra or rb, schema)  # type: ignore[arg-type]
    ea, eb = _validated(model, ra), _validated(model, rb)
    for name, rec, ext in (("A", ra, ea), ("B", rb, eb)):
        if rec is None:
            out.warnings.append(f"{name} has no record of this document")
        elif ext is None:
            why = rec.error.message if rec.error else f"status {rec.status}"
            out.warnings.append(f"{name} has no extraction ({why})")
    if ra is not None and rb is not None and ea is not None and out.a["record"] == out.b["record"]:
        out.warnings.append(
            "A and B are the same answer: not an independent sample (a cache or a replay?)"
        )
    if text is None:
        out.warnings.append("source text not found: facts paired by name only (give --sources)")
    if ea is None and eb is None:
        return out
    scorer = Scorer(text)
    walk = _Walk(scorer)
    walk.node(ea, eb, "", "", "", "")
    out.facts = walk.out
    entries = scorer.score(ea, eb) if ea is not None else scorer.score(eb, None)
    out.counts, out.families = count(entries)
    return out


def compare_files(
    results_a: Path, results_b: Path, text_of: TextOf, schema: str | None = None
) -> list[DocumentAgreement]:
    """Every document of either results file, in A's order, then B's remaining ones."""
    a, b = latest(results_a), latest(results_b)
    out = []
    for doc in [*a, *(d for d in b if d not in a)]:
        ra, rb = a.get(doc), b.get(doc)
        try:
            text = text_of(ra or rb)  # type: ignore[arg-type]
            out.append(compare_records(doc, ra, rb, (results_a, results_b), text, schema))
        except ExtractError as exc:
            record = DocumentAgreement(doc, side(ra, results_a), side(rb, results_b))
            record.warnings.append(str(exc))
            out.append(record)
    return out


def totals(docs: Iterable[DocumentAgreement]) -> tuple[dict[str, int], Counts, dict[str, Counts]]:
    """Statuses, scorer counts and counts per family, over documents."""
    tally, total, families = dict.fromkeys(STATUSES, 0), Counts(), {}
    for d in docs:
        for k, v in d.tally().items():
            tally[k] += v
        total.add(d.counts)
        for name, c in d.families.items():
            families.setdefault(name, Counts()).add(c)
    return tally, total, families


def needs_a_person(tally: dict[str, int]) -> float | None:
    """Share of facts a person must decide (differs, only_a, only_b)."""
    n = sum(tally.values())
    return sum(tally[k] for k in NEEDS_A_PERSON) / n if n else None


def source_text(record: ResultRecord, sources: Path | None = None) -> str | None:
    """The text a record was extracted from: in ``sources`` (by file name or document
    id), else at the recorded path; None when it is not found or is another text."""
    recorded = Path(record.document.path) if record.document.path else None
    candidates = []
    if sources is not None:
        if recorded is not None:
            candidates.append(sources / recorded.name)
        candidates.extend(sources / f"{record.document.id}{s}" for s in sorted(SUPPORTED))
    if recorded is not None:
        candidates.append(recorded)
    for path in candidates:
        if path.is_file():
            doc = load_document(path)
            if record.document.sha256 in (None, doc.sha256):
                return doc.text
    return None
