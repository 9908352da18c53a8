"""Your own task end to end: gold files name their task; eval, diff, show, cost work for it.

The cement-leakage task (``caseextract.tasks:CementLeakage``) is the example: its
gold (fixtures/gold-cement, pass A; fixtures/gold-cement-second, pass B) is scored
offline in CI from real recordings of the bundled local model. Answers served by the
crafted servers here are built from the gold labels and named crafted.
"""

import json
import shutil
from pathlib import Path

import pytest
from caseextract.cli import app
from caseextract.evals.agreement import agreement
from caseextract.evals.gold import FIXTURES, check, gold_task, load_gold, load_gold_set
from caseextract.schema import CaseReport
from caseextract.tasks import CementLeakage
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion
from typer.testing import CliRunner

runner = CliRunner()
CEMENT_GOLD = FIXTURES / "gold-cement"
CEMENT_SECOND = FIXTURES / "gold-cement-second"
CEMENT_RECORDED = FIXTURES / "recordings" / "gemma-3-270m-cement_leakage"
SEED_ID = "seed-vertebroplasty-cement-leakage"
NEGATIVE_ID = "ada-51-case-report-psoas-abscess-unusual-etiology-of-gr"
TASK = ["--schema", "caseextract.tasks:CementLeakage", "--prompt-set", "cement_leakage"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def cement_server(drop_consequences=False):
    """Crafted: answers each case with its own cement gold label."""
    golds = {c.case_id: c for c in load_gold_set(CEMENT_GOLD)}

    def respond(payload, index):
        user = payload["messages"][-1]["content"]
        case_id = next(cid for cid in golds if cid in user)
        data = golds[case_id].extraction.model_dump(mode="json")
        if drop_consequences:
            data["consequences"] = []
        return Reply(body=crafted_tool_completion(data, tool_name="CementLeakage"))

    return FakeOpenAIServer(respond)


def test_cement_gold_files_name_their_task_and_are_grounded():
    for folder in (CEMENT_GOLD, CEMENT_SECOND):
        files = sorted(folder.glob("*.json"))
        assert {p.stem for p in files} == {SEED_ID, NEGATIVE_ID}
        for path in files:
            assert check(path) == [], path.name
            case = load_gold(path)  # no model given: the file's own task
            assert isinstance(case.extraction, CementLeakage)
        assert gold_task(folder).schema_ref == "caseextract.tasks:CementLeakage"
    negative = load_gold(CEMENT_GOLD / f"{NEGATIVE_ID}.json").extraction
    assert negative.procedures == negative.leaks == negative.consequences == []
    assert negative.age is not None and negative.age.years == 25


def test_gold_files_without_a_task_are_case_reports():
    raw = json.loads((FIXTURES / "gold" / f"{SEED_ID}.json").read_text())
    assert "task" not in raw
    assert isinstance(load_gold(FIXTURES / "gold" / f"{SEED_ID}.json").extraction, CaseReport)
    assert gold_task(FIXTURES / "gold").prompt_set == "case_report"


def test_the_two_cement_passes_agree_by_the_project_scorer():
    total, families, cases = agreement(CEMENT_GOLD, CEMENT_SECOND)
    assert len(cases) == 2
    assert total.gold == total.pred == 7  # seed: age, procedure, 2 leaks, 2 consequences; age
    assert total.prf()[2] == 1.0 and total.prf(True)[2] == 1.0
    assert set(families) == {"age", "procedures", "leaks", "consequences"}


def test_a_leak_is_matched_on_its_site():
    """Leaks have no name: the scorer keys them on their enum ``site``."""
    gold = load_gold(CEMENT_GOLD / f"{SEED_ID}.json")
    pred = gold.extraction.model_copy(deep=True)
    pred.leaks[1].site = "foraminal"  # crafted: one leak put in the wrong place
    result = runner.invoke(app, ["schema"])  # keeps the CLI importable alongside
    assert result.exit_code == 0
    from caseextract.evals.scoring import Scorer, count

    total, fams = count(Scorer(gold.text).score(gold.extraction, pred))
    assert (fams["leaks"].tp_relaxed, fams["leaks"].fn_relaxed, fams["leaks"].fp_relaxed) == (
        1,
        1,
        1,
    )


def test_eval_scores_the_cement_task_from_its_recordings_offline(tmp_path):
    # no --recordings: a task's default is recordings/<model>-<prompt set>
    result = invoke("eval", "--gold", CEMENT_GOLD, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == "CementLeakage" and report["cases"] == 2
    assert report["info"]["recorded"]["max_tokens"] == 512  # the cement recordings' manifest
    assert report["info"]["task"]["prompt_set"] == "cement_leakage"
    errors = " ".join(c["error"] or "" for c in report["per_case"])
    assert "no recording" not in errors  # every request was found in the store
    manifest = json.loads((CEMENT_RECORDED / "manifest.json").read_text())
    assert manifest["task"]["schema"] == "caseextract.tasks:CementLeakage"
    assert set(report["families"]) <= {"age", "procedures", "leaks", "consequences"}


def test_eval_live_then_diff_show_and_cost_on_cement_results(tmp_path):
    with cement_server() as server:
        result = invoke(
            "eval", "--live", "--base-url", server.base_url, "--model", "crafted",
            "--gold", CEMENT_GOLD, "--out", tmp_path / "good", "--min-f1", "0.99",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    good = json.loads((tmp_path / "good" / "report.json").read_text())
    assert good["micro"]["f1"] == 1.0 and good["extracted"] == 2

    with cement_server() as server:
        out = tmp_path / "cement.jsonl"
        seed = FIXTURES / "cases" / f"{SEED_ID}.txt"
        result = invoke("run", seed, *TASK, "--base-url", server.base_url, "-o", out)
    assert result.exit_code == 0, result.output
    # the case-report gold cannot judge these results: one clear line, no traceback
    result = invoke("diff", out)
    assert result.exit_code == 2
    assert "CementLeakage" in result.output and "--gold" in result.output
    assert "Traceback" not in result.output and "ValidationError" not in result.output
    result = invoke("diff", out, "--gold", CEMENT_GOLD, "--all", "--html", tmp_path / "d.html")
    assert result.exit_code == 0, result.output
    assert "leaks" in result.output and "intrathecal" in result.output
    assert (tmp_path / "d.html").exists()
    result = invoke("show", out, "--source", seed, "--html", tmp_path / "e.html")
    assert result.exit_code == 0, result.output
    assert "polymethyl methacrylate cement leaked" in (tmp_path / "e.html").read_text()
    result = invoke("cost", out)
    assert result.exit_code == 0 and "crafted-model" in result.output


def test_a_regression_on_the_cement_task_shows_in_the_scorecard(tmp_path):
    with cement_server(drop_consequences=True) as server:
        result = invoke(
            "eval", "--live", "--base-url", server.base_url, "--model", "crafted",
            "--gold", CEMENT_GOLD, "--out", tmp_path, "--min-f1", "0.99",
        )  # fmt: skip
    assert result.exit_code == 1
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["families"]["consequences"]["recall"] == 0.0


def test_eval_refuses_a_schema_or_recordings_of_another_task(tmp_path):
    result = invoke("eval", "--gold", CEMENT_GOLD, "--schema", "caseextract.schema:CaseReport")
    assert result.exit_code == 2
    assert "is for caseextract.tasks:CementLeakage" in result.output
    case_report_recordings = FIXTURES / "recordings" / "gemma-3-270m"
    result = invoke("eval", "--gold", CEMENT_GOLD, "--recordings", case_report_recordings)
    assert result.exit_code == 2 and "were made for caseextract.schema:CaseReport" in result.output
    assert "--recordings" in result.output
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(CEMENT_GOLD / f"{SEED_ID}.json", mixed / "a.json")
    shutil.copy(FIXTURES / "gold" / f"{SEED_ID}.json", mixed / "b.json")
    result = invoke("eval", "--gold", mixed, "--cases", FIXTURES / "cases", "--out", tmp_path)
    assert result.exit_code == 2 and "several tasks" in result.output


def test_gold_and_cases_from_any_folder(tmp_path, monkeypatch):
    """No checkout needed: gold, case texts and recordings from folders of your own."""
    gold, cases, rec = tmp_path / "my-gold", tmp_path / "my-cases", tmp_path / "rec"
    gold.mkdir()
    cases.mkdir()
    shutil.copy(CEMENT_GOLD / f"{SEED_ID}.json", gold)
    shutil.copy(FIXTURES / "cases" / f"{SEED_ID}.txt", cases)
    monkeypatch.chdir(tmp_path)
    result = invoke("eval", "--gold", gold, "--out", "out")
    assert result.exit_code == 2 and "--cases" in result.output  # its source is elsewhere
    with cement_server() as server:
        args = ["--gold", gold, "--cases", cases, "--recordings", rec, "--out", "out"]
        live = ["--live", "--record", "--base-url", server.base_url, "--model", "crafted"]
        result = invoke("eval", *live, *args)
    assert result.exit_code == 0, result.output
    result = invoke("eval", *args)  # replayed, offline
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["micro"]["f1"] == 1.0
    result = invoke("diff", tmp_path / "out" / "results.jsonl", "--gold", gold, "--cases", cases)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("missing", ["nowhere", "empty"])
def test_a_missing_gold_folder_is_a_usage_error(tmp_path, missing):
    folder = tmp_path / missing
    if missing == "empty":
        folder.mkdir()
    result = invoke("eval", "--gold", folder, "--out", tmp_path)
    assert result.exit_code == 2 and "--gold" in result.output


def test_schema_in_prompt_puts_the_fields_in_the_system_message(tmp_path):
    seed = FIXTURES / "cases" / f"{SEED_ID}.txt"
    with cement_server() as server:
        for flag, out in (("--no-schema-in-prompt", "a.jsonl"), ("--schema-in-prompt", "b.jsonl")):
            result = invoke(
                "run", seed, *TASK, flag, "--base-url", server.base_url, "-o", tmp_path / out
            )
            assert result.exit_code == 0, result.output
        plain, described = (r["messages"][0]["content"] for r in server.requests)
    assert "Where the cement went." not in plain
    assert "- site: one of epidural | intrathecal" in described
    assert "Where the cement went." in described
    assert [
        json.loads((tmp_path / f).read_text())["schema_in_prompt"] for f in ("a.jsonl", "b.jsonl")
    ] == [False, True]


def installed_copy(site):
    """The package laid out as its wheel installs it (pyproject's package-dir mapping and
    package data), without the checkout's fixtures/ beside it."""
    import tomllib

    from conftest import ROOT

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    for package in config["packages"]:
        parts = package.split(".")
        for n in range(len(parts), 0, -1):  # the longest mapped prefix
            prefix = ".".join(parts[:n])
            if prefix in mapping:
                src = ROOT / mapping[prefix] / Path(*parts[n:])
                break
        dst = site / Path(*parts)
        dst.mkdir(parents=True, exist_ok=True)
        for f in src.glob("*.py"):
            shutil.copy(f, dst / f.name)
        for pattern in config["package-data"].get(package, []):  # as the wheel ships it
            for f in src.glob(pattern):
                (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dst / f.relative_to(src))
    return site


def test_eval_and_diff_from_an_installed_package(tmp_path):
    import os
    import subprocess
    import sys

    site = installed_copy(tmp_path / "site")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "caseextract", *map(str, args)],
            cwd=work, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    where = subprocess.run(
        [sys.executable, "-c", "import caseextract; print(caseextract.__file__)"],
        cwd=work, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(site))  # the copy, not the checkout
    done = cli("eval", "--out", "out")
    assert done.returncode == 2 and "no gold folder" in done.stderr and "--gold" in done.stderr
    args = ["--gold", CEMENT_GOLD, "--cases", FIXTURES / "cases"]
    done = cli("eval", *args, "--recordings", CEMENT_RECORDED, "--out", "out")
    assert done.returncode == 0, done.stderr
    done = cli("diff", work / "out" / "results.jsonl", *args)
    assert done.returncode == 0, done.stderr
    assert "leaks" in done.stdout or "consequences" in done.stdout or "age" in done.stdout


def test_the_schema_in_prompt_recordings_replay_with_the_description(tmp_path):
    """The manifest says the schema was in the prompt; replaying rebuilds that prompt."""
    rec = FIXTURES / "recordings" / "gemma-3-270m-cement_leakage-schema-in-prompt"
    result = invoke("eval", "--gold", CEMENT_GOLD, "--recordings", rec, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["info"]["task"]["schema_in_prompt"] is True
    errors = " ".join(c["error"] or "" for c in report["per_case"])
    assert "no recording" not in errors
