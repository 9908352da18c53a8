"""Reviewing two independent extractions: their agreement decides where a person looks.

The review is of extraction A (the results file the session reviews); B is the
second, independent extraction of the same documents. The pairing comes in as
agreement records, the dicts ``caseextract compare`` writes (``facts`` with
``status``, ``a``/``b`` paths, ``fields`` that differ); this module never pairs.

Contracts:

* ``preaccept`` saves an ``accept`` (``source="agreed"``) for every agreed fact
  that has no decision yet, so ``summarize --reviewed`` and the gold export see
  them as kept; a person can still reject them. Run again, it adds nothing.
* One decision per key: take A (``accept``, or an ``edit`` back to A's values
  after another choice), take B (an ``edit`` of A's fact to B's values, or an
  ``add`` of a fact only B has, into the patient it pairs with), edit, reject.
  Every decision names where its values came from (``source``: agreed, a, b,
  edited) and the paired fact in B (``second``).
* A fact only B has, rejected, is saved as a ``reject`` on the path
  ``second:<path in B>``: the rest of the review app ignores such paths.
* The gold export of a document is refused while a disagreement is undecided.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract.errors import ReviewError
from caseextract.records import ResultRecord, fact_label
from caseextract.review.decisions import Decision
from caseextract.review.session import ReviewSession, fingerprint
from caseextract.review.state import FactView, get_at, parse_path
from caseextract.store import read_records

DISAGREEMENTS = ("differs", "only_a", "only_b")
SECOND_PREFIX = "second:"


@dataclass
class Pair:
    """One card of the two-extraction review: a fact of A, of B, or of both."""

    key: str  # A's path, else "second:" + B's path
    status: str  # agreed / differs / only_a / only_b
    family: str
    unit: str
    fields: list[dict[str, Any]]
    a: FactView | None  # A's fact as it stands (with decisions applied)
    a_original: dict[str, Any] | None  # A's fact as extracted, and its grounding
    a_grounding: dict[str, Any] | None
    b_path: str | None
    b_value: dict[str, Any] | None
    b_grounding: dict[str, Any] | None
    decision: Decision | None = None

    @property
    def state(self) -> str:
        if self.decision is None:
            return "undecided"
        if self.decision.action == "reject":
            return "rejected"
        return {"agreed": "agreed", "a": "took A", "b": "took B"}.get(
            self.decision.source or "", "edited" if self.decision.action != "accept" else "kept"
        )

    @property
    def label(self) -> str:
        value = self.a.value if self.a else self.b_value
        return fact_label(value or {}) or self.key

    def spans(self) -> list[tuple[int, int, str]]:
        out = []
        for side, g in (("a", self.a_grounding), ("b", self.b_grounding)):
            for q in (g or {}).get("quotes") or []:
                if q.get("start") is not None and q.get("end") is not None:
                    out.append((int(q["start"]), int(q["end"]), side))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "status": self.status,
            "state": self.state,
            "label": self.label,
            "a": self.a_original,
            "b": self.b_value,
            "current": self.a.value if self.a else None,  # after the decisions
            "fields": [f["field"] for f in self.fields],
        }


@dataclass
class SecondExtraction:
    """A review session over A, with B and the agreement records of A and B."""

    session: ReviewSession
    results_b: Path
    agreements: dict[str, dict[str, Any]]  # document id -> agreement record
    records_b: dict[str, ResultRecord] = field(init=False)

    def __post_init__(self) -> None:
        self.records_b = {}
        for record in read_records(self.results_b):
            doc = str(record.document.id)
            if record.ok or doc not in self.records_b:
                self.records_b[doc] = record

    # ------------------------------------------------------------------ reading

    def agreement(self, n: int) -> dict[str, Any]:
        doc = str(self.session.record(n).document.id)
        return self.agreements.get(doc) or {"facts": [], "tally": {}, "warnings": []}

    def pairs(self, n: int) -> list[Pair]:
        """The document's cards: disagreements first, then agreed facts, in order."""
        record = self.session.record(n)
        decisions = self.session.decisions(record)
        views = {v.path: v for v in self.session.facts(n)}
        b_record = self.records_b.get(str(record.document.id))
        a_facts = record.grounding.facts if record.grounding else []
        a_ground = {f.get("path"): f for f in a_facts}
        b_facts = b_record.grounding.facts if b_record and b_record.grounding else []
        b_ground = {f.get("path"): f for f in b_facts}
        b_extraction = (b_record.extraction if b_record else None) or {}
        by_second: dict[str, Decision] = {}
        for d in decisions:
            if d.second:
                by_second[d.second] = d
        out = []
        for f in self.agreement(n)["facts"]:
            a_path, b_path = f.get("a"), f.get("b")
            b_value = get_at(b_extraction, parse_path(b_path)) if b_path else None
            view = views.get(a_path) if a_path else None
            pair = Pair(
                key=a_path or SECOND_PREFIX + str(b_path),
                status=f["status"],
                family=f.get("family", ""),
                unit=f.get("unit", ""),
                fields=f.get("fields") or [],
                a=view,
                a_original=get_at(record.extraction or {}, parse_path(a_path)) if a_path else None,
                a_grounding=a_ground.get(a_path),
                b_path=b_path,
                b_value=b_value,
                b_grounding=b_ground.get(b_path),
            )
            if view is not None:
                pair.decision = view.decision
            elif b_path:
                pair.decision = by_second.get(b_path)
            out.append(pair)
        order = {id(p): i for i, p in enumerate(out)}
        out.sort(key=lambda p: (p.status not in DISAGREEMENTS, order[id(p)]))
        return out

    def pending(self, n: int) -> list[Pair]:
        return [p for p in self.pairs(n) if p.status in DISAGREEMENTS and p.decision is None]

    def describe(self, side: str) -> str:
        """Which model and prompt extraction ``side`` ("a" or "b") came from."""
        info = self._side_info(side)
        model = info.get("model_returned") or info.get("model") or "?"
        return f"{model}, prompt {info.get('prompt_set')} {info.get('prompt_version')}"

    def _side_info(self, side: str) -> dict[str, Any]:
        for record in self.agreements.values():
            if not record.get(side, {}).get("missing"):
                return record.get(side, {})
        return {}

    # ------------------------------------------------------------------ deciding

    def preaccept(self) -> int:
        """Accept every agreed fact nobody has decided on yet; the number accepted."""
        done = 0
        note = f"pre-accepted: A ({self.describe('a')}) and B ({self.describe('b')}) agree"
        for n, record in enumerate(self.session.records):
            with self.session.review.locked():  # decided by then: never accepted over
                for p in self.pairs(n):
                    if p.status != "agreed" or p.a is None or p.a.history:
                        continue
                    value = copy.deepcopy(p.a.value)
                    self.session.review.append(
                        Decision(
                            reviewer=self.session.reviewer,
                            document=str(record.document.id),
                            sha256=record.document.sha256,
                            record=self.session.fingerprint(record),
                            path=p.key,
                            action="accept",
                            before={"state": "undecided", "value": value},
                            after={"state": "accepted", "value": value},
                            note=note,
                            source="agreed",
                            second=p.b_path,
                        )
                    )
                    done += 1
        return done

    def decide(
        self, n: int, key: str, action: str, value: dict[str, Any] | None = None
    ) -> Decision:
        """One key: ``a`` (take A), ``b`` (take B), ``edit`` (with ``value``), ``reject``."""
        pair = next((p for p in self.pairs(n) if p.key == key), None)
        if pair is None:
            raise ReviewError(f"no fact {key!r} in this document")
        session, second = self.session, pair.b_path
        if action == "reject":
            if pair.a is not None:
                return session.decide(n, key, "reject", second=second)
            return self._reject_second(n, pair)
        if action == "a":
            if pair.a is None:
                raise ReviewError("A has no such fact: take B, edit or reject")
            if pair.a.value == pair.a_original:
                return session.decide(n, key, "accept", note="took A", source="a", second=second)
            return session.decide(n, key, "edit", copy.deepcopy(pair.a_original), note="took A",
                                  source="a", second=second)  # fmt: skip
        if action not in ("b", "edit"):
            raise ReviewError(f"unknown action {action!r}")
        if action == "b" and pair.b_value is None:
            raise ReviewError("B has no such fact: take A, edit or reject")
        chosen = copy.deepcopy(pair.b_value if action == "b" else value)
        source, note = ("b", "took B") if action == "b" else ("edited", None)
        if pair.a is not None:
            return session.decide(n, key, "edit", chosen, note=note, source=source, second=second)
        return session.decide(n, self._list_in_a(n, pair), "add", chosen, note=note,
                              source=source, second=second)  # fmt: skip

    def _list_in_a(self, n: int, pair: Pair) -> str:
        """Where in A a fact only B has goes: its list, in the patient B's pairs with."""
        parts = parse_path(str(pair.b_path))
        if not isinstance(parts[-1], int):
            raise ReviewError(
                f"A has no {pair.family} here and a single fact cannot be added in review: "
                "reject it, or correct the record after the export"
            )
        if parts[0] == "patients" and isinstance(parts[1], int):
            units = {}
            for f in self.agreement(n)["facts"]:
                if f.get("a") and f.get("b") and str(f["b"]).startswith("patients["):
                    units[parse_path(f["b"])[1]] = parse_path(f["a"])[1]
            if parts[1] not in units:
                raise ReviewError(f"this fact's patient ({pair.unit}) is only in B")
            parts = ["patients", units[parts[1]], *parts[2:]]
        path = ""
        for p in parts[:-1]:
            path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else p)
        return path

    def _reject_second(self, n: int, pair: Pair) -> Decision:
        record = self.session.record(n)
        decision = Decision(
            reviewer=self.session.reviewer,
            document=str(record.document.id),
            sha256=record.document.sha256,
            record=fingerprint(record),
            path=pair.key,
            action="reject",
            before={"state": "undecided", "value": pair.b_value},
            after={"state": "rejected"},
            second=pair.b_path,
        )
        with self.session.review.locked():
            self.session.review.append(decision)
        return decision

    # ------------------------------------------------------------------ exporting

    def gold(self, n: int) -> dict[str, Any]:
        """The session's gold file, refused while a disagreement is undecided."""
        pending = self.pending(n)
        if pending:
            raise ReviewError(
                f"{len(pending)} disagreements between A and B are not decided yet",
                [f"undecided: {p.key} ({p.status})" for p in pending[:20]],
            )
        gold = self.session.gold(n)
        agreed = sum(1 for p in self.pairs(n) if p.state == "agreed")
        gold["notes"] += (
            f" Double extraction: A ({self.describe('a')}) and B ({self.describe('b')});"
            f" {agreed} agreed facts accepted unseen."
        )
        return gold
