"""Documents in, result records out: one task, many documents, failures isolated.

Generic over the task — a prompt set and a response model. Nothing here knows
which schema it runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import logging
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import __version__, evidence, grounding
from .documents import Document, document_id, load_document, safe_filename
from .errors import ConfigError, ExtractError, OutputError
from .llm import Extraction, ModelClient
from .prompts import PromptSet, load_prompt_set
from .records import (
    RECORD_VERSION,
    DocumentInfo,
    ErrorInfo,
    GroundingInfo,
    ResultRecord,
    Usage,
)
from .redaction import redact
from .schema import SCHEMA_VERSION, CaseReport
from .schema_text import describe
from .store import ResultWriter

if TYPE_CHECKING:
    from .passes import PassConfig

log = logging.getLogger("caseextract.pipeline")


@dataclass(frozen=True)
class Task:
    prompt_set: PromptSet
    response_model: type[BaseModel]
    schema_version: str = SCHEMA_VERSION
    extra_instructions: str = ""
    schema_in_prompt: bool = False  # for servers that do not show the tool to the model

    def messages(self, doc: Document) -> list[dict[str, str]]:
        extra = self.extra_instructions
        if self.schema_in_prompt:
            extra = "\n\n".join(x for x in (extra, describe(self.response_model)) if x)
        return self.prompt_set.render(
            document=fence_safe(doc.for_model),
            document_name=safe_filename(doc.id),
            schema_name=self.response_model.__name__,
            extra_instructions=extra,
        )


FENCE_MARKERS = ("<<<REPORT", "REPORT>>>")


def fence_safe(text: str) -> str:
    """The document with the prompt's data-fence markers broken, so that a report
    cannot close the fence around itself and speak as the prompt."""
    for marker in FENCE_MARKERS:
        text = text.replace(marker, marker.replace("<<<", "< < <").replace(">>>", "> > >"))
    return text


def load_model(spec: str) -> type[BaseModel]:
    """``package.module:ClassName`` → the pydantic model class."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"schema {spec!r}: expected 'module:ClassName'")
    try:
        model = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"schema {spec!r}: {exc}") from None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"schema {spec!r} is not a pydantic model")
    return model


def default_task(
    prompt_set: str = "case_report", schema: str | None = None, schema_in_prompt: bool = False
) -> Task:
    model = load_model(schema) if schema else CaseReport
    module = importlib.import_module(model.__module__)
    version = getattr(module, "SCHEMA_VERSION", "custom")
    return Task(load_prompt_set(prompt_set), model, version, schema_in_prompt=schema_in_prompt)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _base_record(task: Task, client: ModelClient, doc_info: DocumentInfo) -> ResultRecord:
    return ResultRecord(
        record_version=RECORD_VERSION,
        document=doc_info,
        model=client.settings.model,
        mode=client.settings.instructor_mode,
        prompt_set=task.prompt_set.name,
        prompt_version=task.prompt_set.version,
        schema_name=task.response_model.__name__,
        schema_version=task.schema_version,
        schema_in_prompt=task.schema_in_prompt,
        caseextract_version=__version__,
    )


def _call_fields(record: ResultRecord, stats: dict[str, Any]) -> ResultRecord:
    """What a model call cost, from ``CallStats.to_dict()`` (also on errors' context)."""
    record.model_returned = stats.get("model")
    record.attempts = stats.get("attempts", 0)
    record.http_requests = stats.get("http_requests", 0)
    record.http_retries = stats.get("http_retries", 0)
    record.usage = Usage(**{k: stats.get(k, 0) or 0 for k in Usage.model_fields})
    record.latency_s = stats.get("latency_s")
    record.finished_at = _now()
    return record


def ok_record(task: Task, client: ModelClient, doc: Document, ext: Extraction) -> ResultRecord:
    """The record of a valid answer: ``ok``, or ``empty`` (with the reason as its
    ``error``, kind ``empty``) when it holds too few facts for the task
    (``evidence.empty_reason``); an empty record is not done and is retried."""
    record = _base_record(task, client, _doc_info(doc))
    gstats = grounding.stats(ext.facts)
    facts = sum(f.kind == "fact" for f in ext.facts)
    empty = evidence.empty_reason(ext.value, facts)
    record.status = "empty" if empty else "ok"
    if empty:
        record.error = ErrorInfo(kind="empty", message=empty)
    record.extraction = ext.value.model_dump(mode="json")
    record.grounding = GroundingInfo(
        stats={**gstats.__dict__},
        rate=None if gstats.rate is None else round(gstats.rate, 4),
        facts=[f.to_dict() for f in ext.facts],
    )
    return _call_fields(record, ext.stats.to_dict())


def failed_record(
    task: Task, client: ModelClient, doc_info: DocumentInfo, exc: BaseException
) -> ResultRecord:
    record = _base_record(task, client, doc_info)
    kind = exc.kind if isinstance(exc, ExtractError) else "internal"
    message = redact(str(exc) or type(exc).__name__, client.settings.api_key)
    ctx = exc.context if isinstance(exc, ExtractError) else {}
    record.error = ErrorInfo(kind=kind, message=message)
    record.last_completion = ctx.get("last_completion") or None
    return _call_fields(record, ctx.get("stats", {}))


def _doc_info(doc: Document) -> DocumentInfo:
    return DocumentInfo(
        id=doc.id,
        path=str(doc.path),
        sha256=doc.sha256,
        chars=len(doc.text),
        encoding=doc.encoding,
        decode_errors=doc.decode_errors,  # bytes that were not valid UTF-8, replaced
    )


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
            info = _doc_info(doc)
            key = (doc.id, doc.sha256)
            # the same document twice in one batch (a copy in another folder) is one
            # document, as it is on resume: extract it once
            if self.writer.is_done(*key) or key in self._started:
                return None
            self._started.add(key)
            messages = self.task.messages(doc)
            if self.passes is not None and self.passes.strategy != "single":
                from .passes import run_passes

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
