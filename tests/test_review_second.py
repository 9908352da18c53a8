"""Two extractions, one review: ``compare`` and ``review A --second B`` without a browser.

A and B are *crafted* answers for the seed report (written by hand in
``caseextract.testing.answers``; every quote copied from the report),
not model outputs: they agree on five facts, differ on one (the laminectomy's
urgency), and each has one finding the other lacks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from caseextract.cli import app
from caseextract.evals.compare import compare_files, source_text
from caseextract.review.second import SecondExtraction
from caseextract.review.session import ReviewSession
from caseextract.review.summary import summarize
from caseextract.testing.answers import SEED_ONLY_B_FINDING as PARALYSIS
from caseextract.testing.answers import crafted_seed_pair as answers
from typer.testing import CliRunner

from conftest import SEED
from helpers import beside, crafted_record

LAMINECTOMY = "patients[0].interventions[1]"


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = answers()
    path_a, path_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    source = beside(tmp_path, SEED)  # the review serves sources beside the results only
    path_a.write_text(crafted_record(a, source, model="model-a").to_line(), encoding="utf-8")
    path_b.write_text(crafted_record(b, source, model="model-b").to_line(), encoding="utf-8")
    return path_a, path_b


def _double(pair: tuple[Path, Path], reviewer: str = "ana") -> SecondExtraction:
    session = ReviewSession(pair[0], reviewer)
    docs = compare_files(pair[0], pair[1], source_text)
    return SecondExtraction(session, pair[1], {d.document: d.to_dict() for d in docs})


def test_compare_marks_each_fact_and_names_the_fields_that_differ(pair):
    (doc,) = compare_files(pair[0], pair[1], source_text)
    statuses = {(f.status, f.a, f.b) for f in doc.facts}
    assert doc.tally() == {"agreed": 5, "differs": 1, "only_a": 1, "only_b": 1}
    assert ("differs", LAMINECTOMY, LAMINECTOMY) in statuses
    assert ("only_a", "patients[0].findings[1]", None) in statuses
    assert ("only_b", None, "patients[0].findings[1]") in statuses
    (differs,) = [f for f in doc.facts if f.status == "differs"]
    assert differs.fields == [{"field": "urgency", "a": "emergent", "b": None}]
    assert doc.a["model"] == "model-a" and doc.b["model"] == "model-b"
    assert doc.warnings == []


def test_numbers_in_short_texts_must_agree(pair, tmp_path):
    a, _ = answers()
    b = copy.deepcopy(a)
    b["patients"][0]["interventions"][0]["anaesthesia"] = "intravenous sedation 2"
    path_b = tmp_path / "b2.jsonl"
    path_b.write_text(crafted_record(b, SEED, model="model-b").to_line(), encoding="utf-8")
    (doc,) = compare_files(pair[0], path_b, source_text)
    (differs,) = [f for f in doc.facts if f.status == "differs"]
    assert differs.fields[0]["field"] == "anaesthesia"


def test_compare_command_writes_records_and_prints_figures(pair, tmp_path):
    target = tmp_path / "agreement.jsonl"
    done = CliRunner().invoke(app, ["compare", str(pair[0]), str(pair[1]), "-o", str(target)])
    assert done.exit_code == 0, done.output
    (record,) = [json.loads(line) for line in target.read_text().splitlines()]
    assert record["tally"] == {"agreed": 5, "differs": 1, "only_a": 1, "only_b": 1}
    assert record["a"]["model"] == "model-a" and record["b"]["prompt_version"] == "crafted"
    assert {"f1", "f1_cited", "f1_strict"} <= set(record)
    assert "model-a" in done.output and "two models" in done.output
    assert "a person decides 3 of 8 facts (38%)" in done.output


def test_the_same_answer_twice_is_not_an_independent_sample(pair):
    done = CliRunner().invoke(app, ["compare", str(pair[0]), str(pair[0])])
    assert done.exit_code == 0
    assert "not an independent sample" in done.output
    assert "--record-mode" in done.output  # how to ask for a second sample


def test_compare_refuses_a_missing_file_in_one_line(pair, tmp_path):
    done = CliRunner().invoke(app, ["compare", str(pair[0]), str(tmp_path / "nope.jsonl")])
    assert done.exit_code == 2 and "no results file" in done.output


def test_agreed_facts_are_pre_accepted_once_and_can_be_rejected(pair):
    double = _double(pair)
    assert double.preaccept() == 5
    assert double.preaccept() == 0  # run again: nothing more
    decisions = double.session.log().decisions
    assert {d.source for d in decisions} == {"agreed"}
    assert all(d.action == "accept" and d.second for d in decisions)
    cards = double.pairs(0)
    assert sorted(c.status for c in cards[:3]) == ["differs", "only_a", "only_b"]  # first
    assert {c.status for c in cards[3:]} == {"agreed"}
    double.decide(0, "patients[0].age", "reject")
    states = {c.key: c.state for c in double.pairs(0)}
    assert states["patients[0].age"] == "rejected" and states["article"] == "agreed"


def test_one_key_per_decision_and_the_source_of_each_kept_fact(pair):
    double = _double(pair)
    double.preaccept()
    only_b = next(c.key for c in double.pairs(0) if c.status == "only_b")
    took_b = double.decide(0, LAMINECTOMY, "b")
    assert took_b.action == "edit" and took_b.source == "b"
    assert took_b.after["value"].get("urgency") is None
    took_a = double.decide(0, LAMINECTOMY, "a")  # changed my mind: A's values back
    assert took_a.action == "edit" and took_a.source == "a"
    assert took_a.after["value"]["urgency"] == "emergent"
    added = double.decide(0, only_b, "b")
    assert added.action == "add" and added.path == "patients[0].findings[2]"
    assert added.second == "patients[0].findings[1]"
    with pytest.raises(Exception, match="A has no such fact"):
        double.decide(0, only_b, "a")
    assert [c.status for c in double.pending(0)] == ["only_a"]
    with pytest.raises(Exception, match="1 disagreements"):
        double.gold(0)
    double.decide(0, "patients[0].findings[1]", "reject")
    gold = double.gold(0)
    names = [f["name"] for f in gold["extraction"]["patients"][0]["findings"]]
    assert names == ["neurologic deficit", PARALYSIS["name"]]
    assert "5 agreed facts accepted unseen" in gold["notes"]


def test_a_fact_only_b_has_rejected_stays_rejected(pair):
    double = _double(pair)
    only_b = next(c.key for c in double.pairs(0) if c.status == "only_b")
    decision = double.decide(0, only_b, "reject")
    assert decision.path.startswith("second:")
    assert next(c for c in double.pairs(0) if c.key == only_b).state == "rejected"
    again = next(c for c in _double(pair).pairs(0) if c.key == only_b)
    assert again.state == "rejected"  # read back from the file
    facts = double.session.corrected(0).extraction["patients"][0]["findings"]
    assert [f["name"] for f in facts] == ["neurologic deficit", "back pain"]


def test_edit_is_checked_against_the_schema_and_the_source(pair):
    double = _double(pair)
    bad = {"name": "laminectomy", "kind": "surgery", "evidence": ["not in the report"]}
    with pytest.raises(Exception, match="evidence not found"):
        double.decide(0, LAMINECTOMY, "edit", bad)
    good = dict(bad, evidence=["emergent laminectomy from T12 to L2"], urgency="urgent")
    assert double.decide(0, LAMINECTOMY, "edit", good).source == "edited"


def test_review_second_end_to_end_summarize_and_gold_export(pair, tmp_path):
    cli = CliRunner()
    gold_dir = tmp_path / "gold"
    args = ["review", str(pair[0]), "--second", str(pair[1]), "--reviewer", "ana"]
    first = cli.invoke(app, [*args, "--export-gold", str(gold_dir)])
    assert first.exit_code == 0, first.output
    assert "5 facts agreed (5 pre-accepted now)" in first.output
    assert "3 disagreements between A and B are not decided yet" in first.output
    assert not gold_dir.exists() or not list(gold_dir.iterdir())
    double = _double(pair)
    for card in double.pending(0):
        double.decide(0, card.key, "b" if card.b_value else "reject")
    again = cli.invoke(app, [*args, "--export-gold", str(gold_dir)])
    assert again.exit_code == 0, again.output
    (gold_file,) = gold_dir.iterdir()
    gold = json.loads(gold_file.read_text())
    assert gold["labeller"] == "reviewed by ana"
    written = summarize(pair[0], tmp_path / "report.html", reviewed=True)
    assert written and "complete paralysis" in (tmp_path / "report.html").read_text()


def test_documents_in_one_file_only_or_read_differently_are_named(pair, tmp_path):
    a, b = answers()
    other = tmp_path / "other-report.txt"
    other.write_text(SEED.read_text(encoding="utf-8").replace("87-year-old", "86-year-old"))
    b_other = copy.deepcopy(b)
    b_other["patients"][0]["age"] = {"raw": "86-year-old", "evidence": ["An 86-year-old"]}
    b_lines = pair[1].read_text() + crafted_record(b_other, other, model="model-b").to_line()
    path_b = tmp_path / "b-more.jsonl"
    path_b.write_text(b_lines, encoding="utf-8")
    docs = {d.document: d for d in compare_files(pair[0], path_b, source_text)}
    extra = docs["other-report"]
    assert extra.a["missing"] and "A has no record of this document" in extra.warnings
    assert {f.status for f in extra.facts} == {"only_b"}
    changed = tmp_path / "changed.jsonl"  # the same document id, another text
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / SEED.name).write_text(other.read_text(), encoding="utf-8")
    changed.write_text(crafted_record(b_other, moved / SEED.name).to_line(), encoding="utf-8")
    (doc,) = compare_files(pair[0], changed, source_text)
    assert doc.facts == [] and "different texts" in doc.warnings[0]


def test_an_assertion_that_differs_is_a_disagreement(pair, tmp_path):
    a, _ = answers()
    b = copy.deepcopy(a)
    b["patients"][0]["findings"][0]["assertion"] = "present"
    path_b = tmp_path / "b3.jsonl"
    path_b.write_text(crafted_record(b, SEED, model="model-b").to_line(), encoding="utf-8")
    (doc,) = compare_files(pair[0], path_b, source_text)
    (differs,) = [f for f in doc.facts if f.status == "differs"]
    assert differs.fields == [{"field": "assertion", "a": "absent", "b": "present"}]
