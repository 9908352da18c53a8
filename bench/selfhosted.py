"""Self-hosted at scale: one pipeline process at high concurrency against a slow server.

A crafted server on 127.0.0.1 (own process, so its CPU is not counted here)
answers every request after L seconds (1 s by default, a self-hosted model's
order of magnitude for a short answer) with a tool call carrying the gold label of
the seed report. N copies of the report run through ``Runner`` at concurrency c
(64 by default) in this process. Printed: documents per minute, the ideal
c / L, and the pipeline's CPU share: its process CPU time over the wall time
(100% = one core busy; a process cannot go past one core for Python work).

    .venv/bin/python bench/selfhosted.py [--docs 640] [--concurrency 64] [--latency 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from pathlib import Path

from _common import SMALL_CASE, ServerProcess, copy_documents, crafted_body, print_header, table
from concurrency import run_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=640)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=1.0)
    args = ap.parse_args()
    n = max(1, min(args.docs, 5000))
    c = max(1, min(args.concurrency, 256))
    latency = max(0.0, min(args.latency, 10.0))
    logging.getLogger("instructor").setLevel(logging.CRITICAL)  # as the CLI does
    print_header(f"self-hosted at scale: {n} documents, -j {c}, {latency:g} s server")
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServerProcess(body=crafted_body(SMALL_CASE), delay=latency) as url,
    ):
        paths = copy_documents(SMALL_CASE, Path(tmp) / "docs", n)
        asyncio.run(run_batch(url, paths[:4], Path(tmp) / "warm.jsonl", 4))  # warm-up
        r = asyncio.run(run_batch(url, paths, Path(tmp) / "out.jsonl", c))
    per_min = n / r["elapsed"] * 60
    ideal = c / latency * 60 if latency else float("inf")
    rows = [[
        c, f"{latency:g}", n, f"{r['elapsed']:.1f}", f"{per_min:,.0f}", f"{ideal:,.0f}",
        f"{per_min / ideal:.0%}", f"{r['cpu'] / n * 1000:.1f}", f"{r['cpu'] / r['elapsed']:.0%}",
        r["summary"].failed,
    ]]  # fmt: skip
    header = ["concurrency", "L (s)", "docs", "seconds", "docs/min", "ideal c/L per min",
              "of ideal", "CPU ms/doc", "pipeline CPU share", "failed"]  # fmt: skip
    print(table(rows, header))
    print(
        "\n(pipeline CPU share = this process's CPU time / wall time, of one core; the "
        "server runs in another process)"
    )


if __name__ == "__main__":
    main()
