"""Documents in, result records out: one task, many documents, failures isolated.

Generic over the task — a prompt set and a response model. Nothing here knows
which schema it runs.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from caseextract import grounding
from caseextract.documents import document_id, load_document
from caseextract.errors import ExtractError, OutputError
from caseextract.llm import ModelClient
from caseextract.pipeline.outcome import doc_info, failed_record, ok_record
from caseextract.pipeline.passes.multipass import PassConfig, run_passes
from caseextract.records import (
    DocumentInfo,
    ErrorInfo,
    ResultRecord,
)
from caseextract.redaction import redact
from caseextract.store import ResultWriter
from caseextract.tasks import Task

log = logging.getLogger("caseextract.pipeline")


@dataclass
class RunSummary:
    total: int = 0
    ok: int = 0
    empty: int = 0  # valid answers with too few facts: not done, retried on resume
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    failures: Counter[str] = field(default_factory=Counter)
    failed_docs: list[tuple[str, str, str]] = field(default_factory=list)
    empty_docs: list[tuple[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    attempts: int = 0
    http_requests: int = 0
    grounding: grounding.GroundingStats = field(default_factory=grounding.GroundingStats)

    def add(self, record: ResultRecord) -> None:
        self.prompt_tokens += record.usage.prompt_tokens
        self.completion_tokens += record.usage.completion_tokens
        self.cached_tokens += record.usage.cached_tokens
        self.reasoning_tokens += record.usage.reasoning_tokens
        self.attempts += record.attempts
        self.http_requests += record.http_requests
        if record.status in ("ok", "empty"):
            if record.ok:
                self.ok += 1
            else:
                self.empty += 1
                reason = record.error.message if record.error else ""
                self.empty_docs.append((str(record.document.id), reason))
            if record.grounding is not None and record.grounding.stats:
                self.grounding.add(grounding.GroundingStats.from_dict(record.grounding.stats))
        else:
            self.failed += 1
            err = record.error or ErrorInfo(kind="internal")
            self.failures[err.kind] += 1
            self.failed_docs.append((str(record.document.id), err.kind, err.message))


class Runner:
    """Runs a task over documents with bounded concurrency, writing each result at once."""

    def __init__(
        self,
        task: Task,
        client: ModelClient,
        writer: ResultWriter,
        concurrency: int = 4,
        on_result: Callable[[ResultRecord | None], None] | None = None,
        preflight: Callable[[list[dict[str, str]]], None] | None = None,
        ids: dict[Path, str] | None = None,
        passes: PassConfig | None = None,
    ) -> None:
        self.ids = ids or {}  # document ids chosen by ``discover_batch`` (default: the stem)
        self.task = task
        self.client = client
        self.writer = writer
        self.concurrency = max(1, concurrency)
        self.on_result = on_result
        self.preflight = preflight  # e.g. a context-length check; raises ExtractError
        self.passes = passes  # multi-pass settings (caseextract.passes); None = one call
        self.summary = RunSummary()
        self._started: set[tuple[str, str]] = set()  # (id, sha256) taken up in this run

    async def process(self, path: Path) -> ResultRecord | None:
        """One document → its record (or ``None`` when already done)."""
        doc_id = self.ids.get(path) or document_id(path)
        info = DocumentInfo(id=doc_id, path=str(path))
        try:
            doc = await asyncio.to_thread(load_document, path, doc_id)  # PDFs parse slowly
            info = doc_info(doc)
            key = (doc.id, doc.sha256)
            # the same document twice in one batch (a copy in another folder) is one
            # document, as it is on resume: extract it once
            if self.writer.is_done(*key) or key in self._started:
                return None
            self._started.add(key)
            messages = self.task.messages(doc)
            if self.passes is not None and self.passes.strategy != "single":
                return await run_passes(self, doc, messages)
            if self.preflight is not None:
                await asyncio.to_thread(self.preflight, messages)
            ext = await self.client.aextract(
                messages, self.task.response_model, source_text=doc.text
            )
            return ok_record(self.task, self.client, doc, ext)
        except ExtractError as exc:
            return failed_record(self.task, self.client, info, exc)
        except Exception as exc:  # one bad document must never stop the batch
            log.debug("internal error on %s:\n%s", path, redact(traceback.format_exc()))
            return failed_record(self.task, self.client, info, exc)

    def _emit(self, record: ResultRecord | None) -> None:
        if record is None:
            self.summary.skipped += 1
        else:
            self.writer.write(record)
            self.summary.add(record)
        if self.on_result:
            self.on_result(record)

    async def run(self, paths: Sequence[Path]) -> RunSummary:
        self.summary.total = len(paths)
        queue: asyncio.Queue[Path] = asyncio.Queue()
        for p in paths:
            queue.put_nowait(p)

        async def worker() -> None:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                self._emit(await self.process(path))

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(paths)))]
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            self.summary.interrupted = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        except OutputError:  # the results cannot be saved (disk full): stop asking
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            await self.client.aclose()
        return self.summary
