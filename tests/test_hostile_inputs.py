"""Hostile inputs, third round: an export index that points elsewhere, answers too deep or
too large, review API values of the wrong type, pass-store files nested too deeply.

Each gets a one-line error (exit 2) or is set aside by name; nothing else is lost.
Every answer here is crafted by the test, never a model's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from caseextract.cli import app
from caseextract.evals.gold import FIXTURES
from typer.testing import CliRunner

from helpers import CRAFTED_SEED_ANSWER

runner = CliRunner()
SEED_ID = "seed-vertebroplasty-cement-leakage"
PSOAS_ID = "ada-51-case-report-psoas-abscess-unusual-etiology-of-gr"
CASES = FIXTURES / "cases"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def flat(result) -> str:
    return " ".join(result.output.split())


def exported(tmp_path: Path, *ids: str) -> Path:
    out = tmp_path / "requests"
    result = invoke("export", *(CASES / f"{i}.txt" for i in ids), "--out", out)
    assert result.exit_code == 0, result.output
    for i in ids:  # crafted answers
        (out / f"{i}.answer.json").write_text(json.dumps(CRAFTED_SEED_ANSWER))
    return out


def do_import(folder: Path, store: Path):
    return invoke(
        "import", folder, "--recordings", store, "--provenance", "crafted by the test suite"
    )


def edit_index(folder: Path, change) -> None:
    path = folder / "index.json"
    index = json.loads(path.read_text())
    change(index["documents"])
    path.write_text(json.dumps(index))


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink out"])
def test_import_reads_answers_inside_its_folder_only(tmp_path, where):
    folder = exported(tmp_path, SEED_ID)
    outside = tmp_path / "outside.answer.json"
    outside.write_text(json.dumps(CRAFTED_SEED_ANSWER))
    if where == "dotdot":
        edit_index(folder, lambda docs: docs[0].update(answer="../outside.answer.json"))
    elif where == "absolute":
        edit_index(folder, lambda docs: docs[0].update(answer=str(outside)))
    else:
        (folder / f"{SEED_ID}.answer.json").unlink()
        os.symlink(outside, folder / f"{SEED_ID}.answer.json")
    result = do_import(folder, tmp_path / "store")
    assert result.exit_code == 2, result.output
    assert "outside" in flat(result) and SEED_ID in flat(result)
    assert not (tmp_path / "store").exists()


def test_import_refuses_two_index_entries_with_one_id(tmp_path):
    folder = exported(tmp_path, SEED_ID, PSOAS_ID)
    edit_index(folder, lambda docs: docs[1].update(id=docs[0]["id"]))
    result = do_import(folder, tmp_path / "store")
    assert result.exit_code == 2, result.output
    assert f"{SEED_ID!r} twice" in flat(result)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("fault", ["deep answer", "path not a string", "answer too large"])
def test_import_bad_answers_get_one_line(tmp_path, fault):
    folder = exported(tmp_path, SEED_ID)
    answer = folder / f"{SEED_ID}.answer.json"
    if fault == "deep answer":
        answer.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    elif fault == "path not a string":
        edit_index(folder, lambda docs: docs[0].update(answer=["x.answer.json"]))
    else:
        from caseextract.exchange.answers import MAX_ANSWER_BYTES

        with answer.open("r+b") as fh:  # sparse: nothing is written to disk
            fh.truncate(MAX_ANSWER_BYTES + 1)
    result = do_import(folder, tmp_path / "store")
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("error")]
    assert SEED_ID in line or "answer" in line


FORMULAS = ['=HYPERLINK("http://x.example","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3+cmd",
            "\t=1+1", "\r=1+1"]  # fmt: skip
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _hostile_results(tmp_path: Path) -> Path:
    from conftest import SEED
    from helpers import beside, crafted_answer, crafted_record

    findings = [{"name": f, "evidence": ["no neurologic deficit"]} for f in FORMULAS]
    answer = crafted_answer(findings=findings)
    answer["article"]["title"] = FORMULAS[0]
    path = tmp_path / "results.jsonl"
    path.write_text(crafted_record(answer, beside(tmp_path, SEED)).to_line(), encoding="utf-8")
    return path


def _cells(path: Path) -> list[str]:
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def test_no_csv_cell_starts_a_formula(tmp_path):
    """OWASP CSV injection (https://owasp.org/www-community/attacks/CSV_Injection): a cell
    that starts with = + - @ TAB or CR gets a leading ' so spreadsheets read it as text."""
    from caseextract.review.app import running
    from caseextract.review.session import ReviewSession
    from caseextract.store import write_csv

    results = _hostile_results(tmp_path)
    written = [tmp_path / "results.csv"]
    write_csv(results, written[0])
    result = invoke("summarize", results, "--html", tmp_path / "s.html")
    assert result.exit_code == 0, result.output
    written += sorted((tmp_path / "s_tables").glob("*.csv"))
    session = ReviewSession(results, "cy")
    session.decide(0, "article", "accept")
    result = invoke("review", results, "--reviewer", "cy", "--export-csv", tmp_path / "c.csv")
    assert result.exit_code == 0, result.output
    written.append(tmp_path / "c.csv")
    with running(session) as url:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("GET", "/doc/0/record.csv", headers={"Host": parts.netloc})
        (tmp_path / "app.csv").write_bytes(conn.getresponse().read())
        conn.close()
    written.append(tmp_path / "app.csv")
    names = {p.name for p in written}
    assert {"patients.csv", "terms.csv", "results.csv", "c.csv", "app.csv"} <= names, names
    for path in written:
        cells = _cells(path)
        assert not [c for c in cells if c.startswith(FORMULA_START)], path.name
    assert "'" + FORMULAS[0] in _cells(written[0])  # the text itself is kept


AGES = [{"raw": "very old", "value": 1e15, "unit": "years"},
        {"raw": "aged 1e308", "value": 1e308, "unit": "years"},
        {"raw": "200-year-old", "value": 200, "unit": "years"}]  # fmt: skip


@pytest.mark.parametrize("age", AGES)
def test_an_age_over_150_years_is_flagged_and_summarize_still_writes(tmp_path, age):
    from caseextract import grounding
    from caseextract.schema import CaseReport

    from conftest import SEED
    from helpers import beside, crafted_answer, crafted_record

    answer = crafted_answer()
    answer["patients"][0]["age"] = {**age, "evidence": ["An 87-year-old female patient"]}
    value = CaseReport.model_validate(answer)
    assert value.patients[0].age.years is None  # not an age: never counted as one
    facts = grounding.ground(value, SEED.read_text(encoding="utf-8"))
    (flag,) = [f for f in facts if f.path == "patients[0].age"]
    assert any("150 years" in m for m in flag.number_mismatches), flag.number_mismatches
    results = tmp_path / "results.jsonl"
    record = crafted_record(answer, beside(tmp_path, SEED))
    record.extraction["patients"][0]["age"].update(years=age["value"])  # an older record
    results.write_text(record.to_line(), encoding="utf-8")
    result = invoke("summarize", results, "--html", tmp_path / "s.html")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.html").is_file()


def test_plot_text_is_plain_text(tmp_path):
    from conftest import SEED
    from helpers import beside, crafted_answer, crafted_record

    term = r"$\undefinedmacro{x}$ pain"
    answer = crafted_answer(findings=[{"name": term, "evidence": ["no neurologic deficit"]}])
    results = tmp_path / "results.jsonl"
    results.write_text(crafted_record(answer, beside(tmp_path, SEED)).to_line(), "utf-8")
    result = invoke("summarize", results, "--html", tmp_path / "s.html")
    assert result.exit_code == 0, result.output
    assert "undefinedmacro" in (tmp_path / "s.html").read_text(encoding="utf-8")
