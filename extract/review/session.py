"""A review session: one results file, its sources, one reviewer's review file.

The session is what the web app and the CLI share: it reads records and source
texts, saves decisions (validated and grounded first, under the review file's
lock, with ``before`` taken from the file as it stands at that moment), and
exports a reviewed document as a gold file or a corrected record.

In adjudication the decisions two reviewers agree on are the base, and the
adjudicator's own decisions (in their own review file) override them.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract import grounding
from caseextract.documents import SUPPORTED, load_document
from caseextract.errors import ConfigError, ExtractError
from caseextract.records import GroundingInfo, ResultRecord
from caseextract.review.decisions import Decision, ReviewFile, ReviewLog, review_path
from caseextract.review.state import (
    FactView,
    ReviewError,
    check_fact,
    corrected_extraction,
    document_facts,
    fact_lists,
    fact_type,
    get_at,
    main_field,
    parse_path,
)
from caseextract.store import csv_rows, read_records
from caseextract.tasks import load_model
from pydantic import BaseModel, ValidationError

MODEL_MODULES = ("caseextract.schema", "caseextract.tasks")


def resolve_model(record: ResultRecord, spec: str | None = None) -> type[BaseModel]:
    """The response model a record was extracted with: ``--schema`` if given, else
    the class named by the record's ``schema`` among the package's tasks."""
    if spec:
        return load_model(spec)
    name = record.schema_name or "CaseReport"
    for module_name in MODEL_MODULES:
        model = getattr(importlib.import_module(module_name), name, None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model
    raise ConfigError(
        f"record {record.document.id}: unknown schema {name!r}; give --schema module:Class"
    )


def fingerprint(record: ResultRecord) -> str:
    """Which extraction a decision was made on: a hash of the record's extraction."""
    canonical = json.dumps(record.extraction, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _within(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


@dataclass
class Source:
    text: str | None
    path: Path | None
    warning: str | None = None


@dataclass
class ReviewSession:
    results: Path
    reviewer: str
    sources: Path | None = None
    schema: str | None = None
    review: ReviewFile = field(init=False)
    records: list[ResultRecord] = field(init=False)
    base: list[Decision] = field(default_factory=list)  # agreed decisions (adjudication)
    _sources: dict[str, Source] = field(default_factory=dict, init=False)
    _fingerprints: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not self.results.is_file():
            raise ConfigError(f"no results file at {self.results}")
        latest_by_id: dict[str, ResultRecord] = {}
        for record in read_records(self.results):
            doc = str(record.document.id)
            if record.ok or doc not in latest_by_id:
                latest_by_id[doc] = record
        self.records = list(latest_by_id.values())
        if not self.records:
            raise ConfigError(f"{self.results} holds no readable record")
        self.review = ReviewFile(
            review_path(self.results, self.reviewer), self.results, self.reviewer
        )

    # ------------------------------------------------------------------ reading

    def record(self, index: int) -> ResultRecord:
        if not 0 <= index < len(self.records):
            raise ReviewError(f"no document number {index}")
        return self.records[index]

    def source(self, record: ResultRecord) -> Source:
        doc = str(record.document.id)
        if doc not in self._sources:
            self._sources[doc] = self._find_source(record)
        return self._sources[doc]

    def _find_source(self, record: ResultRecord) -> Source:
        """The record's source text, from where it may come only.

        With ``--sources`` only files inside that folder; without it, only files
        inside the results' folder (the recorded path, or beside the results).
        Links are followed and must stay there. A file whose content hash is not the
        record's is not shown (a record names any path it likes: ``/etc/passwd``)."""
        home = self.sources if self.sources is not None else self.results.parent
        recorded = Path(record.document.path) if record.document.path else None
        candidates: list[Path] = []
        if self.sources is not None:
            if recorded is not None:
                candidates.append(self.sources / recorded.name)
            candidates.extend(self.sources / f"{record.document.id}{s}" for s in sorted(SUPPORTED))
        elif recorded is not None:
            candidates.extend([recorded, self.results.parent / recorded])
        found: Source | None = None
        for path in candidates:
            if not _within(path, home) or not path.is_file():
                continue
            try:
                doc = load_document(path)
            except ExtractError as exc:
                found = found or Source(None, path, str(exc))
                continue
            if doc.sha256 == record.document.sha256:
                return Source(doc.text, path)
            differs = f"{path} is not the text extracted (its content hash differs): not shown"
            found = found or Source(None, path, differs)
        where = f"inside {home}" if self.sources is not None else f"beside {self.results}"
        return found or Source(None, None, f"source text not found {where}: give --sources DIR")

    def log(self) -> ReviewLog:
        return self.review.read()

    def decisions(self, record: ResultRecord, log: ReviewLog | None = None) -> list[Decision]:
        """Decisions on this extraction of the document (not on an earlier run's)."""
        mine = self.fingerprint(record)
        return [d for d in self._all(record, log) if d.record in (None, mine)]

    def fingerprint(self, record: ResultRecord) -> str:
        key = str(record.document.id)
        if key not in self._fingerprints:
            self._fingerprints[key] = fingerprint(record)
        return self._fingerprints[key]

    def stale(self, record: ResultRecord, log: ReviewLog | None = None) -> int:
        """Decisions made on another extraction of this document (a re-run): not applied."""
        return len(self._all(record, log)) - len(self.decisions(record, log))

    def _all(self, record: ResultRecord, log: ReviewLog | None) -> list[Decision]:
        doc = str(record.document.id)
        own = (log or self.log()).for_document(doc)
        return [d for d in self.base if d.document == doc] + own

    def facts(self, index: int) -> list[FactView]:
        record = self.record(index)
        return document_facts(record, self.decisions(record))

    def model(self, record: ResultRecord) -> type[BaseModel]:
        return resolve_model(record, self.schema)

    def addable_lists(self, index: int) -> list[tuple[str, str]]:
        """Lists a missed fact can join, each with the field its selected words fill."""
        record = self.record(index)
        try:
            model = self.model(record)
        except ConfigError:
            return []
        lists = fact_lists(model, corrected_extraction(record, self.decisions(record)))
        return [(path, main_field(fact_type(model, parse_path(path)))) for path in lists]

    # ------------------------------------------------------------------ deciding

    def decide(
        self,
        index: int,
        path: str,
        action: str,
        value: dict[str, Any] | None = None,
        offset: int = 0,
        note: str | None = None,
        **origin: str | None,
    ) -> Decision:
        """Save one decision; edits and additions are validated and grounded first.
        ``origin`` (``source``, ``second``) says which extraction it took, in a double review."""
        record = self.record(index)
        if action not in ("accept", "reject", "edit", "add"):
            raise ReviewError(f"unknown action {action!r}")
        after_extra: dict[str, Any] = {}
        if action in ("edit", "add"):
            text = self.source(record).text
            if text is None:
                raise ReviewError("cannot ground new evidence: " + str(self.source(record).warning))
            model = self.model(record)
            target = path if action == "edit" else path + "[0]"
            normalised, entry = check_fact(model, target, value or {}, text, offset)
            after_extra = {"value": normalised, "grounding": entry}
        with self.review.locked():
            decisions = self.decisions(record)
            views = {v.path: v for v in document_facts(record, decisions)}
            if action == "add":
                path = self._next_slot(record, decisions, path)
                after_extra["grounding"]["path"] = path
            elif path not in views:
                raise ReviewError(f"no fact at {path} in {record.document.id}")
            current = views.get(path)
            before = None
            if current is not None:
                before = {"state": current.state, "value": current.value}
            after = None
            if action == "accept" and current is not None:
                after = {"state": "accepted", "value": current.value}
            elif action == "reject":
                after = {"state": "rejected"}
            elif action in ("edit", "add"):
                after = {"state": "edited" if action == "edit" else "added", **after_extra}
            decision = Decision(
                reviewer=self.reviewer,
                document=str(record.document.id),
                sha256=record.document.sha256,
                record=self.fingerprint(record),
                path=path,
                action=action,  # type: ignore[arg-type]
                before=before,
                after=after,
                note=note,
                **origin,
            )
            self.review.append(decision)
        return decision

    def _next_slot(self, record: ResultRecord, decisions: list[Decision], list_path: str) -> str:
        parts = parse_path(list_path)
        existing = get_at(record.extraction or {}, parts)
        size = len(existing) if isinstance(existing, list) else 0
        taken = [d.path for d in decisions if d.action == "add"]
        n = size
        while f"{list_path}[{n}]" in taken:
            n += 1
        return f"{list_path}[{n}]"

    # ------------------------------------------------------------------ exporting

    def corrected(self, index: int) -> ResultRecord:
        """The record with the decisions applied and its evidence grounded again."""
        record = self.record(index)
        decisions = self.decisions(record)
        extraction = corrected_extraction(record, decisions)
        model = self.model(record)
        try:
            value = model.model_validate(extraction)
        except ValidationError as exc:
            raise ReviewError(
                "the corrected record does not validate",
                [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()],
            ) from None
        out = record.model_copy(deep=True)
        out.extraction = value.model_dump(mode="json")
        text = self.source(record).text
        if text is not None:
            facts = grounding.ground(value, text)
            s = grounding.stats(facts)
            out.grounding = GroundingInfo(
                stats={**s.__dict__},
                rate=None if s.rate is None else round(s.rate, 4),
                facts=[f.to_dict() for f in facts],
            )
        reviewers = sorted({d.reviewer for d in decisions})
        counts: dict[str, int] = {}
        for v in document_facts(record, decisions):
            counts[v.state] = counts.get(v.state, 0) + 1
        extra = out.__pydantic_extra__ if out.__pydantic_extra__ is not None else {}
        extra["review"] = {"reviewers": reviewers, "decisions": len(decisions), "facts": counts}
        return out

    def gold(
        self, index: int, allow_undecided: bool = False, folder: Path | None = None
    ) -> dict[str, Any]:
        """A gold file (``evals`` format) for one reviewed document."""
        record = self.record(index)
        undecided = [v.path for v in self.facts(index) if v.state == "undecided"]
        if undecided and not allow_undecided:
            raise ReviewError(
                f"{len(undecided)} facts are not reviewed yet",
                [f"undecided: {p}" for p in undecided[:20]],
            )
        corrected = self.corrected(index)
        src = self.source(record).path
        source = str(src.resolve()) if src else str(record.document.path)
        if src is not None and folder is not None:
            # as evals.gold finds it: relative to the gold folder's parent when under it
            with contextlib.suppress(ValueError):
                source = src.resolve().relative_to(folder.resolve().parent).as_posix()
        elif src is not None and src.parent.name == "cases":
            source = f"cases/{src.name}"  # the layout of fixtures/: cases beside gold
        decisions = self.decisions(record)
        names = sorted({d.reviewer for d in decisions} | {self.reviewer})
        return {
            "case_id": record.document.id,
            "source": source,
            "labeller": f"reviewed by {', '.join(names)}",
            "labelled_on": dt.date.today().isoformat(),
            "notes": (
                f"Exported from a review of {self.results.name} ({record.model_name}, prompt "
                f"{record.prompt_version}); {len(decisions)} decisions"
                + (f"; {len(undecided)} facts left unreviewed" if undecided else "")
                + "."
            ),
            "extraction": corrected.extraction,
        }

    def csv(self, index: int) -> list[dict[str, Any]]:
        return csv_rows(self.corrected(index))


# ------------------------------------------------------------------ adjudication


@dataclass
class Disagreement:
    document: str
    path: str
    a: Decision | None
    b: Decision | None


def _same(a: Decision, b: Decision) -> bool:
    """Alike: both rejected, or both kept the fact with the same values."""
    if a.action == "reject" or b.action == "reject":
        return a.action == b.action
    return a.value == b.value


def compare(a: ReviewLog, b: ReviewLog) -> tuple[list[Decision], list[Disagreement]]:
    """Decisions both reviewers made alike, and where they differ (or only one decided)."""
    la: dict[tuple[str, str], Decision] = {}
    for d in a.decisions:
        la[(d.document, d.path)] = d
    lb: dict[tuple[str, str], Decision] = {}
    for d in b.decisions:
        lb[(d.document, d.path)] = d
    agreed: list[Decision] = []
    differ: list[Disagreement] = []
    for key in sorted(set(la) | set(lb)):
        da, db = la.get(key), lb.get(key)
        if da is not None and db is not None and _same(da, db):
            agreed.append(da)
        else:
            differ.append(Disagreement(key[0], key[1], da, db))
    return agreed, differ


def taken_from(decision: Decision, current: dict[str, Any] | None) -> dict[str, Any]:
    """What to save when an adjudicator takes one reviewer's decision: an accept of
    values that differ from the fact as it now stands is saved as an edit to them."""
    action = decision.action
    if action == "accept" and decision.value is not None and decision.value != current:
        action = "edit"
    return {
        "action": action,
        "value": copy.deepcopy(decision.value),
        "note": f"adjudicated: took {decision.reviewer}'s decision {decision.id}",
    }
