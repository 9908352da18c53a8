"""Reliability probe, third round (issue 28): Batch API collection, review files, bounded
reads, hostile exports, the pass budget. Called by ``bench/probe.py``.

Each case runs the real command line (or a short script) in a child process and
reports its exit code, outcome, seconds and peak RSS. The peak is the child's own
``VmHWM`` (``/proc/<pid>/status``, sampled every 20 ms), not ``ru_maxrss``: Linux
carries a parent's high-water mark into ``ru_maxrss`` across fork and exec, and the
parent here holds the crafted provider's files (512 MB for one case).
Servers are crafted (``caseextract.testing``), on 127.0.0.1 only; every answer is
crafted, never a model's.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

Child = Callable[[list[str], Path], tuple[int, float, float, str]]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


CHILD_CEILING_S = 600.0
MEMORY_CAP_MB = int(os.environ.get("PROBE_MEMORY_CAP_MB", "4096"))  # a child never takes more


def _cap() -> None:
    import resource

    cap = MEMORY_CAP_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def hwm_child(args: list[str], cwd: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak RSS in MB of the child itself, its error line)."""
    import subprocess
    import sys
    import tempfile
    import time

    env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
    peak = 0
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, text=True,
                                stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_cap)  # fmt: skip
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            if time.perf_counter() - started > CHILD_CEILING_S:
                proc.kill()
                proc.wait()
                break
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        err.seek(0)
        lines = [ln.strip() for ln in err.read().splitlines() if ln.strip()]
    marked = [ln for ln in lines if ln.startswith(("error:", "✗"))]
    last = (marked or lines or [""])[0]
    return proc.returncode, seconds, peak / 1024, last[:90]


def _row(name: str, result: tuple[int, float, float, str], outcome: str | None = None) -> list:
    code, seconds, rss, last = result
    return [name, code, outcome or last, f"{seconds:.1f}", f"{rss:.0f}"]


