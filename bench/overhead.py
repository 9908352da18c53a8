"""Overhead: the pipeline's own time per document next to a raw openai SDK call.

A fake OpenAI-compatible server on 127.0.0.1 (in its own process) answers every
request at once with the same crafted completion: a tool call whose arguments are
the hand-labelled gold record of the ada-09 report (133 facts, 30 kB). Four
arms run in the same process, interleaved round by round so that load changes
hit them alike:

* ``raw``        ``AsyncOpenAI().chat.completions.create`` with the exact request
                 body the pipeline sends (captured first), nothing else;
* ``raw+parse``  the same, then ``json.loads`` of the tool arguments and
                 ``CaseReport.model_validate``: the least any structured extraction does;
* ``pipeline``   ``Runner.run`` at concurrency 1 over copies of the ada-09 report:
                 read file, render prompt, instructor + retries, validation,
                 grounding (once, inside validation; the record reuses its facts), record,
                 JSONL write;
* ``pipeline, model not pre-wrapped``  the same with ``llm.wire_model``
                 switched off for the arm: how the pipeline ran before that fix
                 (instructor then rebuilt the model class and its JSON schema per call).

Then a cProfile of the pipeline arm says where its time goes.

    .venv/bin/python bench/overhead.py [--rounds 5] [--per-round 20]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    FULL_CASE,
    ServerProcess,
    bench_settings,
    case_path,
    copy_documents,
    crafted_body,
    median,
    print_header,
    table,
)


def capture_request(body: bytes) -> dict[str, Any]:
    """The request body the pipeline sends for the ada-09 report (captured in-process)."""
    from caseextract.llm import ModelClient
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task
    from caseextract.testing import FakeOpenAIServer, Reply

    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(default=Reply(body=body)) as srv:
        task = default_task()
        client = ModelClient(bench_settings(srv.base_url))
        with ResultWriter(Path(tmp) / "r.jsonl", resume=False) as writer:
            summary = asyncio.run(Runner(task, client, writer, 1).run([case_path(FULL_CASE)]))
        assert summary.ok == 1, summary
        request = dict(srv.requests[0])
    request.pop("_path", None)
    request.pop("_bytes", None)
    return request


async def raw_arm(base_url: str, request: dict[str, Any], n: int, parse: bool) -> float:
    import openai
    from caseextract.schema import CaseReport

    client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key-needed", max_retries=0)
    started = time.perf_counter()
    for _ in range(n):
        completion = await client.chat.completions.create(**request)
        if parse:
            args = completion.choices[0].message.tool_calls[0].function.arguments
            CaseReport.model_validate(json.loads(args))
    elapsed = time.perf_counter() - started
    await client.close()
    return elapsed


async def pipeline_arm(base_url: str, paths: list[Path], out: Path, prewrap: bool = True) -> float:
    import caseextract.llm.call as llm
    from caseextract.llm import ModelClient
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task

    task = default_task()
    client = ModelClient(bench_settings(base_url))
    wire_model = llm.wire_model
    if not prewrap:  # as before the fix: instructor gets the plain model class
        llm.wire_model = lambda model: model
        llm.grounded_model.cache_clear()
    try:
        with ResultWriter(out, resume=False) as writer:
            started = time.perf_counter()
            summary = await Runner(task, client, writer, concurrency=1).run(paths)
            elapsed = time.perf_counter() - started
    finally:
        llm.wire_model = wire_model
        llm.grounded_model.cache_clear()
    assert summary.ok == len(paths), (summary.failures, summary.failed_docs[:3])
    return elapsed


# --------------------------------------------------------------------------- profile

# (label, file suffix, function name): inclusive CPU time of each stage. In
# coroutines cProfile counts only the time a frame runs, not the time it awaits.
STAGES = [
    ("whole document (Runner.process + write)", "extract/pipeline/runner.py", "process"),
    ("  read the document", "extract/documents.py", "load_document"),
    ("  render the prompt", "prompts/__init__.py", "render"),
    (
        "  instructor: build request (schema)",
        "instructor/v2/providers/openai/handlers.py",
        "prepare_request",
    ),
    ("    pydantic JSON-schema generation", "pydantic/main.py", "model_json_schema"),
    ("    instructor: wrap model class", "instructor/v2/core/function_calls.py", "response_schema"),
    (
        "  instructor: scan for async validators (all calls)",
        "instructor/v2/validation/async_validators.py",
        "reject_async_validators",
    ),
    ("  openai SDK + HTTP (CPU only)", "extract/llm/client.py", "once"),
    (
        "  instructor: parse + validate answer",
        "instructor/v2/providers/openai/handlers.py",
        "parse_response",
    ),
    ("    grounding inside validation", "extract/llm/call.py", "_check"),
    ("  _finish (record; reuses the validator's facts)", "extract/llm/client.py", "_finish"),
    ("  grounding.ground (all calls)", "extract/grounding/facts.py", "ground"),
    ("    grounding.number_mismatches", "extract/grounding/facts.py", "number_mismatches"),
    ("    Aligner.align", "extract/grounding/align.py", "align"),
    ("  build the record (ok_record)", "extract/pipeline/outcome.py", "ok_record"),
    ("  JSONL write (ResultWriter.write)", "extract/store.py", "write"),
]


def _bucket(key: tuple[str, int, str]) -> str:
    filename, _, name = key
    f = filename.replace("\\", "/")
    for marker, label in (
        ("/extract/grounding/", "caseextract grounding"),
        ("/extract/normalize.py", "caseextract grounding"),
        ("/extract/", "caseextract other"),
        ("/instructor/", "instructor"),
        ("/pydantic/", "pydantic (Python)"),
        ("/openai/", "openai SDK"),
        ("/httpx", "httpx/httpcore"),
        ("/httpcore", "httpx/httpcore"),
        ("/h11/", "httpx/httpcore"),
        ("/anyio/", "asyncio/anyio"),
        ("/asyncio/", "asyncio/anyio"),
        ("/tenacity/", "tenacity"),
        ("/jinja2/", "jinja2"),
        ("/json/", "json"),
        ("/rapidfuzz/", "rapidfuzz"),
    ):
        if marker in f:
            return label
    if filename == "~":
        if "pydantic_core" in name:
            return "pydantic-core (Rust validation)"
        if "rapidfuzz" in name:
            return "rapidfuzz"
        if "json" in name or "encode" in name:
            return "json"
        return "builtins (called from all of the above)"
    return "other Python"


def profile_pipeline(base_url: str, paths: list[Path], out: Path) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(pipeline_arm(base_url, paths, out))
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    n = len(paths)
    total = sum(v[2] for v in raw.values())
    lines = [
        f"cProfile of the pipeline arm, {n} documents; CPU ms per document "
        "(profiler overhead inflates all figures ~2x: read them as shares; a coroutine's "
        "calls count each resume)",
        "",
    ]
    rows = []
    for label, suffix, func in STAGES:
        hits = [(k, v) for k, v in raw.items() if k[0].endswith(suffix) and k[2] == func]
        if not hits:
            rows.append([label, "0", "0.00", "0%"])
            continue
        calls = sum(v[1] for _, v in hits)
        cum = sum(v[3] for _, v in hits)
        rows.append([label, f"{calls / n:g}", f"{cum / n * 1000:.2f}", f"{cum / total:.0%}"])
    lines.append(table(rows, ["stage (inclusive)", "calls/doc", "ms/doc", "share"]))
    buckets: dict[str, float] = {}
    for key, v in raw.items():
        buckets[_bucket(key)] = buckets.get(_bucket(key), 0.0) + v[2]
    lines += ["", f"self time by component (total {total / n * 1000:.1f} ms/doc under profile)"]
    rows = [
        [k, f"{v / n * 1000:.2f}", f"{v / total:.0%}"]
        for k, v in sorted(buckets.items(), key=lambda kv: -kv[1])
    ]
    lines.append(table(rows, ["component", "ms/doc", "share"]))
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(12)
    top = [ln for ln in buf.getvalue().splitlines() if ln.strip()][-13:]
    lines += ["", "top functions by self time:", *top]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

BEFORE = "pipeline, model not pre-wrapped"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=20)
    ap.add_argument("--profile-docs", type=int, default=20)
    args = ap.parse_args()
    rounds, k = max(1, min(args.rounds, 50)), max(1, min(args.per_round, 500))

    print_header("overhead: pipeline vs raw openai SDK call, instant loopback server")
    body = crafted_body(FULL_CASE)
    request = capture_request(body)
    sizes = {
        "messages": len(json.dumps(request["messages"])),
        "tools": len(json.dumps(request["tools"])),
    }
    print(
        f"server answer: crafted tool call carrying the gold label fixtures/gold/{FULL_CASE}"
        f".json ({len(body):,} bytes); request body {sizes['messages']:,} B messages + "
        f"{sizes['tools']:,} B tools"
    )
    print(
        f"{rounds} rounds x {k} documents per arm, sequential (concurrency 1), arms "
        "interleaved and rotated each round\n"
    )

    with tempfile.TemporaryDirectory() as tmp, ServerProcess(body=body) as base_url:
        folder = Path(tmp)
        paths = copy_documents(FULL_CASE, folder / "docs", rounds * k + args.profile_docs + 2)

        async def measure() -> dict[str, list[float]]:
            # warm-up: imports, lazy caches, first connection
            await raw_arm(base_url, request, 2, parse=True)
            await pipeline_arm(base_url, paths[:2], folder / "warm.jsonl")
            per_doc: dict[str, list[float]] = {
                "raw": [],
                "raw+parse": [],
                "pipeline": [],
                BEFORE: [],
            }
            arms = list(per_doc)
            for r in range(rounds):
                batch = paths[2 + r * k : 2 + (r + 1) * k]
                for arm in arms[r % len(arms) :] + arms[: r % len(arms)]:
                    if arm in ("pipeline", BEFORE):
                        out = folder / f"r{r}-{len(arm)}.jsonl"
                        t = await pipeline_arm(base_url, batch, out, prewrap=arm == "pipeline")
                    else:
                        t = await raw_arm(base_url, request, k, parse=arm == "raw+parse")
                    per_doc[arm].append(t / k)
            return per_doc

        per_doc = asyncio.run(measure())
        profile = profile_pipeline(base_url, paths[-args.profile_docs :], folder / "prof.jsonl")

    raw, parse, pipe = (median(per_doc[a]) for a in ("raw", "raw+parse", "pipeline"))
    ratios = [p / r for p, r in zip(per_doc["pipeline"], per_doc["raw"], strict=True)]
    rows = [
        [
            arm,
            f"{median(v) * 1000:.2f}",
            f"{min(v) * 1000:.2f}",
            f"{max(v) * 1000:.2f}",
            f"{median(v) / raw:.2f}x",
        ]
        for arm, v in per_doc.items()
    ]
    print(table(rows, ["arm", "median ms/doc", "best round", "worst round", "vs raw"]))
    print()
    print(
        f"pipeline / raw SDK call: {median(ratios):.2f}x (median of per-round ratios; "
        f"rounds {min(ratios):.2f}x-{max(ratios):.2f}x); aim <= 1.2x"
    )
    print(f"pipeline / raw+parse: {pipe / parse:.2f}x")
    before = median(per_doc[BEFORE])
    print(
        f"wire_model fix (same run): {before * 1000:.1f} -> {pipe * 1000:.1f} ms per document "
        f"({1 - pipe / before:.0%} less)"
    )
    print(
        f"pipeline's own time per document: {(pipe - raw) * 1000:.1f} ms "
        f"(= {(pipe - raw) / 0.3:.1%} of a 300 ms model call, "
        f"{(pipe - raw) / 5:.2%} of a 5 s one)"
    )
    print()
    print(profile)


if __name__ == "__main__":
    main()
