"""Shared pieces of the benchmarks: fixtures, the machine, a fake server in its own process.

Every server here listens on 127.0.0.1 only, answers with *crafted* completions
(built by ``caseextract.testing.server`` from a hand-labelled gold record, never a model's
output) and stops by itself after ``SERVER_LIFETIME_S`` whatever the parent does.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "cases"
GOLD = ROOT / "fixtures" / "gold"
FULL_CASE = "ada-09-respiratory-failure-presenting-in-h1n1-influenza"  # 24 kB report
SMALL_CASE = "seed-vertebroplasty-cement-leakage"  # 2 kB report
SERVER_LIFETIME_S = 900.0  # a fake server never outlives this, whatever happens


# ---------------------------------------------------------------- fixtures


def gold_extraction(case: str) -> dict[str, Any]:
    """The hand-labelled ``extraction`` object of ``fixtures/gold/<case>.json``."""
    return json.loads((GOLD / f"{case}.json").read_text(encoding="utf-8"))["extraction"]


def case_path(case: str) -> Path:
    return CASES / f"{case}.txt"


def crafted_body(case: str) -> bytes:
    """A chat completion whose tool call carries the gold label of ``case`` (crafted)."""
    from caseextract.testing import crafted_tool_completion

    return json.dumps(
        crafted_tool_completion(gold_extraction(case), tool_name="CaseReport")
    ).encode()


def copy_documents(case: str, folder: Path, n: int) -> list[Path]:
    """``n`` copies of a case report under distinct names (distinct document ids)."""
    text = case_path(case).read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{case[:24]}-{i:05d}.txt"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


# ---------------------------------------------------------------- the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Other processes using a lot of CPU right now (the load the figures ran under)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    busy = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] != str(os.getpid()):
            try:
                cpu = float(parts[1])
            except ValueError:
                continue
            if cpu >= min_cpu:
                busy.append(f"{parts[2]} (pid {parts[0]}, {cpu:.0f}% CPU)")
    return busy


def replayed_eval(store: Path, out: Path, *options: str) -> dict[str, Any]:
    """``caseextract eval --recordings STORE`` replayed offline; its report.json."""
    cli = Path(sys.executable).parent / "caseextract"
    args = [str(cli), "eval", "--recordings", str(store), "--out", str(out), *options]
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def machine_line() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    busy = busy_processes()
    return (
        f"machine: {os.cpu_count()} CPU(s), {cpu_model()}; Python {platform.python_version()}; "
        f"load average {' '.join(load)}; other busy processes: {', '.join(busy) or 'none'}"
    )


def print_header(title: str) -> None:
    print(f"== {title}")
    print(machine_line())
    print()


# ---------------------------------------------------------------- figures


def pct(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return math.nan
    k = (len(data) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def _numeric(cell: str) -> bool:
    core = cell.replace(",", "").replace(".", "", 1).rstrip("x%").lstrip("+-")
    return core.isdigit() or cell == "-"


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    numeric = [all(_numeric(r[i]) or not r[i] for r in cells[1:]) for i in range(len(header))]
    lines = []
    for j, r in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if num else c.ljust(w)
                for c, w, num in zip(r, widths, numeric, strict=True)
            ).rstrip()
        )
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------- a fake server in a process


class RpmLimiter:
    """A server-side requests-per-minute limit: a token bucket refilled at rpm/60 per second.

    The bucket holds ``burst`` requests (one second's worth by default), so the
    sustained rate cannot exceed the limit. A request over the limit gets 429 with
    ``Retry-After`` (whole seconds, rounded up, as HTTP says) and no token is taken.
    """

    def __init__(self, rpm: float, burst: float | None = None) -> None:
        self.rate = rpm / 60.0
        self.capacity = burst if burst is not None else max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0.0 when the request may go; else seconds until a token is free."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


class WindowLimit:
    """A provider-style limit of ``limit`` units per ``window`` seconds, with its headers.

    A token bucket holding one window's worth and refilled continuously. A request
    over the limit gets 429 with ``Retry-After`` (whole seconds, rounded up) and
    takes nothing. Every answer carries ``x-ratelimit-limit-<unit>``,
    ``-remaining-<unit>`` and ``-reset-<unit>`` (time until the bucket is full again),
    as https://platform.openai.com/docs/guides/rate-limits documents them.
    """

    def __init__(self, unit: str, limit: float, window: float) -> None:
        self.unit = unit
        self.limit = limit
        self.rate = limit / window
        self.level = limit
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.limit, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, cost: float) -> float:
        self.refill()
        return 0.0 if self.level >= cost else (cost - self.level) / self.rate

    def take(self, cost: float) -> None:
        self.level -= cost

    def headers(self) -> dict[str, str]:
        reset = (self.limit - self.level) / self.rate
        return {
            f"x-ratelimit-limit-{self.unit}": str(int(self.limit)),
            f"x-ratelimit-remaining-{self.unit}": str(max(0, int(self.level))),
            f"x-ratelimit-reset-{self.unit}": f"{reset:.3f}s",
        }


def request_cost(payload: dict[str, Any]) -> int:
    """Tokens a request counts against a TPM limit: the prompt estimated from its size
    (4 characters a token) plus the answer it may ask for (``max_tokens``); the
    provider counts both before answering (rate-limits guide, above)."""
    size = int(payload.get("_bytes") or 0)
    answer = int(payload.get("max_completion_tokens") or payload.get("max_tokens") or 0)
    return math.ceil(size / 4) + answer


def _serve(config: dict[str, Any], ready: Any, stop: Any, results: Any) -> None:
    # Runs in the child process.
    import socketserver
    from http.server import ThreadingHTTPServer

    from caseextract.testing import FakeOpenAIServer, Reply, crafted_error

    ThreadingHTTPServer.request_queue_size = 256  # accept bursts of 32+ connections
    # The handler writes headers and body in two sends; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms on Linux), a stall no real API has.
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    body: bytes = config["body"]
    delay: float = config.get("delay", 0.0)
    limiter = RpmLimiter(config["rpm"], config.get("burst")) if config.get("rpm") else None
    window = config.get("window") or 10.0
    limits = [
        WindowLimit(unit, config[key], window)
        for unit, key in (("requests", "limit_requests"), ("tokens", "limit_tokens"))
        if config.get(key)
    ]
    send_headers = config.get("headers", True)
    counts = {"ok": 0, "limited": 0}
    ok_times: list[float] = []
    ok_costs: list[int] = []
    lock = threading.Lock()

    def respond(payload: dict[str, Any], index: int) -> Reply:
        if limits:
            costs = {"requests": 1, "tokens": request_cost(payload)}
            with lock:
                wait = max(w.wait_for(costs[w.unit]) for w in limits)
                if wait == 0:
                    for w in limits:
                        w.take(costs[w.unit])
                    counts["ok"] += 1
                    ok_times.append(time.time())
                    ok_costs.append(costs["tokens"])
                else:
                    counts["limited"] += 1
                headers = {k: v for w in limits for k, v in w.headers().items()}
            if not send_headers:
                headers = {}
            if wait > 0:
                headers["retry-after"] = str(max(1, math.ceil(wait)))
                return crafted_error(
                    429, "Rate limit reached (crafted)", "rate_limit_exceeded", headers
                )
            return Reply(body=body, delay=delay, headers=headers)
        if limiter is not None:
            wait = limiter.take()
            if wait > 0:
                with lock:
                    counts["limited"] += 1
                return crafted_error(
                    429,
                    "Rate limit reached for requests (crafted)",
                    "rate_limit_exceeded",
                    {"retry-after": str(max(1, math.ceil(wait)))},
                )
        with lock:
            counts["ok"] += 1
            ok_times.append(time.time())
        return Reply(body=body, delay=delay)

    server = FakeOpenAIServer(respond)
    server.requests = _Discard()  # keep no request bodies: the server must not grow
    server.start()
    ready.put(server.base_url)
    stop.wait(config.get("lifetime", SERVER_LIFETIME_S))
    server.stop()
    results.put({**counts, "ok_times": ok_times, "ok_costs": ok_costs})


class _Discard(list):
    """A list that only counts (FakeOpenAIServer appends every request body to it)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def append(self, item: Any) -> None:
        self.n += 1

    def __len__(self) -> int:
        return self.n


class ServerProcess:
    """``with ServerProcess(body=..., delay=0.3) as base_url:`` — a crafted server in a child."""

    def __init__(
        self,
        body: bytes,
        delay: float = 0.0,
        rpm: float | None = None,
        burst: float | None = None,
        lifetime: float = SERVER_LIFETIME_S,
        **limits: Any,  # limit_requests / limit_tokens per window seconds; headers on/off
    ) -> None:
        ctx = mp.get_context("spawn")
        self._ready = ctx.Queue()
        self._results = ctx.Queue()
        self._stop = ctx.Event()
        config = {"body": body, "delay": delay, "rpm": rpm, "burst": burst, "lifetime": lifetime,
                  **limits}  # fmt: skip
        self._proc = ctx.Process(
            target=_serve, args=(config, self._ready, self._stop, self._results), daemon=True
        )
        self.stats: dict[str, Any] = {}

    def __enter__(self) -> str:
        self._proc.start()
        return self._ready.get(timeout=60)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.stats = self._results.get(timeout=30)
        except Exception:  # noqa: BLE001 - the figures that need it say so
            self.stats = {}
        self._proc.join(timeout=10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)


def bench_settings(base_url: str, **overrides: Any) -> Any:
    from caseextract.llm import ModelSettings

    values: dict[str, Any] = {"model": "crafted-model", "base_url": base_url, "timeout": 30.0}
    values.update(overrides)
    return ModelSettings(**values)


def run_python(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], text=True, check=False, **kwargs)
