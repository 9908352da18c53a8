"""A fault batch: many documents through the real pipeline, faults injected.

Used by the reliability tests and by ``bench/reliability.py``. Runs the real
pipeline (``Runner`` → ``ModelClient`` → openai + instructor over real HTTP →
``ResultWriter``) against ``caseextract.testing.FakeOpenAIServer`` on 127.0.0.1.
The server's replies are crafted; a ``FaultSchedule`` picks, from the seed, which
requests get a fault and which kind: 429 with and without Retry-After, 429
insufficient_quota, 500/502/503, an answer slower than the timeout, a connection
reset mid-body, a 200 whose body is not JSON, an answer that violates the
schema, output cut at max_tokens, a refusal, 401.

Everything is counted twice, independently: on the wire (what the server
received and answered, in order, per document) and in the results file (one
JSONL line per document, read back from disk). Lost and duplicated documents
are counted from the file. Nothing leaves the machine; the run is bounded by
the retry limits and the timeout, and the server stops when it ends.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract.llm import ModelClient, ModelSettings
from caseextract.pipeline.runner import Runner
from caseextract.store import ResultWriter
from caseextract.tasks import default_task
from caseextract.testing.answers import CRAFTED_SEED_ANSWER
from caseextract.testing.server import (
    FAULT_KINDS,
    FINAL_FAULTS,
    REASK_FAULTS,
    TRANSIENT_FAULTS,
    FakeOpenAIServer,
    FaultSchedule,
    Reply,
    crafted_tool_completion,
)

DOC_PREFIX = "rel-"
RATE_LIMIT_FAULTS = ("429_retry_after", "429_no_retry_after")  # a time budget, not a count
_DOC_ID = re.compile(rf"\b({DOC_PREFIX}\d{{4}})\b")

# A short synthetic case report; every crafted quote below is copied from it.
DOC_TEMPLATE = """Report {doc_id}.
Intradural cement leakage after vertebroplasty

An 87-year-old female patient presented with back pain after a fall.
Vertebroplasty for L1 was performed under intravenous sedation.
The patient could walk with no neurologic deficit.
"""


def _short_seed_answer() -> dict[str, Any]:
    """The seed's crafted answer cut to what ``DOC_TEMPLATE`` states (one procedure)."""
    answer = copy.deepcopy(CRAFTED_SEED_ANSWER)
    patient = answer["patients"][0]
    patient["interventions"] = patient["interventions"][:1]
    patient.pop("follow_up", None)
    return answer


CRAFTED_ANSWER: dict[str, Any] = _short_seed_answer()


def document_key(payload: dict[str, Any]) -> str:
    """The document a request is about: the report id written in its text."""
    for message in payload.get("messages") or []:
        if message.get("role") == "user":
            match = _DOC_ID.search(str(message.get("content", "")))
            if match:
                return match.group(1)
    return "?"


