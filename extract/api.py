"""``caseextract.extract``: one report in, one result record out, for notebooks and scripts.

It runs the same steps as ``caseextract run`` on one document (prompt set, model
call with its retries and re-asks, grounding, the record) and returns the record
instead of writing it. Failures raise the typed errors of ``caseextract.errors``
(the CLI writes them as failed records instead).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from caseextract.documents import Document, load_document
from caseextract.llm.client import ModelClient
from caseextract.llm.recording import RecordingStore
from caseextract.llm.types import ModelSettings
from caseextract.pipeline.outcome import ok_record
from caseextract.records import ResultRecord
from caseextract.tasks import Task, default_task, task_for
from pydantic import BaseModel

TEXT_ID = "text"  # the document id of a report passed as text


def _document(source: str | os.PathLike[str] | Document) -> Document:
    if isinstance(source, Document):
        return source
    if isinstance(source, os.PathLike):
        return load_document(Path(source))
    looks_like_path = "\n" not in source and len(source) < 4096
    if looks_like_path and Path(source).is_file():
        return load_document(Path(source))
    return Document(
        id=TEXT_ID,
        path=Path(f"<{TEXT_ID}>"),
        text=source,
        sha256=hashlib.sha256(source.encode("utf-8")).hexdigest(),
        encoding="utf-8",
    )


def _task(schema: str | type[BaseModel] | None, prompt_set: str) -> Task:
    if schema is None or isinstance(schema, str):
        return default_task(prompt_set, schema)
    return task_for(schema, prompt_set)


def extract(
    source: str | os.PathLike[str] | Document,
    *,
    model: str | None = None,
    schema: str | type[BaseModel] | None = None,
    prompt_set: str = "case_report",
    base_url: str | None = None,
    api_key: str | None = None,
    recordings: str | os.PathLike[str] | None = None,
    record_mode: str = "replay",
    **settings: Any,
) -> ResultRecord:
    """Extract one report: a path (text, HTML text or PDF) or the report's text itself.

    ``model``, ``base_url`` and ``api_key`` say where to ask; they default, as on the
    command line, to ``CASEEXTRACT_MODEL``, ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``.
    ``schema`` is a response model class or ``"module:Class"``, with its ``prompt_set``;
    ``recordings`` replays (or, with ``record_mode``, records) the exchanges in a
    folder, as ``--recordings`` does. Other keywords are ``ModelSettings`` fields
    (``reasks``, ``instructor_mode``, ``reasoning_effort`` …).
    """
    doc = _document(source)
    task = _task(schema, prompt_set)
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    model = model or os.environ.get("CASEEXTRACT_MODEL") or None
    options: dict[str, Any] = {"base_url": base_url, "api_key": api_key, **settings}
    if model is not None:
        options["model"] = model
    store = RecordingStore(Path(recordings), record_mode) if recordings is not None else None
    client = ModelClient(ModelSettings(**options), store)
    try:
        ext = client.extract(task.messages(doc), task.response_model, source_text=doc.text)
        return ok_record(task, client, doc, ext)
    finally:
        client.close()
