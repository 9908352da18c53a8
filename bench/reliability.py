"""Reliability figures: a batch of documents against a server that injects faults.

    python bench/reliability.py                # 200 documents, faults on 30% of requests
    python bench/reliability.py --docs 50 --rate 0.5 --seed 3

The batch itself (documents, fault schedule, counting on the wire and on disk)
is ``caseextract.testing.fault_batch``, shared with the reliability tests.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from caseextract.testing.fault_batch import run_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.3, help="share of requests with a fault")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("-j", "--concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=5.0, help="client timeout, seconds")
    parser.add_argument("--http-retries", type=int, default=3)
    parser.add_argument("--reasks", type=int, default=2)
    args = parser.parse_args(argv)
    logging.getLogger("instructor").setLevel(logging.CRITICAL)  # as the CLI does
    with tempfile.TemporaryDirectory(prefix="caseextract-reliability-") as tmp:
        result = run_batch(
            Path(tmp),
            docs=args.docs,
            rate=args.rate,
            seed=args.seed,
            concurrency=args.concurrency,
            timeout=args.timeout,
            http_retries=args.http_retries,
            reasks=args.reasks,
        )
    s = result.settings
    print(
        f"caseextract reliability: {args.docs} documents, faults on {args.rate:.0%} of requests "
        f"(seed {args.seed}), --http-retries {s.http_retries} --reasks {s.reasks} "
        f"--timeout {s.timeout:g} -j {args.concurrency}, backoff {s.backoff_initial:g}–"
        f"{s.backoff_max:g} s\n"
    )
    print(result.table())
    print(f"\n({result.elapsed_s:.0f} s on this machine; server on 127.0.0.1, replies crafted)")
    for line in result.mismatches()[:10]:
        print("MISMATCH", line)
    ok = not (
        result.lost()
        or result.duplicated()
        or result.bad_lines
        or result.mismatches()
        or result.retried_final()
        or result.after_success()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
