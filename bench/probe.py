"""Reliability probe, second round (issue 16) and third round (issue 28, in
``probe_round3``): the cases that used to hang, flood, crash or lose data, measured
through the real command line against crafted loopback servers.

Each case runs ``python -m caseextract run`` (or the writer) in a child process and
reports its exit code, how long it took to stop and its peak RSS (``ru_maxrss`` of
the child). Replies are crafted (``caseextract.testing``); nothing leaves 127.0.0.1.

    .venv/bin/python bench/probe.py                      # both rounds
    .venv/bin/python bench/probe.py --third-round-only   # issue 28's cases only
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_header, table

CHILD_CEILING_S = 300.0


def child(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MB, stderr's error line) of one child run."""
    env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [ln for ln in err.read().splitlines() if ln.strip()]
    last = next((ln for ln in lines if "error" in ln or "✗" in ln), lines[-1] if lines else "")
    return proc.returncode, seconds, usage.ru_maxrss / 1024, last.strip()[:90]


def main() -> int:
    import caseextract.testing.fault_batch as rel
    from caseextract.llm.failures import MAX_RETRY_AFTER, retry_after_wait
    from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

    print_header("Reliability probe, second round (issue 16)")
    good = crafted_tool_completion(rel.CRAFTED_ANSWER)
    rows: list[list[object]] = []
    random.seed(0)
    for after in (3600.0, 86400.0, float("inf")):
        waits = [retry_after_wait(after) for _ in range(10_000)]
        rows.append([f"Retry-After {after:g}", "-", f"wait {min(waits):.1f}–{max(waits):.1f} s "
                     f"(cap {MAX_RETRY_AFTER:g} s)", "-", "-"])  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "--third-round-only" in sys.argv:
            from probe_round3 import third_round

            print(table(third_round(root, child), ["case", "exit", "outcome", "seconds",
                                                   "peak RSS MB"]))  # fmt: skip
            return 0
        docs = root / "docs"
        rel.make_documents(docs, 1)

        def run(name: str, base_url: str, *extra: str) -> list[object]:
            out = root / f"{name}.jsonl"
            args = ["-m", "caseextract", "run", str(docs), "-o", str(out), "--base-url",
                    base_url, "--model", "crafted-model", "--http-retries", "0",
                    "--reasks", "0", "--no-progress", *extra]  # fmt: skip
            code, seconds, rss, last = child(args, root)
            return [name, code, last, f"{seconds:.1f}", f"{rss:.0f}"]

        code, seconds, rss, _ = child(["-m", "caseextract", "--help"], root)
        rows.append(["(start-up alone: caseextract --help)", code, "-", f"{seconds:.1f}",
                     f"{rss:.0f}"])  # fmt: skip
        slow = Reply(body=good, trickle=0.5)  # one byte every 0.5 s
        endless = Reply(body=b'{"padding": "' + b"x" * 60_000, endless=True)
        with FakeOpenAIServer(default=slow) as server:
            rows.append(run("slow-loris, --timeout 2", server.base_url, "--timeout", "2"))
        with FakeOpenAIServer(default=endless) as server:
            rows.append(run("endless chunked 200", server.base_url, "--timeout", "600"))

        special = root / "special"
        special.mkdir()
        os.mkfifo(special / "x.txt")
        (special / "zero.txt").symlink_to("/dev/zero")
        with FakeOpenAIServer(default=Reply(body=good)) as server:
            out = root / "special.jsonl"
            args = ["-m", "caseextract", "run", str(special / "x.txt"), str(special / "zero.txt"),
                    "/dev/urandom", "-o", str(out), "--base-url", server.base_url,
                    "--no-progress"]  # fmt: skip
            code, seconds, rss, last = child(args, root)
            rows.append(["FIFO x.txt, x.txt → /dev/zero, /dev/urandom", code, last,
                         f"{seconds:.1f}", f"{rss:.0f}"])  # fmt: skip

        # resume of a 31 MB results file: the writer streams it
        big = root / "big.jsonl"
        padding = "x" * 30_000
        with big.open("w", encoding="utf-8") as fh:
            for i in range(1_030):
                record = {"document": {"id": f"d{i}", "sha256": "h"}, "status": "ok",
                          "extraction": {"text": padding}}  # fmt: skip
                fh.write(json.dumps(record) + "\n")
        size_mb = big.stat().st_size / 1e6
        code, seconds, rss, last = child(
            ["-c", "import sys; from pathlib import Path; from caseextract.store import "
             "ResultWriter; ResultWriter(Path(sys.argv[1])).close()", str(big)], root)  # fmt: skip
        base = child(["-c", "import caseextract.store"], root)[2]
        rows.append([f"resume of a {size_mb:.0f} MB results file", code,
                     f"peak RSS {rss:.0f} MB (import alone {base:.0f} MB)", f"{seconds:.1f}",
                     f"{rss:.0f}"])  # fmt: skip

        if "--second-round-only" not in sys.argv:
            from probe_round3 import third_round

            rows += third_round(root, child)

    print(table(rows, ["case", "exit", "outcome", "seconds", "peak RSS MB"]))
    print("seconds include the start-up of the child (first row); ru_maxrss per child")
    return 0


if __name__ == "__main__":
    sys.exit(main())
