"""Multi-pass requests out, answers in: rounds of export, answer and import.

A pass depends on the answers before it, so the requests go out in rounds. The
answers here are *crafted* by ``caseextract.testing.CraftedPasses`` from a
crafted case series (not a model's output).
"""

from __future__ import annotations

import json

from caseextract.exchange.export import read_index
from caseextract.testing.passes import CraftedPasses
from test_exchange import do_import, export, flat, invoke
from test_passes import crafted_series


def answer_what_waits(out, crafted):
    """Write a crafted answer for every exported request that has none yet."""
    written = 0
    for entry in read_index(out)["documents"]:
        path = out / entry["answer"]
        if not path.exists():
            body = json.loads((out / entry["request"]).read_text(encoding="utf-8"))
            path.write_text(json.dumps(crafted.answer(body)[1]), encoding="utf-8")
            written += 1
    return written


def test_multi_pass_requests_go_out_in_rounds_and_replay(tmp_path):
    text, answer = crafted_series(cases=2)
    doc = tmp_path / "series.txt"
    doc.write_text(text, encoding="utf-8")
    crafted = CraftedPasses([(text, answer)])
    out, store = tmp_path / "requests", tmp_path / "store"

    # round 1: nothing answered yet, so only the plan goes out
    result = export(out, doc, extra=("--passes", "multi"))
    index = read_index(out)
    assert [e["pass"] for e in index["documents"]] == ["plan"]
    assert index["passes"] == "multi" and index["passes_version"]
    assert "1 request(s) wait for an answer" in flat(result)
    assert answer_what_waits(out, crafted) == 1
    result = do_import(out, store)
    assert result.exit_code == 0, result.output
    assert "quotes exact" in flat(result) and "not found 0" in flat(result)

    # round 2: the imported plan is replayed; the fills it leads to go out
    result = export(out, doc, extra=("--passes", "multi", "--answers", store))
    passes = [e["pass"] for e in read_index(out)["documents"]]
    assert passes == ["plan", "fill Case 1", "fill Case 2", "fill report"]
    assert "3 request(s) wait for an answer" in flat(result)
    assert answer_what_waits(out, crafted) == 3
    result = do_import(out, store)
    assert result.exit_code == 0, result.output
    assert "imported 4 answer(s)" in flat(result)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["passes"] == "multi" and manifest["cases"] == 1

    # round 3: every pass answered, nothing waits
    result = export(out, doc, extra=("--passes", "multi", "--answers", store))
    assert "0 request(s) wait for an answer" in flat(result)

    # run replays the store with --passes multi: every pass answered, nothing missed
    results = tmp_path / "r.jsonl"
    result = invoke(
        "run", doc, "--record-mode", "replay", "--recordings", store,
        "--passes", "multi", "-o", results, "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(results.read_text().splitlines()[0])
    assert record["status"] == "ok"
    units = [p["unit"] for p in record["passes"]]
    assert len(units) == 4 and units[0].startswith("plan")  # plan, two patients, the report
    assert all(p["status"] == "ok" for p in record["passes"])
    got = [[f["name"] for f in p["findings"]] for p in record["extraction"]["patients"]]
    assert got == [[f["name"] for f in p["findings"]] for p in answer["patients"]]


def test_pass_answers_go_stale_when_the_pass_prompts_change(tmp_path):
    text, answer = crafted_series(cases=1)
    doc = tmp_path / "series.txt"
    doc.write_text(text, encoding="utf-8")
    crafted = CraftedPasses([(text, answer)])
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, doc, extra=("--passes", "multi"))
    answer_what_waits(out, crafted)
    index = json.loads((out / "index.json").read_text())
    index["passes_version"] = "an-older-one"  # as if exported before a prompt change
    (out / "index.json").write_text(json.dumps(index))
    result = do_import(out, store)
    assert result.exit_code == 1
    assert "prompt or schema changed" in flat(result)
    assert not store.exists()


def test_an_answer_store_that_does_not_exist_is_a_clear_error(tmp_path):
    text, _ = crafted_series(cases=1)
    doc = tmp_path / "series.txt"
    doc.write_text(text, encoding="utf-8")
    store = tmp_path / "nowhere"
    result = invoke("export", doc, "--out", tmp_path / "o", "--passes", "multi", "--answers", store)
    assert result.exit_code == 2
    assert "no such answer store" in flat(result)
