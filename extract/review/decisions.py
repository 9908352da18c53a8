"""Review files: reviewers' decisions, one JSON object per line, append-only.

A review file sits next to the results it reviews (``results.jsonl`` reviewed by
``ana`` → ``results.ana.review``) and is never rewritten: the results are never
touched either. Its first line is a header naming the results file; every later
line is a :class:`Decision` — who, when, which document and fact path, what
action, and the fact before and after.

Contracts:

* one decision is one ``write`` of one line, flushed and fsynced, under a
  process-wide thread lock and an exclusive ``flock`` on the file, so two browser
  tabs (or two servers) appending at once interleave whole lines and lose none;
* a kill or a full disk mid-write leaves at most one torn last line (no newline,
  perhaps inside a multi-byte character): readers drop it, and the next append
  moves it to ``<review>.damaged`` before writing, so the file stays readable;
* a complete line that is damaged (bad UTF-8, not JSON, not a decision) is set
  aside: skipped, counted and named (line number and reason) in ``problems``,
  never fatal; it stays in the file (which is never rewritten), nothing else is lost.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from caseextract.documents import safe_filename
from caseextract.errors import ConfigError
from caseextract.records import utc_now
from caseextract.store import MAX_NOTES, json_object_line, scan
from pydantic import BaseModel, ConfigDict, Field, ValidationError

REVIEW_VERSION = 1
ACTIONS = ("accept", "reject", "edit", "add")
Action = Literal["accept", "reject", "edit", "add"]
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def review_path(results: Path, reviewer: str) -> Path:
    """Where ``reviewer``'s decisions on ``results`` are kept."""
    return results.with_name(f"{results.stem}.{safe_filename(reviewer)}.review")


class Decision(BaseModel):
    """One reviewer's decision on one fact of one document."""

    model_config = ConfigDict(extra="allow")

    kind: Literal["decision"] = "decision"
    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    reviewer: str
    at: str = Field(default_factory=utc_now)
    document: str
    sha256: str | None = None
    record: str | None = None  # fingerprint of the extraction decided on (session.fingerprint)
    path: str
    action: Action
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    note: str | None = None
    # two-extraction review (review/second.py): where a kept fact came from ("agreed",
    # "a", "b", "edited") and the path of the paired fact in the second extraction
    source: str | None = None
    second: str | None = None

    @property
    def value(self) -> dict[str, Any] | None:
        """The fact's values after this decision (None when rejected)."""
        return (self.after or {}).get("value")


@dataclass
class ReviewLog:
    """What a review file holds: its header and its decisions, in file order."""

    path: Path
    results: Path | None = None
    reviewer: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    skipped_lines: int = 0
    torn_tail: bool = False
    problems: list[str] = field(default_factory=list)  # damaged lines, named (at most 20)

    def for_document(self, doc_id: str) -> list[Decision]:
        return [d for d in self.decisions if d.document == doc_id]


def _lock_for(path: Path) -> threading.Lock:
    key = str(path.resolve())
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


class ReviewFile:
    """Appends decisions to one review file; reads them back."""

    def __init__(self, path: Path, results: Path | None = None, reviewer: str | None = None):
        if path.is_dir():
            raise ConfigError(f"{path} is a folder, not a review file")
        self.path = path
        self.results = results
        self.reviewer = reviewer
        self._lock = _lock_for(path)

    # ---------------------------------------------------------------- reading

    def read(self) -> ReviewLog:
        log = ReviewLog(self.path, reviewer=self.reviewer)
        if not self.path.exists():
            log.results = self.results
            return log
        for number, _raw, data, problem in scan(self.path, json_object_line):
            if problem == "incomplete":
                log.torn_tail = True
            elif data is None or not _take(log, data):
                log.skipped_lines += 1
                if len(log.problems) < MAX_NOTES:
                    why = problem or "not a decision"
                    log.problems.append(f"{self.path} line {number}: {why}; skipped")
        if log.results is None:
            log.results = self.results
        return log

    # ---------------------------------------------------------------- writing

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the file for a read-decide-append sequence (threads and processes)."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a+b") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def append(self, decision: Decision) -> None:
        """Append one decision; call inside :meth:`locked`."""
        with self.path.open("a+b") as fh:
            _cut_torn_tail(fh, self.path.with_name(self.path.name + ".damaged"))
            if fh.tell() == 0:
                fh.write(self._header_line())
            fh.write((decision.model_dump_json(exclude_none=True) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def _header_line(self) -> bytes:
        results = None
        if self.results is not None:
            try:
                results = os.path.relpath(self.results.resolve(), self.path.resolve().parent)
            except ValueError:
                results = str(self.results.resolve())
        head = {
            "kind": "header",
            "review_version": REVIEW_VERSION,
            "results": results,
            "reviewer": self.reviewer,
            "created": utc_now(),
        }
        return (json.dumps(head, ensure_ascii=False) + "\n").encode("utf-8")


def _take(log: ReviewLog, data: dict[str, Any]) -> bool:
    """Take one line's object into ``log``; False when it is neither header nor decision."""
    if data.get("kind") == "header":
        if isinstance(data.get("results"), str) and data["results"]:
            log.results = (log.path.parent / data["results"]).resolve()
        reviewer = data.get("reviewer")
        log.reviewer = log.reviewer or (reviewer if isinstance(reviewer, str) else None)
        return True
    try:
        log.decisions.append(Decision.model_validate(data))
    except (ValidationError, RecursionError):
        return False
    return True


def _cut_torn_tail(fh: Any, aside: Path) -> None:
    """Truncate a last line that a kill left without its newline (kept in ``aside``)."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size == 0:
        return
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return
    # find the last newline; everything after it is the torn line
    pos = size
    chunk = 4096
    while pos > 0:
        start = max(0, pos - chunk)
        fh.seek(start)
        data = fh.read(pos - start)
        nl = data.rfind(b"\n")
        if nl != -1:
            _set_aside(fh, start + nl + 1, size, aside)
            return
        pos = start
    _set_aside(fh, 0, size, aside)


def _set_aside(fh: Any, start: int, end: int, aside: Path) -> None:
    fh.seek(start)
    torn = fh.read(end - start)
    with aside.open("ab") as out:
        out.write(torn + b"\n")
        out.flush()
        os.fsync(out.fileno())
    fh.truncate(start)
    fh.seek(0, os.SEEK_END)


def read_review(path: Path) -> ReviewLog:
    """A review file as it stands; a clear error when it is missing."""
    if not path.is_file():
        raise ConfigError(f"no review file at {path}")
    return ReviewFile(path).read()
