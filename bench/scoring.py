"""Scoring speed: time to score 1,000 (gold, prediction) case pairs.

The pairs are the 15 gold cases against perturbed copies of themselves (an item
dropped, a name reworded, an assertion flipped, an item invented, patients
reversed), cycled to the requested count; each pair is scored with its source
text, so grounding of predicted quotes and quote-overlap pairing are included.
The scorer keeps one aligner per source text (the document folded once, each
quote aligned and each fact judged once per run): the first pair of each case
pays for it, and is printed apart.
Run: ``python bench/scoring.py [--pairs 1000]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from caseextract.evals.gold import load_gold_set
from caseextract.evals.scoring import Scorer, count
from caseextract.schema import CaseReport
from caseextract.testing.answers import perturbed_answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    cases = load_gold_set()
    preds = [
        CaseReport.model_validate(perturbed_answer(c.extraction.model_dump(mode="json"), rng))
        for c in cases
    ]
    per_pair, items = [], 0
    started = time.perf_counter()
    for i in range(args.pairs):
        case, pred = cases[i % len(cases)], preds[i % len(cases)]
        t0 = time.perf_counter()
        total, _ = count(Scorer(case.text).score(case.extraction, pred))
        per_pair.append(time.perf_counter() - t0)
        items += total.gold + total.pred
    elapsed = time.perf_counter() - started
    cold = sum(per_pair[: len(cases)])
    per_pair.sort()
    print(
        f"scored {args.pairs} case pairs ({len(cases)} gold cases cycled, "
        f"{items:,} gold + predicted items) in {elapsed:.2f} s"
    )
    print(
        f"per pair: median {1000 * statistics.median(per_pair):.1f} ms, "
        f"p95 {1000 * per_pair[int(0.95 * len(per_pair))]:.1f} ms, "
        f"max {1000 * per_pair[-1]:.1f} ms"
    )
    print(
        f"first pair of each gold case (nothing cached: the document folded, every quote "
        f"aligned and judged): {cold:.2f} s for {len(cases)} pairs, "
        f"{1000 * cold / len(cases):.1f} ms per pair"
    )
    print("load average:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
