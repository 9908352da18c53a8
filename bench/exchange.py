"""Requests out, answers in: how long export, import and the replayed eval take.

Exports the 15 gold cases with the defaults ``eval`` uses, writes *crafted*
answers (each case's own gold label, never a model's output), imports them into
a fresh store and replays the store through the eval harness (extraction,
grounding and scoring). Everything runs in one process in a temporary folder;
nothing leaves the machine. Run: ``python bench/exchange.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import CASES, GOLD, gold_extraction, print_header
from caseextract.evals.runner import evaluate
from caseextract.exchange.answers import import_answers
from caseextract.exchange.export import export_requests
from caseextract.llm import ModelSettings
from caseextract.tasks import default_task


def one_round(work: Path) -> dict[str, float]:
    ids = sorted(p.stem for p in GOLD.glob("*.json"))
    out, store = work / "requests", work / "store"
    t0 = time.perf_counter()
    task = default_task()
    result = export_requests(
        [CASES / f"{i}.txt" for i in ids], out, task, ModelSettings(), "case_report", None
    )
    t1 = time.perf_counter()
    for i in ids:  # crafted answers: the gold labels
        (out / f"{i}.answer.json").write_text(json.dumps(gold_extraction(i)), encoding="utf-8")
    t2 = time.perf_counter()
    import_answers(out, store, "crafted by bench/exchange.py from the gold labels", "crafted")
    t3 = time.perf_counter()
    report = evaluate(work / "eval", store)
    t4 = time.perf_counter()
    assert report.extracted == len(ids), report.per_case
    sizes = [len((out / e["request"]).read_bytes()) for e in result.index["documents"]]
    return {
        "documents": len(ids),
        "export_s": t1 - t0,
        "import_s": t3 - t2,
        "eval_s": t4 - t3,
        "request_kb_total": sum(sizes) / 1000,
        "f1": report.micro.f1,
        "f1_cited": report.micro.f1_cited,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print_header("export → crafted answers → import → replayed eval (15 gold cases)")
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            rounds.append(one_round(Path(tmp)))
    first = rounds[0]
    print(f"documents {first['documents']}, request bodies {first['request_kb_total']:.0f} kB")
    for key in ("export_s", "import_s", "eval_s"):
        values = [r[key] for r in rounds]
        print(
            f"{key[:-2]:>7}: median {statistics.median(values):.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f}; {len(values)} rounds)"
        )
    print(f"replayed crafted gold answers: F1 {first['f1']:.3f}, cited {first['f1_cited']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
