"""``caseextract summarize``: the review at a glance, as HTML with plots and as CSV."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest
from caseextract.cli import app
from caseextract.records import ErrorInfo, ResultRecord
from caseextract.review.session import ReviewSession
from caseextract.review.summary import iso_months
from typer.testing import CliRunner

from conftest import ROOT, SEED
from helpers import beside, crafted_answer, crafted_record

runner = CliRunner()
GOLD = ROOT / "fixtures" / "gold"
CASES = (
    "ada-09-respiratory-failure-presenting-in-h1n1-influenza",
    "ada-23-the-narcotic-bowel-syndrome-clinical-features-pa",
)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Records built from the hand-labelled gold extractions (crafted, not model output),
    the crafted seed answer, and one failed document."""
    lines = []
    for case in CASES:
        gold = json.loads((GOLD / f"{case}.json").read_text())
        lines.append(
            crafted_record(
                gold["extraction"], beside(tmp_path, ROOT / "fixtures" / gold["source"])
            ).to_line()
        )
    lines.append(crafted_record(crafted_answer(), beside(tmp_path, SEED)).to_line())
    failed = ResultRecord(status="failed", error=ErrorInfo(kind="truncated", message="max_tokens"))
    failed.document.id = "broken-report"
    lines.append(failed.to_line())
    path = tmp_path / "results.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _patients_with(results: Path, category: str, label: str) -> int:
    count = 0
    for line in results.read_text().splitlines():
        record = json.loads(line)
        for p in (record.get("extraction") or {}).get("patients", []):
            names = {json.dumps(i.get("name")).strip('"').casefold() for i in p.get(category, [])}
            count += label in names
    return count


def test_summary_page_plots_and_tables(results, tmp_path):
    page = tmp_path / "out" / "report.html"
    result = runner.invoke(app, ["summarize", str(results), "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert html.count("<svg") >= 5  # age, sex and frequent-fact plots, inline
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched
    assert "<script" not in html and "<link" not in html
    assert "4 documents (3 ok, 1 failed)" in html
    tables = tmp_path / "out" / "report_tables"
    docs = _rows(tables / "documents.csv")
    assert [d["status"] for d in docs].count("failed") == 1
    patients = _rows(tables / "patients.csv")
    stated = [json.loads(line).get("extraction") for line in results.read_text().splitlines()]
    assert len(patients) == sum(len(e["patients"]) for e in stated if e) > 3
    terms = _rows(tables / "terms.csv")
    nausea = next(t for t in terms if t["category"] == "findings" and t["term"] == "nausea")
    assert int(nausea["patients"]) == _patients_with(results, "findings", "nausea")
    assert nausea["document_ids"] == CASES[1]
    # every term links to its documents' rows in the page
    anchor = 'href="#doc-' + CASES[1] + '"'
    assert anchor in html and f'id="doc-{CASES[1]}"' in html
    seed = next(p for p in patients if p["document"] == SEED.stem)
    assert seed["age_years"] == "87.0" and seed["sex"] == "female"
    assert seed["follow_up_months"] == "24.0"


def test_reviewed_summary_applies_the_decisions(results, tmp_path):
    session = ReviewSession(results, "ana")
    n = next(i for i, r in enumerate(session.records) if r.document.id == SEED.stem)
    session.decide(n, "patients[0].findings[0]", "reject")
    session.decide(
        n, "patients[0].findings", "add", {"name": "back pain", "evidence": ["back pain"]}
    )
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["summarize", str(results), "--reviewed", "--html", str(page)])
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "reviewed by ana" in html
    terms = _rows(tmp_path / "report_tables" / "terms.csv")
    findings = {t["term"] for t in terms if t["category"] == "findings"}
    assert "back pain" in findings and "no neurologic deficit" not in findings
    seed = next(
        d for d in _rows(tmp_path / "report_tables" / "documents.csv") if d["document"] == SEED.stem
    )
    assert (seed["rejected"], seed["added"], seed["undecided"]) == ("1", "1", "5")


def test_reviewed_without_a_review_file_says_so(results, tmp_path):
    result = runner.invoke(
        app, ["summarize", str(results), "--reviewed", "--html", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 2 and "no review file" in result.output


def test_iso_months():
    assert iso_months("P2Y") == 24 and iso_months("P6M") == 6 and iso_months("P1Y6M") == 18
    assert iso_months("P14D") == pytest.approx(0.46) and iso_months(None) is None


def test_chosen_review_files_and_the_latest_decision_stands(results, tmp_path):
    ana, ben = ReviewSession(results, "ana"), ReviewSession(results, "ben")
    n = next(i for i, r in enumerate(ana.records) if r.document.id == SEED.stem)
    ben.decide(n, "patients[0].findings[0]", "reject")
    time.sleep(1.1)  # decisions are timed to the second
    ana.decide(n, "patients[0].findings[0]", "accept")  # later, though ana's file sorts first
    page = tmp_path / "report.html"
    both = runner.invoke(app, ["summarize", str(results), "--reviewed", "--html", str(page)])
    assert both.exit_code == 0, both.output
    terms = _rows(tmp_path / "report_tables" / "terms.csv")
    assert any(t["term"] == "no neurologic deficit" for t in terms)  # ana's later accept
    only_ben = ["summarize", str(results), "--review", str(ben.review.path), "--html", str(page)]
    assert runner.invoke(app, only_ben).exit_code == 0
    terms = _rows(tmp_path / "report_tables" / "terms.csv")
    assert not any(t["term"] == "no neurologic deficit" for t in terms)
    assert "reviewed by ben" in page.read_text()
