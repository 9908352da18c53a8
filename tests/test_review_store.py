"""Review files and reviewed documents: append-only decisions, torn lines, locks,
validated and grounded edits, corrected records, gold export, adjudication."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from caseextract.evals.gold import check as check_gold
from caseextract.review.decisions import Decision, ReviewFile, review_path
from caseextract.review.session import ReviewSession, compare
from caseextract.review.state import ReviewError, fact_problems

from conftest import SEED
from helpers import beside, crafted_answer, crafted_record

FEVER = {"name": "fever", "evidence": ["She had a fever of 39 C on arrival."]}  # not in SEED


@pytest.fixture
def results(tmp_path: Path) -> Path:
    record = crafted_record(
        crafted_answer(findings=[*crafted_answer()["patients"][0]["findings"], FEVER]),
        beside(tmp_path, SEED),
    )
    path = tmp_path / "results.jsonl"
    path.write_text(record.to_line(), encoding="utf-8")
    return path


def _decision(n: int, payload: str = "") -> Decision:
    return Decision(reviewer="t", document="d", path=f"x[{n}]", action="accept", note=payload)


def test_review_file_sits_beside_results_and_names_them(results):
    session = ReviewSession(results, "Ana B")
    assert (
        session.review.path
        == review_path(results, "Ana B")
        == results.with_name("results.Ana_B.review")
    )
    session.decide(0, "article", "accept")
    lines = session.review.path.read_text().splitlines()
    header, decision = json.loads(lines[0]), json.loads(lines[1])
    assert header["kind"] == "header" and header["results"] == "results.jsonl"
    assert decision["reviewer"] == "Ana B" and decision["path"] == "article"
    assert decision["action"] == "accept" and decision["before"]["state"] == "undecided"
    assert session.log().results == results.resolve()


def test_decisions_never_rewrite_the_results(results):
    before = results.read_bytes()
    session = ReviewSession(results, "ana")
    session.decide(0, "patients[0].findings[1]", "reject")
    session.decide(0, "article", "accept")
    assert results.read_bytes() == before
    assert len(session.log().decisions) == 2


def test_torn_last_line_is_dropped_and_cut_before_the_next_append(tmp_path):
    review = ReviewFile(tmp_path / "r.review")
    with review.locked():
        review.append(_decision(0))
    with review.path.open("a", encoding="utf-8") as fh:  # a save killed half-way
        fh.write('{"kind":"decision","reviewer":"t","docu')
    log = review.read()
    assert log.torn_tail and len(log.decisions) == 1
    with review.locked():
        review.append(_decision(1))
    lines = review.path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # every line readable again
    assert [d.path for d in review.read().decisions] == ["x[0]", "x[1]"]


_WRITER = """
import sys
from caseextract.review.decisions import Decision, ReviewFile
review = ReviewFile(__import__("pathlib").Path(sys.argv[1]))
n = 0
while True:
    with review.locked():
        review.append(Decision(reviewer="k", document="d", path=f"x[{n}]", action="accept",
                               note="x" * 200_000))
    n += 1
"""


def test_a_kill_mid_save_leaves_a_readable_review_file(tmp_path):
    path = tmp_path / "r.review"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)])
    try:
        deadline = time.monotonic() + 30
        while (
            not path.exists() or path.stat().st_size < 2_000_000
        ) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log = ReviewFile(path).read()
    assert len(log.decisions) >= 5 and log.skipped_lines == 0
    assert [d.path for d in log.decisions] == [f"x[{i}]" for i in range(len(log.decisions))]


def test_concurrent_savers_lose_nothing(results):
    # two tabs are two requests served by threads of one server; two servers are
    # two processes: both go through the lock
    sessions = [ReviewSession(results, "ana"), ReviewSession(results, "ana")]
    paths = ["article", "patients[0].age", "patients[0].sex", "patients[0].findings[0]"]
    errors: list[BaseException] = []

    def work(session: ReviewSession, k: int) -> None:
        try:
            for i in range(10):
                session.decide(0, paths[(i + k) % len(paths)], "accept" if i % 2 else "reject")
                session.decide(
                    0, "patients[0].findings", "add", dict(FEVER, evidence=["back pain"])
                )
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, k)) for k, s in enumerate(sessions * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = sessions[0].log()
    assert len(log.decisions) == 80 and log.skipped_lines == 0
    added = [d.path for d in log.decisions if d.action == "add"]
    assert len(set(added)) == 40  # every added fact got its own slot


_ADDER = """
import sys
from pathlib import Path
from caseextract.review.session import ReviewSession
import time
session = ReviewSession(Path(sys.argv[1]), "ana")
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
for i in range(40):
    session.decide(0, "patients[0].findings", "add", {"name": "pain", "evidence": ["back pain"]})
