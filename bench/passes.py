"""Multi-pass extraction: calls, tokens, time and merge fidelity per document, single vs multi.

Every gold case goes through the pipeline (``Runner.process``) four ways:
``single`` (one call), ``auto``, ``multi`` and ``multi`` with a 16,384-token
context window (chunks), against a ``FakeOpenAIServer`` on 127.0.0.1 whose
answers are **crafted**: ``CraftedPasses`` cuts each pass's answer out of the
case's hand-made gold label (never a model's output), by the fields and the
range of the report each request asks for; an answer over 8,192 tokens is cut
with ``finish_reason: "length"``, as a server does at ``max_tokens``.

Token figures are the crafted server's estimates (characters / 4 of each
request's messages and tools, and of each answer), not a tokenizer's. Time is
wall time per document with a *simulated* model speed: each answer is delayed
by ``--base-ms`` plus its tokens at ``--tokens-per-s`` (passes of one document
run up to 4 at once). F1 is against the same gold labels the answers were cut
from: it measures what splitting and merging keep or duplicate, not a model.

    .venv/bin/python bench/passes.py [--tokens-per-s 1000] [--base-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import GOLD, print_header, table

MODES = {
    "single": {"strategy": "single"},
    "auto": {"strategy": "auto"},
    "multi": {"strategy": "multi"},
    "multi 16k": {"strategy": "multi", "context_window": 16384},
}


async def _process(runner: Any, path: Path) -> Any:
    try:
        return await runner.process(path)
    finally:
        await runner.client.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens-per-s", type=float, default=1000.0, help="simulated answer speed")
    ap.add_argument("--base-ms", type=float, default=300.0, help="simulated time to first token")
    args = ap.parse_args()

    from caseextract.evals.gold import load_gold_set
    from caseextract.evals.runner import score_case
    from caseextract.llm import ModelClient, ModelSettings
    from caseextract.pipeline.passes.multipass import PassConfig
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task
    from caseextract.testing import CraftedPasses, FakeOpenAIServer, Reply

    task = default_task()
    cases = load_gold_set(GOLD, task.response_model)
    crafted = CraftedPasses(
        [(c.text, c.extraction.model_dump(mode="json")) for c in cases], budget=8192
    )

    def slow(payload: dict[str, Any], index: int) -> Reply:
        reply = crafted(payload, index)
        tokens = reply.body["usage"]["completion_tokens"]
        reply.delay = args.base_ms / 1000 + tokens / args.tokens_per_s
        return reply

    print_header("bench/passes.py: single vs multi-pass on the gold set (crafted answers)")
    print(
        f"simulated model: {args.base_ms:g} ms + answer tokens at {args.tokens_per_s:g} tokens/s;"
        " max_tokens 8,192; tokens are characters / 4 (crafted server's estimate)\n"
    )
    rows: list[list[Any]] = []
    totals: dict[str, dict[str, float]] = {m: {} for m in MODES}
    with FakeOpenAIServer(slow) as server, tempfile.TemporaryDirectory() as tmp:
        settings = ModelSettings(
            model="crafted-model", base_url=server.base_url, http_retries=0, reasks=0
        )
        for case in sorted(cases, key=lambda c: len(c.text)):
            for name, spec in MODES.items():
                client = ModelClient(settings)
                out = Path(tmp) / f"{case.case_id}-{name.replace(' ', '')}.jsonl"
                with ResultWriter(out, resume=False) as writer:
                    runner = Runner(task, client, writer, passes=PassConfig(resume=False, **spec))
                    started = time.perf_counter()
                    record = asyncio.run(_process(runner, case.source_path))
                    wall = time.perf_counter() - started
                assert record is not None
                f1 = score_case(case, record, task.response_model).counts.prf()[2]
                calls = record.attempts
                t = totals[name]
                for key, value in (
                    ("docs", 1),
                    ("ok", record.ok),
                    ("calls", calls),
                    ("prompt", record.usage.prompt_tokens),
                    ("completion", record.usage.completion_tokens),
                    ("wall", wall),
                ):
                    t[key] = t.get(key, 0) + value
                rows.append(
                    [
                        case.case_id[:24],
                        f"{len(case.text):,}",
                        name,
                        record.status if record.ok else f"failed ({record.error.kind})",
                        calls,
                        f"{record.usage.prompt_tokens:,}",
                        f"{record.usage.completion_tokens:,}",
                        f"{wall:.2f}",
                        "-" if f1 is None else f"{f1:.3f}",
                    ]
                )
    header = ["case", "chars", "passes", "status", "calls", "prompt tok", "answer tok", "s", "F1"]
    print(table(rows, header))
    print()
    summary = []
    for name, t in totals.items():
        summary.append(
            [
                name,
                f"{int(t['ok'])}/{int(t['docs'])}",
                f"{t['calls'] / t['docs']:.1f}",
                f"{t['prompt'] / t['docs']:,.0f}",
                f"{t['completion'] / t['docs']:,.0f}",
                f"{t['wall'] / t['docs']:.2f}",
            ]
        )
    print("per document, mean over the gold set:")
    print(table(summary, ["passes", "ok", "calls", "prompt tok", "answer tok", "s"]))


if __name__ == "__main__":
    main()
