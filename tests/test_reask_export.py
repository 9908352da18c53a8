"""bench/reasks.py exports the re-ask the pipeline would send, byte for byte, and only
when the judge re-asks (crafted first answers; nothing is sent)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import crafted_answer

ROOT = Path(__file__).resolve().parents[1]
SEED = "seed-vertebroplasty-cement-leakage"


def _gold(answer):
    return {
        "case_id": SEED,
        "source": f"cases/{SEED}.txt",
        "labeller": "crafted for this test",
        "labelled_on": "2026-12-08",
        "extraction": answer,
    }


def test_the_reask_request_is_exported_with_the_fact_and_the_fix(tmp_path):
    data = tmp_path / "data"
    (data / "cases").mkdir(parents=True)
    shutil.copy(ROOT / "fixtures" / "cases" / f"{SEED}.txt", data / "cases")
    # crafted: a quote that does not state the finding (re-asked), and a clean answer
    wrong = crafted_answer(
        findings=[{"name": "fever", "evidence": ["Complete paralysis of left lower extremity"]}]
    )
    for name, answer in (("bad", wrong), ("good", crafted_answer())):
        (data / "dev" / name).mkdir(parents=True)
        (data / "dev" / name / f"{SEED}.json").write_text(json.dumps(_gold(answer)))
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, "bench/reasks.py", "--data", str(data), "--out", str(out)]
        + ["--sets", "dev/bad", "dev/good"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "dev/bad" in run.stdout and "1 re-asked" in run.stdout
    assert not list((out / "dev-good").glob("*.request.json"))
    request = json.loads((out / "dev-bad" / f"{SEED}.request.json").read_text())
    first = next(m for m in request["messages"] if m.get("tool_calls"))
    assert json.loads(first["tool_calls"][0]["function"]["arguments"]) == wrong
    message = request["messages"][-1]["content"]
    assert '{"name": "fever", "assertion": "present"}' in message and "Fix:" in message
    index = json.loads((out / "dev-bad" / "index.json").read_text())
    assert index["documents"][0]["reasked_facts"] == ["patients[0].findings[0]"]
    assert "answer.json" in (out / "dev-bad" / f"{SEED}.brief.txt").read_text()
