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
from typing import Any

from pydantic import BaseModel

from . import __version__, grounding
from .documents import Document, document_id, load_document, safe_filename
from .errors import ConfigError, ExtractError
from .llm import Extraction, ModelClient
from .prompts import PromptSet, load_prompt_set
from .redaction import redact
from .schema import SCHEMA_VERSION, CaseReport
from .schema_text import describe
from .store import ResultWriter

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


def _base_record(task: Task, client: ModelClient, doc_info: dict[str, Any]) -> dict[str, Any]:
    return {
        "document": doc_info,
        "status": "failed",
        "error": None,
        "extraction": None,
        "grounding": None,
        "model": client.settings.model,
        "mode": client.settings.mode,
        "prompt_set": task.prompt_set.name,
        "prompt_version": task.prompt_set.version,
        "schema": task.response_model.__name__,
        "schema_version": task.schema_version,
        "schema_in_prompt": task.schema_in_prompt,
        "caseextract_version": __version__,
    }


def _call_fields(stats: dict[str, Any]) -> dict[str, Any]:
    """What a model call cost, from ``CallStats.to_dict()`` (also on errors' context)."""
    return {
        "model_returned": stats.get("model"),
        "attempts": stats.get("attempts", 0),
        "http_requests": stats.get("http_requests", 0),
        "http_retries": stats.get("http_retries", 0),
        "usage": {
            k: stats.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        },
        "latency_s": stats.get("latency_s"),
        "finished_at": _now(),
    }


def ok_record(task: Task, client: ModelClient, doc: Document, ext: Extraction) -> dict[str, Any]:
    record = _base_record(task, client, _doc_info(doc))
    gstats = grounding.stats(ext.facts)
    record.update(
        status="ok",
        extraction=ext.value.model_dump(mode="json"),
        grounding={
            "stats": {**gstats.__dict__},
            "rate": None if gstats.rate is None else round(gstats.rate, 4),
            "facts": [f.to_dict() for f in ext.facts],
        },
        **_call_fields(ext.stats.to_dict()),
    )
    return record


def failed_record(
    task: Task, client: ModelClient, doc_info: dict[str, Any], exc: BaseException
) -> dict[str, Any]:
    record = _base_record(task, client, doc_info)
    kind = exc.kind if isinstance(exc, ExtractError) else "internal"
    message = redact(str(exc) or type(exc).__name__, client.settings.api_key)
    ctx = exc.context if isinstance(exc, ExtractError) else {}
    record.update(error={"kind": kind, "message": message}, **_call_fields(ctx.get("stats", {})))
    if ctx.get("last_completion"):
        record["last_completion"] = ctx["last_completion"]
    return record


def _doc_info(doc: Document) -> dict[str, Any]:
    return {"id": doc.id, "path": str(doc.path), "sha256": doc.sha256, "chars": len(doc.text)}


@dataclass
class RunSummary:
    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    failures: Counter[str] = field(default_factory=Counter)
    failed_docs: list[tuple[str, str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    http_requests: int = 0
    grounding: grounding.GroundingStats = field(default_factory=grounding.GroundingStats)

    def add(self, record: dict[str, Any]) -> None:
        usage = record.get("usage") or {}
        self.prompt_tokens += usage.get("prompt_tokens", 0)
        self.completion_tokens += usage.get("completion_tokens", 0)
        self.attempts += record.get("attempts", 0)
        self.http_requests += record.get("http_requests", 0)
        if record["status"] == "ok":
            self.ok += 1
            g = (record.get("grounding") or {}).get("stats")
            if g:
                self.grounding.add(grounding.GroundingStats(**g))
        else:
            self.failed += 1
            err = record.get("error") or {}
            self.failures[err.get("kind", "?")] += 1
            doc = record["document"]
            self.failed_docs.append((doc.get("id"), err.get("kind"), err.get("message")))


class Runner:
    """Runs a task over documents with bounded concurrency, writing each result at once."""

    def __init__(
        self,
        task: Task,
        client: ModelClient,
        writer: ResultWriter,
        concurrency: int = 4,
        on_result: Callable[[dict[str, Any]], None] | None = None,
        preflight: Callable[[list[dict[str, str]]], None] | None = None,
        ids: dict[Path, str] | None = None,
    ) -> None:
        self.ids = ids or {}  # document ids chosen by ``discover_batch`` (default: the stem)
        self.task = task
        self.client = client
        self.writer = writer
        self.concurrency = max(1, concurrency)
        self.on_result = on_result
        self.preflight = preflight  # e.g. a context-length check; raises ExtractError
        self.summary = RunSummary()
        self._started: set[tuple[str, str]] = set()  # (id, sha256) taken up in this run

    async def process(self, path: Path) -> dict[str, Any] | None:
        """One document → its record (or ``None`` when already done)."""
        doc_id = self.ids.get(path) or document_id(path)
        info: dict[str, Any] = {"id": doc_id, "path": str(path), "sha256": None}
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

    def _emit(self, record: dict[str, Any] | None) -> None:
        if record is None:
            self.summary.skipped += 1
        else:
            self.writer.write(record)
            self.summary.add(record)
        if self.on_result:
            self.on_result(record or {})

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
        finally:
            await self.client.aclose()
        return self.summary
