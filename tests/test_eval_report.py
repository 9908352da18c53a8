"""The eval report is a type: built once, written with the keys it always had, and an
old report.json (written before reports carried a version) still loads as a baseline."""

import json
import shutil

from caseextract.cli import app
from caseextract.evals import report as rep
from caseextract.evals.report_model import REPORT_VERSION, EvalReport, load_report
from typer.testing import CliRunner

from conftest import ROOT

# report.json as `caseextract eval --baseline …` wrote it before the report was typed
# (at commit 6a87580, whose report code is a7f2653's; replaying
# fixtures/recordings/gemma-3-270m). per_case, its entries and its families are trimmed
# to keep the file small; every key is as it was written.
OLD = ROOT / "tests" / "data" / "report-before-versioning.json"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_an_old_report_loads_through_the_type():
    old = load_report(OLD)
    raw = json.loads(OLD.read_text(encoding="utf-8"))
    assert "report_version" not in raw and old.report_version == 0
    assert old.micro.f1 == raw["micro"]["f1"]
    assert old.info.record_mode == raw["info"]["mode"] == "replay"
    assert old.schema_name == raw["schema"]
    assert old.per_case[0].totals.gold == raw["per_case"][0]["totals"]["gold"]
    assert old.baseline is not None and old.baseline[0].scope == raw["baseline"][0]["scope"]
    # written back, every key and value is as it was (nothing added, nothing lost)
    assert old.to_json() == raw


def test_an_older_report_without_the_later_figures_still_compares():
    """A report from before F1 cited, empty counts and grounding existed."""
    bare = {
        "info": {"model": "m", "mode": "replay"},
        "prompt_version": "p",
        "schema": "CaseReport",
        "schema_version": "1.0",
        "cases": 1,
        "extracted": 1,
        "micro": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "f1_strict": 0.25},
        "macro": {"f1_over_families": 0.5, "f1_over_cases": 0.5},
        "families": {"findings": {"f1": 0.5, "f1_strict": 0.25}},
        "per_case": [],
    }
    old = EvalReport.model_validate(bare)
    rows = {(r.scope, r.metric): r for r in rep.compare(load_report(OLD), old)}
    assert rows[("overall (micro)", "f1")].baseline == 0.5
    assert rows[("overall (micro)", "f1_cited")].baseline is None  # not in the old report


def test_eval_writes_a_versioned_report_and_takes_an_old_one_as_baseline(tmp_path):
    baseline = tmp_path / "old.json"
    shutil.copy(OLD, baseline)
    result = invoke("eval", "--out", tmp_path / "out", "--baseline", baseline)
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert written["report_version"] == REPORT_VERSION
    old_keys = set(json.loads(OLD.read_text(encoding="utf-8")))
    assert old_keys <= set(written)  # every key an old reader knows is still there
    assert {r["scope"] for r in written["baseline"]} >= {"overall (micro)"}
    assert "against baseline" in result.output


def test_an_unreadable_baseline_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    result = invoke("eval", "--out", tmp_path / "out", "--baseline", bad)
    assert result.exit_code == 2
    assert "not a readable eval report" in result.output


def test_one_function_builds_the_rows_both_scorecards_show(tmp_path):
    report = load_report(OLD)
    rows = rep.scorecard_rows(report)
    assert [r.scope for r in rows] == [rep.MICRO, *report.families]
    card = rep.markdown(report)
    for row in rows[1:]:
        cells = " | ".join(
            [f"{x:.3f}" if x is not None else "–" for x in row.scores]
            + [f"{100 * x:.1f}%" if x is not None else "–" for x in row.rates]
        )
        assert f"| {row.scope} | {cells} |" in card