def _batch_cases(root: Path, child: Child) -> list[list[object]]:
    import caseextract.testing.fault_batch as rel
    from caseextract.testing import Reply, crafted_tool_completion
    from caseextract.testing.batch_server import FakeBatchServer

    def good(body: dict, _cid: str) -> Reply:
        return Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER, model=body["model"]))

    rows: list[list[object]] = []

    def submit(folder: Path, server: FakeBatchServer, n: int) -> list[str]:
        rel.make_documents(folder / "docs", n)
        base = ["-m", "caseextract", "batch"]
        child([*base, "submit", "docs", "-o", "results.jsonl", "--model", "crafted-model",
               "--base-url", server.base_url], folder)  # fmt: skip
        server.run_all()
        return [*base, "collect", "-o", "results.jsonl", "--base-url", server.base_url]

    # 1. malformed output lines: torn last line, \xff, an array, an object custom_id
    for fault in ("torn last line", "\\xff byte", "array line", "object custom_id"):
        folder = root / f"b-{fault.split()[0].strip(chr(92))}"
        folder.mkdir()
        with FakeBatchServer(good) as server:
            collect = submit(folder, server, 4)
            for b in server.batches.values():
                f = server.files[b.output_file_id]
                lines = f.data.splitlines(keepends=True)
                if fault == "torn last line":
                    lines[-1] = lines[-1][: len(lines[-1]) // 2]
                elif fault == "\\xff byte":
                    lines[-1] = lines[-1][:40] + b"\xff" + lines[-1][40:]
                elif fault == "array line":
                    lines[-1] = b"[" + lines[-1].rstrip(b"\n") + b"]\n"
                else:
                    item = json.loads(lines[-1])
                    item["custom_id"] = {"id": item["custom_id"]}
                    lines[-1] = (json.dumps(item) + "\n").encode()
                f.data = b"".join(lines)
            result = child(collect, folder)
        written = _lines(folder / "results.jsonl")
        rows.append(_row(f"batch collect, {fault} (4 docs)", result,
                         f"{written} of 4 written; {result[3][:60]}"))  # fmt: skip

    # 2. two collects at once on one output
    folder = root / "b-two"
    folder.mkdir()
    with FakeBatchServer(good) as server:
        collect = submit(folder, server, 60)
        procs = [_spawn(collect, folder) for _ in range(2)]
        codes = sorted(p.wait() for p in procs)
    ids = [json.loads(x)["document"]["id"] for x in _read(folder / "results.jsonl")]
    twice = len(ids) - len(set(ids))
    rows.append(["two batch collects at once (60 docs)", "/".join(map(str, codes)),
                 f"{len(set(ids))} documents, {twice} written twice", "-", "-"])  # fmt: skip

    # 3. a 512 MB output file (padding lines of other requests, then the answers)
    folder = root / "b-big"
    folder.mkdir()
    with FakeBatchServer(good) as server:
        collect = submit(folder, server, 2)
        for b in server.batches.values():
            f = server.files[b.output_file_id]
            pad = json.dumps({"custom_id": "padding", "response": None, "pad": "x" * 1_000_000})
            f.data = (pad + "\n").encode() * 512 + f.data
        result = child(collect, folder)
    rows.append(_row("batch collect, 512 MB output file", result,
                     f"{_lines(folder / 'results.jsonl')} of 2 written"))  # fmt: skip
    return rows


def _spawn(args: list[str], cwd: Path):
    import subprocess
    import sys

    env = {**os.environ, "NO_PROXY": "127.0.0.1"}
    return subprocess.Popen([sys.executable, *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _read(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def _lines(path: Path) -> int:
    return len(_read(path))


def _file_cases(root: Path, child: Child) -> list[list[object]]:
    import caseextract.testing.fault_batch as rel
    from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

    rows: list[list[object]] = []
    folder = root / "rec"
    docs = rel.make_documents(folder / "docs", 1)
    good = Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER))
    with FakeOpenAIServer(default=good) as server:
        child(["-m", "caseextract", "run", str(docs[0]), "-o", "r.jsonl", "--base-url",
               server.base_url, "--model", "crafted-model", "--recordings", "store",
               "--record-mode", "record", "--no-progress"], folder)  # fmt: skip
    (folder / "store" / "0000-zero.json").symlink_to("/dev/zero")
    with (folder / "store" / "0001-huge.json").open("wb") as fh:
        fh.truncate(1 << 30)  # sparse 1 GiB
    miss = ["-m", "caseextract", "run", str(docs[0]), "-o", "miss.jsonl", "--model", "other-model",
            "--recordings", "store", "--record-mode", "replay", "--no-progress"]  # fmt: skip
    rows.append(_row("replay miss, --recordings with /dev/zero link + 1 GiB file",
                     child(miss, folder)))  # fmt: skip
    cost = ["-m", "caseextract", "cost", "--recordings", "store"]
    rows.append(_row("cost --recordings (same folder)", child(cost, folder)))

    # import: a 500 MB answer, an answer path with ../
    seed = Path(__file__).resolve().parent.parent / "fixtures" / "cases"
    src = seed / "seed-vertebroplasty-cement-leakage.txt"
    for case in ("500 MB answer file", "answer path ../outside"):
        ex = root / f"imp-{case.split()[0]}"
        ex.mkdir()
        child(["-m", "caseextract", "export", str(src), "--out", "req"], ex)
        answer = ex / "req" / f"{src.stem}.answer.json"
        if case.startswith("500"):
            with answer.open("w", encoding="utf-8") as fh:
                fh.write('{"pad": "' + "x" * 500_000_000 + '"}')
        else:
            (ex / "outside.answer.json").write_text('{"article": {}}')
            index = json.loads((ex / "req" / "index.json").read_text())
            index["documents"][0]["answer"] = "../outside.answer.json"
            (ex / "req" / "index.json").write_text(json.dumps(index))
        result = child(["-m", "caseextract", "import", "req", "--recordings", "store",
                        "--provenance", "crafted by the probe"], ex)  # fmt: skip
        rows.append(_row(f"import, {case}", result))
        shutil.rmtree(ex, ignore_errors=True)
    return rows


_REVIEW_POST = """
import http.client, json, sys
from pathlib import Path
from urllib.parse import urlsplit
from caseextract.review.app import running
from caseextract.review.session import ReviewSession
session = ReviewSession(Path(sys.argv[1]), "probe")
with running(session) as url:
    p = urlsplit(url)
    conn = http.client.HTTPConnection(p.hostname, p.port, timeout=600)
    head = b'{"path": "article", "action": "accept", "note": "'
    size = int(sys.argv[2])
    chunks = (head if i == 0 else b"x" * (1 << 20) for i in range(size >> 20))
    conn.request("POST", "/api/doc/0/decide", chunks, {"Origin": f"http://{p.netloc}",
                 "Content-Type": "application/json"}, encode_chunked=True)
    r = conn.getresponse()
    body = r.read()
    print(f"error: HTTP {r.status} {body[:60]!r}", file=sys.stderr)
"""


def _review_cases(root: Path, child: Child) -> list[list[object]]:
    import caseextract.testing.fault_batch as rel
    from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

    rows: list[list[object]] = []
    folder = root / "rev"
    rel.make_documents(folder / "docs", 1)
    good = Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER))
    with FakeOpenAIServer(default=good) as server:
        child(["-m", "caseextract", "run", "docs", "-o", "results.jsonl", "--base-url",
               server.base_url, "--model", "crafted-model", "--no-progress"], folder)  # fmt: skip
    # the record edited as a model could have written it (and the pipeline kept it)
    record = json.loads((folder / "results.jsonl").read_text(encoding="utf-8"))
    patient = record["extraction"]["patients"][0]
    patient["age"].update(value=1e308, years=1e308, raw="aged 1e308")
    hostile = ('=HYPERLINK("http://x.example","y")', r"$\undefinedmacro{x}$")
    patient["findings"] += [{"name": n, "evidence": []} for n in hostile]
    record["extraction"]["article"]["title"] = hostile[0]
    (folder / "results.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    child(["-c", "import sys; from pathlib import Path; from caseextract.store import write_csv; "
           "write_csv(Path('results.jsonl'), Path('results.csv'))"], folder)  # fmt: skip
    result = child(["-m", "caseextract", "summarize", "results.jsonl", "--html", "s.html"], folder)
    cells = []
    for path in [folder / "results.csv", *sorted((folder / "s_tables").glob("*.csv"))]:
        with path.open(encoding="utf-8", newline="") as fh:
            cells += [c for row in csv.reader(fh) for c in row]
    formulas = sum(c.startswith(FORMULA_START) for c in cells)
    rows.append(_row("summarize: age 1e308, $\\undefinedmacro$ term", result,
                     "report written" if (folder / "s.html").exists() else result[3]))  # fmt: skip
    rows.append(["CSV cells that start a formula (=HYPERLINK…)", "-",
                 f"{formulas} of {len(cells)} cells", "-", "-"])  # fmt: skip
    review = folder / "results.probe.review"
    review.write_bytes(b'{"kind": "header"}\n{"kind": "decision", "note": "caf\xc3')
    result = child(["-m", "caseextract", "summarize", "results.jsonl", "--reviewed", "--html",
                    "r.html"], folder)  # fmt: skip
    rows.append(_row("summarize --reviewed, review file torn inside é", result))
    review.unlink()
    size = 256 << 20
    result = child(["-c", _REVIEW_POST, "results.jsonl", str(size)], folder)
    rows.append(_row("review app, 256 MB chunked POST body", result))
    return rows


