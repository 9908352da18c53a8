"""The bundled local model on this machine: seconds per document and tokens per second.

Starts llama.cpp's server (``caseextract.llm.local.LocalServer``, the bundled Gemma 3
270M unless ``--model-path`` is given) on 127.0.0.1 and sends the seed report
through the real pipeline path (openai + instructor, tool calling) twice per
task: the small cement-leakage task and the full case-report schema (cut at
``--max-tokens``). Prints prompt and generated tokens, seconds, and generated
tokens per second as the server reports them. Needs the ``local`` extra.
Run: ``python bench/local.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from caseextract.documents import load_document
from caseextract.errors import ExtractError
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.local import LocalServer
from caseextract.tasks import default_task

SEED = (
    Path(__file__).resolve().parent.parent / "fixtures/cases/seed-vertebroplasty-cement-leakage.txt"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", type=Path)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    doc = load_document(SEED)
    tasks = [
        ("cement_leakage", default_task("cement_leakage", "caseextract.tasks:CementLeakage")),
        ("case_report", default_task()),
    ]
    started = time.perf_counter()
    with LocalServer(args.model_path, n_ctx=args.n_ctx) as server:
        print(
            f"server ready in {time.perf_counter() - started:.1f} s: {server.alias}, "
            f"n_ctx {args.n_ctx}, {server.threads} threads"
        )
        settings = ModelSettings(
            model=server.alias,
            base_url=server.base_url,
            timeout=1800,
            max_tokens=args.max_tokens,
            reasks=0,
        )
        client = ModelClient(settings)
        print(
            "| task | round | status | prompt tok | generated tok | seconds (whole call) "
            "| generated tok/s (whole call) |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, task in tasks:
            for i in range(args.rounds):
                t0 = time.perf_counter()
                try:
                    ext = client.extract(task.messages(doc), task.response_model, doc.text)
                    stats, status = ext.stats, "ok"
                except ExtractError as exc:
                    usage = exc.context.get("stats", {})
                    stats, status = None, exc.kind
                seconds = time.perf_counter() - t0
                prompt = stats.prompt_tokens if stats else usage.get("prompt_tokens", 0)
                gen = stats.completion_tokens if stats else usage.get("completion_tokens", 0)
                print(
                    f"| {name} | {i + 1} | {status} | {prompt} | {gen} | {seconds:.1f} | "
                    f"{gen / seconds:.1f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
