"""Concurrency: throughput against a 300 ms server, and under a server-enforced RPM limit.

1. A fake server on 127.0.0.1 (own process) answers every request after 300 ms
   with a crafted completion carrying the gold label of the chosen report. 200
   copies of the report run through ``Runner`` at concurrency 1, 8 and 32, and
   once more at 32 against a 2 s server (a latency nearer a real model's).
   Ideal throughput is concurrency / latency. Two more views: the *wave bound*
   (200 documents in ceil(200 / c) waves: the best a finite batch can do) and
   *steady state* (throughput until the last full wave completes). The client's
   CPU time per document gives the ceiling one Python process can reach
   (1 / CPU per document), whatever the concurrency.

2. The same server with a requests-per-minute limit (token bucket, one second of
   burst) answering 429 + ``Retry-After`` (whole seconds) when over it; documents
   run with the CLI's default retry settings. Achieved rate = successful requests
   per minute between the first and last success, next to the limit.

    .venv/bin/python bench/concurrency.py [--case seed|ada-09] [--docs 200]
        [--levels 1@0.3,8@0.3,32@0.3,32@2] [--rpm 600] [--rpm-docs 300]
        [--rpm-concurrency 8] [--rpm-variants 3,8,3+jitter,8+jitter] [--skip throughput|rpm]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    FULL_CASE,
    SMALL_CASE,
    ServerProcess,
    bench_settings,
    copy_documents,
    crafted_body,
    print_header,
    table,
)

LATENCY = 0.3
RUN_TIMEOUT_S = 300.0  # no single batch may run longer than this


async def run_batch(
    base_url: str, paths: list[Path], out: Path, concurrency: int, **settings: Any
) -> dict[str, Any]:
    from caseextract.llm import ModelClient
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task

    done: list[float] = []
    client = ModelClient(bench_settings(base_url, **settings))
    with ResultWriter(out, resume=False) as writer:
        runner = Runner(
            default_task(),
            client,
            writer,
            concurrency,
            on_result=lambda _r: done.append(time.perf_counter()),
        )
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = await asyncio.wait_for(runner.run(paths), RUN_TIMEOUT_S)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"summary": summary, "elapsed": elapsed, "cpu": cpu, "done": [t - t0 for t in done]}


def throughput_part(case: str, n: int, runs: list[tuple[int, float]]) -> None:
    body = crafted_body(case)
    print(
        f"-- 1. throughput: {n} copies of fixtures/cases/{case}.txt; the server answers after "
        f"L seconds with a crafted tool call carrying fixtures/gold/{case}.json "
        f"({len(body):,} bytes)\n"
    )
    rows = []
    for latency in sorted({lat for _, lat in runs}):
        with (
            tempfile.TemporaryDirectory() as tmp,
            ServerProcess(body=body, delay=latency) as url,
        ):
            paths = copy_documents(case, Path(tmp) / "docs", n)
            asyncio.run(run_batch(url, paths[:2], Path(tmp) / "warm.jsonl", 2))  # warm-up
            for c in [c for c, lat in runs if lat == latency]:
                r = asyncio.run(run_batch(url, paths, Path(tmp) / f"c{c}.jsonl", c))
                ideal = c / latency
                rate = n / r["elapsed"]
                wave_bound = n / (math.ceil(n / c) * latency)
                full = (n // c) * c
                steady = full / r["done"][full - 1] if full else math.nan
                cpu_doc = r["cpu"] / n
                rows.append(
                    [
                        c,
                        f"{latency:g}",
                        f"{r['elapsed']:.2f}",
                        f"{rate:.1f}",
                        f"{ideal:.1f}",
                        f"{rate / ideal:.0%}",
                        f"{rate / wave_bound:.0%}",
                        f"{steady / ideal:.0%}",
                        f"{cpu_doc * 1000:.1f}",
                        f"{1 / cpu_doc:.0f}",
                        r["summary"].failed,
                    ]
                )
    header = ["concurrency", "L (s)", "seconds", "docs/s", "ideal c/L", "of ideal",
              "of wave bound", "steady state", "client CPU ms/doc", "CPU ceiling docs/s",
              "failed"]  # fmt: skip
    print(table(rows, header))
    print(
        "\n(of ideal = docs/s / (c / L); wave bound = docs/s / (n / (ceil(n/c) x L)); "
        "steady state = throughput until the last full wave completes, / ideal; CPU ceiling = "
        "1 / client CPU per document, the most one Python process can do at any concurrency)"
    )


@contextlib.contextmanager
def jittered_retry_after(spread: float) -> Iterator[None]:
    """What-if, inside this process only: add uniform(0, spread) s to every Retry-After wait.

    llm/failures.py adds its own small jitter (up to 0.1 x Retry-After + 0.05 s); this
    shows what more jitter would do, on top of it. It patches ``caseextract.llm.client.retry_after``
    for the duration and restores it.
    """
    import caseextract.llm.client as llm

    original = llm.retry_after
    rng = random.Random(1)

    def jittered(exc: BaseException) -> float | None:
        after = original(exc)
        return None if after is None else after + rng.uniform(0, spread)

    llm.retry_after = jittered
    try:
        yield
    finally:
        llm.retry_after = original


def rpm_part(case: str, rpm: float, n: int, concurrency: int, variants: list[str]) -> None:
    print(
        f"\n-- 2. rate limit: server allows {rpm:g} requests/minute (token bucket, 1 s burst), "
        f"answers 429 + Retry-After (whole seconds) over it; {n} documents at concurrency "
        f"{concurrency}, {LATENCY * 1000:.0f} ms latency. Rows: the CLI's default retry "
        "settings (--http-retries 3, --reasks 2); more HTTP retries; and a what-if with "
        "0-1 s more jitter on each Retry-After wait, on top of llm/failures.py's own up to 0.15 s "
        "(patched in this process only)\n"
    )
    body = crafted_body(case)
    rows, failures = [], []
    for variant in variants:
        retries, _, jitter = variant.partition("+")
        http_retries = max(0, min(int(retries), 20))
        server = ServerProcess(body=body, delay=LATENCY, rpm=rpm)
        patch = jittered_retry_after(1.0) if jitter else contextlib.nullcontext()
        with tempfile.TemporaryDirectory() as tmp, server as url, patch:
            paths = copy_documents(case, Path(tmp) / "docs", n)
            out = Path(tmp) / "rpm.jsonl"
            r = asyncio.run(run_batch(url, paths, out, concurrency, http_retries=http_retries))
        s = r["summary"]
        stats = server.stats
        ok_times = sorted(stats.get("ok_times", []))
        span = ok_times[-1] - ok_times[0] if len(ok_times) > 1 else math.nan
        achieved = (len(ok_times) - 1) / span * 60
        # the bucket starts full: one second of burst is not the sustained rate
        sustained = (len(ok_times) - 1 - rpm / 60) / span * 60
        label = f"{http_retries}" + (" + more jitter (what-if)" if jitter else "")
        rows.append(
            [
                label,
                f"{rpm:g}",
                f"{achieved:.0f}",
                f"{achieved / rpm:.0%}",
                f"{sustained / rpm:.0%}",
                s.ok,
                s.failed,
                stats.get("ok", "?"),
                stats.get("limited", "?"),
                f"{r['elapsed']:.1f}",
            ]
        )
        failures += [(label, *f) for f in s.failed_docs[:2]]
    header = ["--http-retries", "limit rpm", "achieved rpm", "of limit", "of limit w/o burst",
              "docs ok", "docs failed", "200s", "429s", "seconds"]  # fmt: skip
    print(table(rows, header))
    for label, doc_id, kind, message in failures:
        print(f"  ({label}) failed {doc_id}: [{kind}] {message[:60]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=["seed", "ada-09"], default="seed")
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument(
        "--levels",
        default="1@0.3,8@0.3,32@0.3,32@2",
        help="concurrency@latency_seconds, comma-separated",
    )
    ap.add_argument("--rpm", type=float, default=600)
    ap.add_argument("--rpm-docs", type=int, default=300)
    ap.add_argument("--rpm-concurrency", type=int, default=8)
    ap.add_argument(
        "--rpm-variants",
        default="3,8,3+jitter,8+jitter",
        help="one run each: HTTP retries, '+jitter' for the what-if",
    )
    ap.add_argument("--skip", choices=["throughput", "rpm"], default=None)
    args = ap.parse_args()
    case = SMALL_CASE if args.case == "seed" else FULL_CASE
    n = max(1, min(args.docs, 2000))
    runs = []
    for item in args.levels.split(","):
        c, _, lat = item.partition("@")
        runs.append((max(1, min(int(c), 256)), max(0.0, min(float(lat or LATENCY), 10.0))))

    logging.getLogger("instructor").setLevel(logging.CRITICAL)  # as the CLI does
    print_header("concurrency: throughput vs ideal, and under a server-enforced RPM limit")
    if args.skip != "throughput":
        throughput_part(case, n, runs)
    if args.skip != "rpm":
        variants = [v.strip() for v in args.rpm_variants.split(",") if v.strip()]
        rpm_part(
            case,
            max(6.0, args.rpm),
            max(1, min(args.rpm_docs, 3000)),
            max(1, min(args.rpm_concurrency, 256)),
            variants,
        )


if __name__ == "__main__":
    main()
