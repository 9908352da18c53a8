"""Rate limits: how much of an RPM or a TPM limit the pipeline uses, and what fails.

A crafted server on 127.0.0.1 (own process) enforces ONE limit per run, as a
provider does: N requests, or N tokens, per window (a token bucket holding one
window's worth, refilled continuously). Tokens are counted as the provider's
rate-limits guide describes: the prompt estimated from its size (4 characters a
token) plus the request's ``max_tokens``. Over the limit it answers 429 with
``Retry-After`` (whole seconds); with ``headers`` every answer also carries the
``x-ratelimit-limit/remaining/reset-*`` headers. The window is SHORT (10 s by
default instead of a minute) so a run takes a minute or two; limits are quoted per
window and per minute.

Documents run through ``Runner`` with the CLI's default settings (no --rpm, no
--tpm, --http-retries 3, --rate-limit-wait 900) at -j 8, 300 ms latency.

"Used" = what the server let through between the first and the last answered
request, minus the window's worth the bucket starts with, over what the limit
allows in that time: the sustained share of the limit.

    .venv/bin/python bench/ratelimit.py [--docs 300] [--window 10] [--rpw 30]
        [--tpw 400000] [--concurrency 8] [--variants rpm,tpm,rpm-noheaders,tpm-noheaders]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import tempfile
from pathlib import Path

from _common import SMALL_CASE, ServerProcess, copy_documents, crafted_body, print_header, table
from concurrency import LATENCY, run_batch


def one(variant: str, n: int, window: float, rpw: float, tpw: float, c: int) -> list:
    unit, _, noheaders = variant.partition("-")
    limit = rpw if unit == "rpm" else tpw
    key = "limit_requests" if unit == "rpm" else "limit_tokens"
    server = ServerProcess(
        body=crafted_body(SMALL_CASE), delay=LATENCY, window=window, headers=not noheaders,
        **{key: limit},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, server as url:
        paths = copy_documents(SMALL_CASE, Path(tmp) / "docs", n)
        r = asyncio.run(run_batch(url, paths, Path(tmp) / "out.jsonl", c))
    s, stats = r["summary"], server.stats
    times, costs = stats.get("ok_times", []), stats.get("ok_costs", [])
    span = times[-1] - times[0] if len(times) > 1 else math.nan
    used = len(times) if unit == "rpm" else sum(costs)
    rate = limit / window
    sustained = (used - limit) / (span * rate)  # the bucket starts with one window's worth
    with_burst = used / (span * rate + limit)
    per_request = f"{sum(costs) / max(1, len(costs)):,.0f}" if costs else "?"
    return [
        variant,
        f"{limit:,.0f} / {window:g} s",
        f"{limit * 60 / window:,.0f}",
        per_request,
        s.ok,
        s.failed,
        stats.get("limited", "?"),
        f"{sustained:.1%}",
        f"{with_burst:.1%}",
        f"{r['elapsed']:.1f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--rpw", type=float, default=30, help="requests per window")
    ap.add_argument("--tpw", type=float, default=400_000, help="tokens per window")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--variants", default="rpm,tpm,rpm-noheaders,tpm-noheaders")
    args = ap.parse_args()
    logging.getLogger("instructor").setLevel(logging.CRITICAL)  # as the CLI does
    print_header("rate limits: share of an enforced RPM / TPM limit used, at default settings")
    n = max(1, min(args.docs, 3000))
    window = max(1.0, min(args.window, 60.0))
    rows = []
    for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
        rows.append(one(variant, n, window, args.rpw, args.tpw, max(1, min(args.concurrency, 64))))
        print(f"  done: {variant}", flush=True)
    header = ["limit", "enforced", "per minute", "tokens/request", "docs ok", "docs failed",
              "429s", "used (sustained)", "used (incl. start)", "seconds"]  # fmt: skip
    print()
    print(table(rows, header))
    print(
        f"\n({n} documents, -j {args.concurrency}, {LATENCY * 1000:.0f} ms latency; 'noheaders' "
        "= the server sends no x-ratelimit-* headers, only 429 + Retry-After; tokens/request is "
        "the server's own count, the client estimates the same way before sending)"
    )


if __name__ == "__main__":
    main()
