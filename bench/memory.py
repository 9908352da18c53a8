"""Memory: peak RSS of ``caseextract run`` over a 1,000-document batch.

1,000 copies of the seed report (2 kB each) go through the real command line,
``python -m caseextract run`` in a child process at concurrency 8, against a fake
server on 127.0.0.1 whose answer is crafted from the seed report's gold label.
While it runs, the child's VmRSS and VmHWM (peak) are read from
/proc/<pid>/status each time another 100 records have been written to the JSONL
output. Flat means: what the process holds does not grow with the number of
documents done (results are streamed to disk, not accumulated).

    .venv/bin/python bench/memory.py [--docs 1000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    ROOT,
    SMALL_CASE,
    ServerProcess,
    copy_documents,
    crafted_body,
    print_header,
    table,
)

RUN_TIMEOUT_S = 600.0
POLL_S = 0.01


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of ``pid`` in kB (empty once the process is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--every", type=int, default=100, help="sample every N documents")
    args = ap.parse_args()
    n = max(1, min(args.docs, 20000))
    every = max(1, args.every)

    print_header(f"memory: RSS of `python -m caseextract run` over {n:,} documents")
    body = crafted_body(SMALL_CASE)
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(body=body) as url:
        folder = Path(tmp)
        copy_documents(SMALL_CASE, folder / "docs", n)
        out = folder / "results.jsonl"
        cmd = [
            sys.executable,
            "-m",
            "caseextract",
            "run",
            str(folder / "docs"),
            "-o",
            str(out),
            "--base-url",
            url,
            "--model",
            "crafted-model",
            "-j",
            str(args.concurrency),
            "--no-progress",
        ]
        shown = [
            "python",
            *cmd[1:4],
            "DOCS",
            "-o",
            "OUT",
            "--base-url",
            "http://127.0.0.1:PORT/v1",
            *cmd[9:],
        ]
        print("command: " + " ".join(shown))
        print(
            f"documents: {n:,} copies of fixtures/cases/{SMALL_CASE}.txt; server answer crafted "
            f"from fixtures/gold/{SMALL_CASE}.json ({len(body):,} bytes)\n"
        )
        env = {
            k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
        }
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        samples: list[list[str]] = []
        next_mark, lines, size, pos = every, 0, 0, 0
        first: dict[str, int] = {}
        try:
            while proc.poll() is None:
                if time.perf_counter() - started > RUN_TIMEOUT_S:
                    proc.kill()
                    print(f"stopped: the run took over {RUN_TIMEOUT_S:g} s")
                    break
                status = proc_status(proc.pid)
                if status and not first:
                    first = status
                if out.exists():
                    with out.open("rb") as fh:
                        fh.seek(pos)
                        chunk = fh.read()
                    pos += len(chunk)
                    lines += chunk.count(b"\n")
                    size = pos
                while lines >= next_mark and status:
                    samples.append(
                        [
                            f"{next_mark:,}",
                            f"{status['VmRSS'] / 1024:.1f}",
                            f"{status['VmHWM'] / 1024:.1f}",
                            f"{size / 1e6:.1f}",
                            f"{time.perf_counter() - started:.1f}",
                        ]
                    )
                    next_mark += every
                time.sleep(POLL_S)
        finally:
            if proc.poll() is None:
                proc.kill()
            stderr = proc.communicate(timeout=60)[1]
        elapsed = time.perf_counter() - started
        written = sum(1 for _ in out.open("rb")) if out.exists() else 0

    print(table(samples, ["documents done", "VmRSS MB", "VmHWM (peak) MB", "JSONL MB", "seconds"]))
    print(f"\nexit code {proc.returncode}; {written:,} records written in {elapsed:.1f} s")
    if len(samples) >= 2:
        a, b = float(samples[0][1]), float(samples[-1][1])
        ha, hb = float(samples[0][2]), float(samples[-1][2])
        docs = int(samples[-1][0].replace(",", "")) - int(samples[0][0].replace(",", ""))
        print(
            f"RSS from {samples[0][0]} to {samples[-1][0]} documents: {a:.1f} -> {b:.1f} MB "
            f"({(b - a) * 1024 / docs:+.1f} kB per document); peak {ha:.1f} -> {hb:.1f} MB"
        )
    if proc.returncode:
        print("stderr (last lines):\n" + "\n".join(stderr.splitlines()[-15:]))


if __name__ == "__main__":
    main()