_BUDGET = """
import asyncio, sys, threading
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_passes import crafted_series, run_one
from caseextract.pipeline.passes.multipass import PassConfig
from caseextract.testing import CraftedPasses, FakeOpenAIServer

class Waves(CraftedPasses):
    def __post_init__(self):
        super().__post_init__()
        self.barrier = threading.Barrier(4)
    def __call__(self, payload, index):
        try:
            self.barrier.wait(timeout=0.2)
        except threading.BrokenBarrierError:
            self.barrier.reset()
        return super().__call__(payload, index)

text, answer = crafted_series()
root = Path(sys.argv[2]); path = root / "series.txt"; path.write_text(text)
worst = 0
for n in range(int(sys.argv[3])):
    crafted = Waves([(text, answer)], budget=120)
    cfg = PassConfig(strategy="multi", max_passes=8, concurrency=64, resume=False)
    with FakeOpenAIServer(crafted) as server:
        run_one(path, server.base_url, root / f"r{n}.jsonl", cfg)
    worst = max(worst, len(crafted.seen))
print(f"error: most requests in one document {worst} (--max-passes 8)", file=sys.stderr)
"""


def third_round(root: Path, _child: Child | None = None) -> list[list[object]]:
    """Every third-round case as a table row (case, exit, outcome, seconds, peak RSS)."""
    child = hwm_child
    rows = [["— third round (issue 28) —", "", "", "", ""]]
    groups = os.environ.get("PROBE_CASES", "batch,files,review,budget").split(",")
    if "batch" in groups:
        rows += _batch_cases(root, child)
    if "files" in groups:
        rows += _file_cases(root, child)
    if "review" in groups:
        rows += _review_cases(root, child)
    if "budget" not in groups:
        return rows
    tests = Path(__file__).resolve().parent.parent / "tests"
    budget = root / "budget"
    budget.mkdir()
    rows.append(_row("pass budget, concurrency 64, 12 rounds",
                     child(["-c", _BUDGET, str(tests), str(budget), "12"], root)))  # fmt: skip
    return rows
