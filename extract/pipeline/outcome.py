"""The result record of one document: built from a valid answer or from a failure."""

from __future__ import annotations

from typing import Any

from caseextract._version import __version__
from caseextract.documents import Document
from caseextract.errors import ExtractError
from caseextract.grounding import evidence
from caseextract.grounding.facts import stats as grounding_stats
from caseextract.llm.client import ModelClient
from caseextract.llm.types import Extraction
from caseextract.records import (
    RECORD_VERSION,
    DocumentInfo,
    ErrorInfo,
    GroundingInfo,
    ResultRecord,
    Usage,
    utc_now,
)
from caseextract.redaction import redact
from caseextract.tasks import Task


def _base_record(task: Task, client: ModelClient, doc_info: DocumentInfo) -> ResultRecord:
    return ResultRecord(
        record_version=RECORD_VERSION,
        document=doc_info,
        model=client.settings.model,
        mode=client.settings.instructor_mode,
        api=client.settings.api,
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
    record.finished_at = utc_now()
    return record


def ok_record(task: Task, client: ModelClient, doc: Document, ext: Extraction) -> ResultRecord:
    """The record of a valid answer: ``ok``, or ``empty`` (with the reason as its
    ``error``, kind ``empty``) when it holds too few facts for the task
    (``evidence.empty_reason``); an empty record is not done and is retried."""
    record = _base_record(task, client, doc_info(doc))
    gstats = grounding_stats(ext.facts)
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


def doc_info(doc: Document) -> DocumentInfo:
    return DocumentInfo(
        id=doc.id,
        path=str(doc.path),
        sha256=doc.sha256,
        chars=len(doc.text),
        encoding=doc.encoding,
        decode_errors=doc.decode_errors,  # bytes that were not valid UTF-8, replaced
    )