"""


def test_two_servers_on_one_review_file_lose_nothing(results, tmp_path):
    # separate processes share only the file: the flock keeps lines whole and slots distinct
    go = tmp_path / "go"
    args = [sys.executable, "-c", _ADDER, str(results), str(go)]
    procs = [subprocess.Popen(args) for _ in range(2)]
    time.sleep(4)  # both have imported and wait at the start line
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    log = ReviewSession(results, "ana").log()
    assert len(log.decisions) == 80 and log.skipped_lines == 0 and not log.torn_tail
    assert len({d.path for d in log.decisions}) == 80


def test_problems_are_read_generically():
    assert fact_problems({"grounded": True, "quotes": [{"status": "exact"}]}) == []
    assert "ungrounded" in fact_problems({"grounded": False, "quotes": [{"status": "not_found"}]})
    assert fact_problems({"grounded": True, "quotes": [{"status": "fuzzy"}]}) == ["quote fuzzy"]
    # statuses added by other checks slot in without code here knowing them
    assert fact_problems({"grounded": True, "support_status": "unsupported", "quotes": []}) == [
        "unsupported"
    ]
    assert fact_problems({"quotes": [{"status": "assertion_conflict"}]}) == [
        "quote assertion_conflict"
    ]
    assert fact_problems({"quotes": [], "number_mismatches": ["value='3': 3 not in the quote"]})


def test_problem_facts_come_first(results):
    facts = ReviewSession(results, "ana").facts(0)
    assert facts[0].path == "patients[0].findings[1]" and "ungrounded" in facts[0].problems
    assert all(not f.problems for f in facts[1:])


def test_an_invalid_edit_is_refused_and_nothing_is_saved(results):
    session = ReviewSession(results, "ana")
    with pytest.raises(ReviewError) as caught:
        session.decide(
            0,
            "patients[0].findings[0]",
            "edit",
            {
                "name": "neurologic deficit",
                "assertion": "maybe",
                "evidence": ["no neurologic deficit"],
            },
        )
    assert any(e.startswith("assertion:") for e in caught.value.errors)
    with pytest.raises(ReviewError, match="not found in the source"):
        session.decide(0, "patients[0].findings[0]", "edit", FEVER)
    assert not session.review.path.exists()


def test_an_edit_is_normalised_and_grounded(results):
    session = ReviewSession(results, "ana")
    d = session.decide(
        0, "patients[0].age", "edit", {"raw": "87-year-old", "evidence": ["An 87-year-old female"]}
    )
    assert d.after["value"]["years"] == 87  # the model's validator ran
    quote = d.after["grounding"]["quotes"][0]
    assert quote["status"] == "exact" and SEED.read_text()[quote["start"] : quote["end"]] == (
        "An 87-year-old female"
    )
    view = {v.path: v for v in session.facts(0)}["patients[0].age"]
    assert view.state == "edited" and view.value["raw"] == "87-year-old"


def test_corrected_record_and_gold_export(results, tmp_path):
    session = ReviewSession(results, "ana")
    with pytest.raises(ReviewError, match="not reviewed"):
        session.gold(0)
    for fact in session.facts(0):
        if fact.path == "patients[0].findings[1]":
            session.decide(0, fact.path, "reject")
        elif fact.path == "patients[0].interventions[1]":
            value = dict(fact.value, urgency="urgent")
            session.decide(0, fact.path, "edit", value)
        else:
            session.decide(0, fact.path, "accept")
    session.decide(
        0, "patients[0].findings", "add", {"name": "back pain", "evidence": ["had back pain"]}
    )
    corrected = session.corrected(0)
    findings = corrected.extraction["patients"][0]["findings"]
    assert [f["name"] for f in findings] == ["neurologic deficit", "back pain"]
    assert corrected.extraction["patients"][0]["interventions"][1]["urgency"] == "urgent"
    assert corrected.grounding.rate == 1.0 and corrected.review["reviewers"] == ["ana"]
    gold = session.gold(0)
    assert gold["labeller"] == "reviewed by ana" and gold["source"] == f"cases/{SEED.name}"
    path = tmp_path / "gold" / "seed-vertebroplasty-cement-leakage.json"
    path.parent.mkdir()
    path.write_text(json.dumps(gold))
    # the evals harness takes it as a gold case (its text found with --cases, as any gold)
    assert check_gold(path, cases_dir=SEED.parent) == []
    placed = session.gold(0, folder=path.parent)  # written into a folder: found from there
    path.write_text(json.dumps(placed))
    assert check_gold(path) == []
    rows = session.csv(0)
    assert rows[0]["patient.findings"] == "no neurologic deficit; back pain"


def test_adjudication_finds_disagreements(results):
    a, b = ReviewSession(results, "ana"), ReviewSession(results, "ben")
    for s in (a, b):
        s.decide(0, "article", "accept")
    a.decide(0, "patients[0].findings[1]", "reject")
    b.decide(0, "patients[0].findings[1]", "accept")
    a.decide(0, "patients[0].age", "accept")
    agreed, differ = compare(a.log(), b.log())
    assert [d.path for d in agreed] == ["article"]
    assert {(d.path, d.a and d.a.action, d.b and d.b.action) for d in differ} == {
        ("patients[0].findings[1]", "reject", "accept"),
        ("patients[0].age", "accept", None),
    }
    judge = ReviewSession(results, "cy")
    judge.base = agreed
    states = {v.path: v.state for v in judge.facts(0)}
    assert states["article"] == "accepted" and states["patients[0].findings[1]"] == "undecided"


def test_accepting_different_values_is_a_disagreement_and_taking_it_keeps_the_values(results):
    from caseextract.review.session import taken_from

    a, b = ReviewSession(results, "ana"), ReviewSession(results, "ben")
    age = {"raw": "87 years", "evidence": ["An 87-year-old female patient"]}
    a.decide(0, "patients[0].age", "edit", age)
    a.decide(0, "patients[0].age", "accept")  # ana accepts her edited age
    b.decide(0, "patients[0].age", "accept")  # ben accepts the age as extracted
    agreed, (d,) = compare(a.log(), b.log())
    assert agreed == [] and d.a.value["raw"] == "87 years" and d.b.value["raw"] == "87-year-old"
    judge = ReviewSession(results, "cy")
    current = {v.path: v for v in judge.facts(0)}["patients[0].age"].value
    spec = taken_from(d.a, current)
    assert spec["action"] == "edit" and spec["value"]["raw"] == "87 years"
    judge.decide(0, d.path, spec["action"], spec["value"], note=spec["note"])
    assert judge.corrected(0).extraction["patients"][0]["age"]["raw"] == "87 years"
    assert taken_from(d.b, current)["action"] == "accept"


def test_decisions_on_an_earlier_extraction_are_not_applied(results):
    session = ReviewSession(results, "ana")
    session.decide(0, "patients[0].findings[0]", "reject")
    # the document is extracted again: another answer, same document and paths
    answer = crafted_answer(findings=[{"name": "back pain", "evidence": ["had back pain"]}])
    results.write_text(
        crafted_record(answer, beside(results.parent, SEED)).to_line(), encoding="utf-8"
    )
    again = ReviewSession(results, "ana")
    record = again.records[0]
    assert again.stale(record) == 1 and again.decisions(record) == []
    states = {v.path: v.state for v in again.facts(0)}
    assert states["patients[0].findings[0]"] == "undecided"


@pytest.mark.parametrize("damage", ["torn inside é", "bad byte in a whole line"])
def test_a_damaged_review_file_keeps_every_readable_decision(results, tmp_path, damage):
    session = ReviewSession(results, "ana")
    session.decide(0, "article", "accept")
    session.decide(0, "patients[0].findings[0]", "reject")
    path = session.review.path
    whole = path.read_bytes()
    if damage == "torn inside é":  # a disk-full during a save: the file ends inside "é"
        path.write_bytes(whole + b'{"kind":"decision","note":"caf\xc3')
    else:  # one bad byte in a complete line: the first decision's line
        lines = whole.splitlines(keepends=True)
        lines[1] = lines[1][:30] + b"\xff" + lines[1][31:]
        path.write_bytes(b"".join(lines))
    log = session.log()
    kept = 1 if damage == "bad byte in a whole line" else 2
    assert len(log.decisions) == kept
    if damage == "torn inside é":
        assert log.torn_tail and not log.problems
    else:
        (problem,) = log.problems
        assert "line 2" in problem and "UTF-8" in problem
    # every page, save, export and summary still works
    session.decide(0, "patients[0].findings[1]", "accept")
    assert len(session.log().decisions) == kept + 1
    assert session.corrected(0).ok
    if damage == "torn inside é":  # the torn tail was cut before the save, kept aside
        assert path.with_name(path.name + ".damaged").read_bytes().endswith(b"caf\xc3\n")
    from caseextract.review.summary import summarize

    summarize(results, tmp_path / "summary.html", reviewed=True)
