"""Scoring and ``summarize`` give the same results after their speed-ups (issue 29).

* Scoring: every gold case against a perturbed copy of itself (the perturbations
  of ``bench/scoring.py``: items dropped, assertions flipped, names reworded, an
  invented item, patients reversed). The entries are compared with those the scorer
  gave before the change (``tests/data/scoring-reference.json``, written by
  ``reference_entries`` below at commit 32dae1e, before the caches): a sha256 of each
  case's entries and its counts.
* ``summarize``: the streamed ``collect_latest`` is compared with
  ``collect(latest_records(...))`` (the way it was computed before) on a results file
  with reruns (a failed line then an ok one, an ok one then a failed one) and review
  decisions; the CSV tables must be the same too.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from caseextract.evals.gold import load_gold_set
from caseextract.evals.scoring import Scorer, count
from caseextract.records import ErrorInfo, ResultRecord
from caseextract.review import summary
from caseextract.review.session import ReviewSession
from caseextract.schema import CaseReport
from caseextract.testing.answers import perturbed_answer

from conftest import ROOT
from helpers import crafted_record

REFERENCE = ROOT / "tests" / "data" / "scoring-reference.json"
GOLD = ROOT / "fixtures" / "gold"


def reference_entries() -> dict[str, dict[str, Any]]:
    """Per gold case: the sha256 of its scored entries (as dicts, in order) and its counts."""
    rng = random.Random(7)
    out = {}
    for case in load_gold_set():
        pred = CaseReport.model_validate(
            perturbed_answer(case.extraction.model_dump(mode="json"), rng)
        )
        entries = Scorer(case.text).score(case.extraction, pred)
        blob = json.dumps([e.to_dict() for e in entries], sort_keys=True, ensure_ascii=False)
        total, _ = count(entries)
        out[case.case_id] = {
            "sha256": hashlib.sha256(blob.encode()).hexdigest(),
            "counts": {k: v for k, v in total.__dict__.items()},
        }
    return out


def test_scoring_entries_are_those_of_the_scorer_before_its_caches():
    expected = json.loads(REFERENCE.read_text(encoding="utf-8"))
    got = reference_entries()
    assert {k: v["counts"] for k, v in got.items()} == {k: v["counts"] for k, v in expected.items()}
    assert got == expected


def _results_with_reruns(tmp_path: Path) -> Path:
    lines = []
    for name in sorted(GOLD.glob("*.json"))[:6]:
        gold = json.loads(name.read_text(encoding="utf-8"))
        record = crafted_record(gold["extraction"], ROOT / "fixtures" / gold["source"])
        lines.append(record.to_line())
    failed = ResultRecord(status="failed", error=ErrorInfo(kind="truncated", message="cut"))
    first = json.loads(lines[0])
    failed.document.id = first["document"]["id"]
    second = json.loads(lines[1])
    later_failed = ResultRecord(status="failed", error=ErrorInfo(kind="transient", message="x"))
    later_failed.document.id = second["document"]["id"]
    lone = ResultRecord(status="failed", error=ErrorInfo(kind="input", message="not text"))
    lone.document.id = "only-failed"
    # a failed run before the ok one, a failed rerun after an ok one, a document that failed
    lines = [failed.to_line(), *lines, later_failed.to_line(), lone.to_line(), lines[2]]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _plain(s: summary.Summary) -> dict[str, Any]:
    return {
        "documents": s.documents,
        "patients": s.patients,
        "terms": {
            c: [(k, t.label, t.patients, t.documents) for k, t in terms.items()]
            for c, terms in s.terms.items()
        },
        "grounding": dict(s.grounding),
        "review": dict(s.review),
        "tables": summary.tables(s),
    }


def test_streamed_summary_equals_the_summary_of_the_latest_records(tmp_path):
    results = _results_with_reruns(tmp_path)
    before = summary.collect(summary.latest_records(results), None, tmp_path)
    after = summary.collect_latest(results, None, tmp_path)
    assert _plain(after) == _plain(before)
    assert len(after.documents) == 7  # six documents and the one that only failed


def test_streamed_summary_with_decisions_equals_the_old_path(tmp_path):
    results = _results_with_reruns(tmp_path)
    session = ReviewSession(results, "ana")
    session.decide(0, "patients[0].findings[0]", "reject")
    session.decide(1, "patients[0].findings[0]", "accept")
    decisions, _ = summary.review_decisions(results)
    before = summary.collect(summary.latest_records(results), decisions, tmp_path)
    after = summary.collect_latest(results, decisions, tmp_path)
    assert after.review["rejected"] == 1 and after.review["accepted"] == 1
    assert _plain(after) == _plain(before)
