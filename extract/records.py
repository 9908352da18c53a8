"""The result record: one line of a results file, defined once.

``pipeline`` builds records, ``store`` writes and reads them, and every reader
(``evals``, the review pages, the cost ledger, the CLI) uses these types
instead of string keys. On disk a record is one JSON object per line, readable
as it always was; fields this version does not know are kept (``extra="allow"``)
and written back unchanged, and files written before records were versioned
(``record_version`` absent → 0) still load and resume.

Versions: 0 — untyped dicts (caseextract ≤ 0.1.0 before this module); 1 — this
module; same keys, plus ``record_version`` and ``usage.json_repairs``-style
counters added by later versions without breaking older readers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RECORD_VERSION = 1
STATUSES = ("ok", "failed")
LABEL_FIELDS = ("name", "description", "event", "label", "raw", "value", "title")


def utc_now() -> str:
    """The current time in UTC, to the second, as ISO-8601 text (every timestamp we write)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def fact_label(item: Any, fields: tuple[str, ...] = LABEL_FIELDS, negate: bool = True) -> str:
    """How a fact is shown to people (tables, pages, diffs): its first named field,
    "no …" when its assertion is absent, "(status)" for a diagnosis that is not
    confirmed. ``item`` is an extracted object as a dict or a pydantic model."""
    if isinstance(item, BaseModel):
        item = item.model_dump(mode="json")
    if not isinstance(item, dict):
        return "" if item is None else str(item)
    for key in fields:
        value = item.get(key)
        if value in (None, ""):
            continue
        text = str(value)
        if negate and item.get("assertion") == "absent":
            text = f"no {text}"
        elif negate and key == "name" and item.get("status") not in (None, "confirmed"):
            text = f"{text} ({item['status']})"
        return text
    return ""


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DocumentInfo(_Part):
    id: str | None = None
    path: str | None = None
    sha256: str | None = None
    chars: int | None = None
    encoding: str | None = None  # how the file was decoded
    decode_errors: int | None = None  # bytes that were not valid UTF-8, replaced


class ErrorInfo(_Part):
    kind: str = "error"
    message: str = ""


class Usage(_Part):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider served from its prompt cache
    cache_write_tokens: int = 0  # prompt tokens written to the prompt cache (Responses API)
    reasoning_tokens: int = 0  # completion tokens a reasoning model spent before answering


class GroundingInfo(_Part):
    stats: dict[str, Any] = Field(default_factory=dict)
    rate: float | None = None
    facts: list[dict[str, Any]] = Field(default_factory=list)


class PassInfo(_Part):
    """One pass of a multi-pass extraction (``caseextract.passes``): which unit,
    which range of the document it read, how it ended and what it cost.
    ``status``: ok, resumed (finished in an earlier run, not redone), split
    (answer cut or prompt too long: redone as finer units), failed."""

    unit: str
    chunk: list[int] | None = None
    status: str = "ok"
    attempts: int = 0
    http_requests: int = 0
    usage: Usage = Field(default_factory=Usage)
    latency_s: float | None = None
    error: ErrorInfo | None = None


class ResultRecord(_Part):
    """What one document gave: its extraction (or error), provenance and cost."""

    record_version: int = 0
    document: DocumentInfo = Field(default_factory=DocumentInfo)
    status: str = "failed"
    error: ErrorInfo | None = None
    extraction: dict[str, Any] | None = None
    grounding: GroundingInfo | None = None
    model: str | None = None
    mode: str | None = None
    api: str | None = None  # responses or chat: the endpoint the requests went to
    prompt_set: str | None = None
    prompt_version: str | None = None
    schema_name: str | None = Field(None, alias="schema")
    schema_version: str | None = None
    caseextract_version: str | None = None
    model_returned: str | None = None
    attempts: int = 0
    http_requests: int = 0
    http_retries: int = 0
    usage: Usage = Field(default_factory=Usage)
    latency_s: float | None = None
    finished_at: str | None = None
    last_completion: str | None = None
    batch: dict[str, Any] | None = None  # answered through the Batch API: batches, usage
    passes: list[PassInfo] | None = None  # multi-pass only: every pass, in order

    @property
    def key(self) -> tuple[str, str]:
        """(document id, content hash): what resume matches on."""
        return str(self.document.id), str(self.document.sha256)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def model_name(self) -> str:
        """The model as the server named it, else as it was asked for."""
        return self.model_returned or self.model or "unknown model"

    def _unset_optional(self) -> set[str]:
        """Optional parts left out of the line when absent (as before they existed)."""
        unset = ("last_completion", "batch", "passes", "api")
        return {k for k in unset if getattr(self, k) is None}

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude=self._unset_optional())

    def to_line(self) -> str:
        """One JSONL line (non-ASCII kept as UTF-8)."""
        return self.model_dump_json(by_alias=True, exclude=self._unset_optional()) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultRecord:
        return cls.model_validate(data)