def make_documents(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        doc_id = f"{DOC_PREFIX}{i:04d}"
        path = folder / f"{doc_id}.txt"
        path.write_text(DOC_TEMPLATE.format(doc_id=doc_id), encoding="utf-8")
        paths.append(path)
    return paths


@dataclass
class Expected:
    """What the documented retry policy (llm/client.py, llm/failures.py) must do with a document."""

    status: str  # "ok" or "failed"
    error_kind: str | None
    requests: int
    http_retries: int
    reasks: int


def expected_outcome(schedule: FaultSchedule, key: str, http_retries: int, reasks: int) -> Expected:
    """Walk the schedule for one document the way the client must.

    Per model call at most ``http_retries`` + 1 requests ended by a transient fault
    other than a 429 (a 200 whose body is not JSON among them); 429s are waited
    out within a time budget (``rate_limit_wait``, never reached here) and do not
    count; at most ``reasks`` + 1 model calls (an answer that violates the schema
    is re-asked); final faults end the document at once.
    """
    index = retries = asks = 0
    for call in range(reasks + 1):
        faults = 0
        while True:
            kind = schedule.decide(key, index)
            index += 1
            if kind == "ok":
                return Expected("ok", None, index, retries, asks)
            if kind in FINAL_FAULTS:
                return Expected("failed", FINAL_FAULTS[kind], index, retries, asks)
            if kind in TRANSIENT_FAULTS:
                if kind not in RATE_LIMIT_FAULTS:
                    if faults == http_retries:
                        return Expected("failed", "transient", index, retries, asks)
                    faults += 1
                retries += 1
                continue
            if kind in REASK_FAULTS:
                if call == reasks:
                    return Expected("failed", "validation", index, retries, asks)
                asks += 1
                break
            raise AssertionError(kind)
    raise AssertionError("unreachable")


def _treatment(kind: str) -> str:
    if kind in TRANSIENT_FAULTS:
        return "retried"
    if kind in REASK_FAULTS:
        return "re-asked"
    return f"fails: {FINAL_FAULTS[kind]}"


@dataclass
class BatchResult:
    doc_ids: list[str]
    lines: list[str]  # the results file, line by line, as read back from disk
    records: list[dict[str, Any]]
    served: dict[str, list[str]]  # per document: "ok" or the fault kind, request by request
    expected: dict[str, Expected]
    settings: ModelSettings
    rate: float
    seed: int
    elapsed_s: float
    bad_lines: int = 0
    summary: Any = None
    by_id: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    # -- counted on the wire -------------------------------------------------------

    def faults(self) -> Counter[str]:
        return Counter(k for kinds in self.served.values() for k in kinds if k != "ok")

    def requests(self) -> int:
        return sum(len(kinds) for kinds in self.served.values())

    def _after(self, group: tuple[str, ...] | set[str]) -> int:
        """Requests that followed, for the same document, a reply of a kind in ``group``."""
        return sum(1 for kinds in self.served.values() for prev in kinds[:-1] if prev in group)

    def http_retries(self) -> int:
        return self._after(TRANSIENT_FAULTS)

    def reasks(self) -> int:
        return self._after(REASK_FAULTS)

    def retried_final(self) -> int:
        """Requests sent after a fault that must never be retried (should be 0)."""
        return self._after(set(FINAL_FAULTS))

    def after_success(self) -> int:
        """Requests sent for a document after it had a good answer (should be 0)."""
        return self._after({"ok"})

    # -- counted in the results file ---------------------------------------------

    def lost(self) -> list[str]:
        return [d for d in self.doc_ids if d not in self.by_id]

    def duplicated(self) -> int:
        return sum(len(rs) - 1 for rs in self.by_id.values() if len(rs) > 1)

    def failed_by_kind(self) -> Counter[str]:
        return Counter(
            (r.get("error") or {}).get("kind", "?") for r in self.records if r["status"] != "ok"
        )

    def extracted(self) -> int:
        return sum(1 for r in self.records if r["status"] == "ok")

    def mismatches(self) -> list[str]:
        """Documents whose outcome differs from what the retry policy prescribes."""
        out = []
        for doc_id, exp in self.expected.items():
            recs = self.by_id.get(doc_id, [])
            if len(recs) != 1:
                continue  # counted as lost or duplicated
            r = recs[0]
            kind = (r.get("error") or {}).get("kind")
            got = (r["status"], kind, len(self.served.get(doc_id, [])), r.get("http_requests"))
            want = (exp.status, exp.error_kind, exp.requests, exp.requests)
            if got != want:
                out.append(f"{doc_id}: got {got}, policy says {want}")
        return out

    def counted(self) -> dict[str, int]:
        """Requests per document that count against the bound (429s excepted)."""
        return {
            d: sum(1 for k in kinds if k not in RATE_LIMIT_FAULTS)
            for d, kinds in self.served.items()
        }

    def worst_case(self) -> int:
        """Most requests per document, 429s not counted (they spend a time budget)."""
        s = self.settings
        return (s.reasks + 1) * (s.http_retries + 1)

    def figures(self) -> list[tuple[str, str]]:
        s = self.settings
        faults = self.faults()
        rows = [
            ("documents", str(len(self.doc_ids))),
            ("HTTP requests", str(self.requests())),
            (
                "faults injected",
                f"{sum(faults.values())} ({sum(faults.values()) / max(1, self.requests()):.0%} "
                "of requests)",
            ),
        ]
        rows += [(f"  {k} ({_treatment(k)})", str(faults.get(k, 0))) for k in FAULT_KINDS]
        rows += [
            ("HTTP retries (after a transient fault)", str(self.http_retries())),
            ("re-asks (after an invalid answer)", str(self.reasks())),
            ("requests after a non-retryable fault", str(self.retried_final())),
            (
                "most requests for one document, 429s not counted",
                f"{max(self.counted().values(), default=0)} "
                f"(bound: ({s.reasks} re-asks + 1) × ({s.http_retries} retries + 1) = "
                f"{self.worst_case()})",
            ),
            ("extracted", str(self.extracted())),
            ("failed", str(len(self.records) - self.extracted())),
        ]
        rows += [(f"  failed: {k}", str(n)) for k, n in sorted(self.failed_by_kind().items())]
        rows += [
            ("lost", str(len(self.lost()))),
            ("duplicated", str(self.duplicated())),
            ("invalid result lines", str(self.bad_lines)),
            ("outcomes not as the retry policy prescribes", str(len(self.mismatches()))),
            (
                "request counts, results file vs server",
                f"{sum(r.get('http_requests', 0) for r in self.records)} vs {self.requests()}",
            ),
        ]
        return rows

    def table(self) -> str:
        rows = self.figures()
        width = max(len(k) for k, _ in rows)
        out = [f"| {'':{width}} | value |", f"|{'-' * (width + 2)}|-------|"]
        out += [f"| {k:{width}} | {v} |" for k, v in rows]
        return "\n".join(out)


def _allow_loopback_without_proxy() -> None:
    """httpx honours HTTP(S)_PROXY; make sure 127.0.0.1 is never sent through one."""
    for var in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(var, "")
        os.environ[var] = ",".join(filter(None, ["127.0.0.1", "localhost", current]))


def run_batch(
    workdir: Path,
    docs: int = 200,
    rate: float = 0.3,
    seed: int = 7,
    concurrency: int = 8,
    timeout: float = 5.0,
    http_retries: int = 3,
    reasks: int = 2,
) -> BatchResult:
    """Run ``docs`` documents through the pipeline against a faulty server; count everything."""
    _allow_loopback_without_proxy()
    paths = make_documents(workdir / "docs", docs)
    doc_ids = [p.stem for p in paths]
    out = workdir / "results.jsonl"
    good = Reply(body=crafted_tool_completion(CRAFTED_ANSWER))
    schedule = FaultSchedule(good, rate=rate, seed=seed, slow_delay=timeout + 1.0, key=document_key)
    started = time.perf_counter()
    with FakeOpenAIServer(schedule) as server:
        settings = ModelSettings(
            model="crafted-model",
            base_url=server.base_url,
            timeout=timeout,
            http_retries=http_retries,
            reasks=reasks,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        client = ModelClient(settings)
        with ResultWriter(out, resume=False) as writer:
            runner = Runner(default_task(), client, writer, concurrency)
            summary = asyncio.run(runner.run(paths))
    elapsed = time.perf_counter() - started

    raw = out.read_text(encoding="utf-8")
    lines = raw.splitlines(keepends=True)
    records, bad = [], 0
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if not line.endswith("\n") or not isinstance(record, dict):
            bad += 1
            continue
        records.append(record)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_id.setdefault(r["document"]["id"], []).append(r)
    return BatchResult(
        doc_ids=doc_ids,
        lines=lines,
        records=records,
        served=schedule.by_key(),
        expected={d: expected_outcome(schedule, d, http_retries, reasks) for d in doc_ids},
        settings=settings,
        rate=rate,
        seed=seed,
        elapsed_s=elapsed,
        bad_lines=bad,
        summary=summary,
        by_id=by_id,
    )
