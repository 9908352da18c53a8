"""Result files: an append-only JSONL ledger that survives kills, and CSV views of it.

Contracts:

- **One writer.** ``ResultWriter`` takes an exclusive ``flock`` on a sidecar
  ``<output>.lock`` before it reads or changes anything; a second run on the
  same output is refused with ``OutputBusy`` (the first run's records are never
  touched). Compaction on resume happens only under that lock.
- **Whole lines.** Each record is one line appended with ``os.write`` to a file
  opened ``O_APPEND``; a failed write (full disk) is cut back to the last whole
  line and raises ``OutputError``. A kill leaves at most one partial last line.
- **Resume never crashes on damage.** Opening for resume streams the file line
  by line (never all of it in memory): an incomplete last line is dropped, a
  damaged line (bad UTF-8, not JSON, no document) is moved to
  ``<output>.damaged`` and reported in ``notes`` with its file and line number;
  earlier failed records are dropped (they are retried). The rewritten file
  replaces the old one atomically and keeps its mode and owner.
- **Every record is writable.** Lone surrogates are escaped, known secrets
  redacted; a record that still cannot be serialised is replaced by a failed
  record for that document only.
- **The path.** A symlinked output is followed (the link stays, its target is
  written); an output that is not a regular file (device, FIFO, socket) is refused.

A document is "done" when an ``ok`` record exists for its id and content hash;
``failed`` and ``empty`` records (a valid answer with too few facts) are dropped
on resume and their documents asked again. One ``ok`` record is kept per document
id: when an edited document (same id, new content) is extracted again, its stale
record is dropped (at close, under the lock, and again by the next resume if the
run was killed before).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from caseextract.documents import file_kind
from caseextract.errors import OutputBusy, OutputError
from caseextract.fileio import replace_keeping_owner, write_atomic
from caseextract.records import ResultRecord, fact_label
from caseextract.redaction import redact
from caseextract.safetext import encodable
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

MAX_NOTES = 20  # damaged lines named one by one; beyond that, counted


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    doc = record.get("document") or {}
    return str(doc.get("id")), str(doc.get("sha256"))


def json_object_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """A complete JSONL line → (object, "") or (None, what is wrong with it).

    The one reader of JSONL lines: results, review decisions, batch output files."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {exc.start + 1})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg}, column {exc.colno})"
    except RecursionError:
        return None, "not readable JSON (nested too deeply)"
    if not isinstance(record, dict):
        return None, "not a record (a JSON object was expected)"
    return record, ""


def parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """A complete results line → (record, "") or (None, what is wrong with it)."""
    record, problem = json_object_line(raw)
    if record is None:
        return None, problem
    doc = record.get("document")
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return None, "no document (no id to resume by)"
    return record, ""


Parser = Callable[[bytes], tuple[dict[str, Any] | None, str]]


def scan(
    path: Path, parse: Parser = parse_line, max_line: int | None = None
) -> Iterator[tuple[int, bytes, dict[str, Any] | None, str]]:
    """(line number, raw bytes, record or None, problem) for each line, streamed.

    An incomplete last line (no newline) is reported as ``"incomplete"``. With
    ``max_line``, a longer line is read past in chunks (never held whole) and
    reported with its first ``max_line`` bytes as too long."""
    with path.open("rb") as fh:
        number = 0
        while raw := fh.readline(-1 if max_line is None else max_line + 1):
            number += 1
            if max_line is not None and len(raw) > max_line and not raw.endswith(b"\n"):
                while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass
                yield number, raw[:max_line], None, f"longer than {max_line:,} bytes"
                continue
            if not raw.endswith(b"\n"):
                yield number, raw, None, "incomplete"
                return
            record, problem = parse(raw)
            yield number, raw, record, problem


def read_records(path: Path) -> Iterator[ResultRecord]:
    """The records of a JSONL file, typed and streamed; partial or damaged lines are skipped."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            try:
                data = json.loads(raw.decode("utf-8"))
                if isinstance(data, dict):
                    yield ResultRecord.from_json(data)
            except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
                continue


def encode_record(record: dict[str, Any]) -> bytes:
    """One JSONL line, UTF-8, secrets redacted; lone surrogates escaped."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = json.dumps(encodable(record), ensure_ascii=False).encode("utf-8")
    if b"\n" in data[:-1]:  # never: json.dumps escapes new lines; kept as a guard
        raise ValueError("record spans lines")
    return redact(data.decode("utf-8")).encode("utf-8") + b"\n"


def _unwritable(record: dict[str, Any], exc: Exception) -> dict[str, Any]:
    doc = record.get("document") if isinstance(record.get("document"), dict) else {}
    return {
        "document": encodable({k: v for k, v in doc.items() if isinstance(v, str | int)}),
        "status": "failed",
        "error": {"kind": "output", "message": f"record could not be written: {exc}"},
        "extraction": None,
    }


def resolve_output(path: Path) -> Path:
    """The file to write for ``path``: links followed; a non-regular file refused."""
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputError(f"cannot use {path} for results: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(
            f"{path} is a folder; give a file for the results, e.g. {path / 'results.jsonl'}"
        )
    if not stat.S_ISREG(st.st_mode):
        kind = file_kind(st.st_mode)
        raise OutputError(f"{path} is not a regular file ({kind}); give a file path for -o")
    return target


class OutputLock:
    """An exclusive ``flock`` on the sidecar ``<output>.lock``, removed when released.

    The one lock of an output file: ``run`` (``ResultWriter``) and every ``batch``
    command that changes the results or their state take it; a second process is
    refused with ``OutputBusy``."""

    def __init__(self, output: Path) -> None:
        target = resolve_output(output)
        target.parent.mkdir(parents=True, exist_ok=True)
        path = self.path = target.with_name(target.name + ".lock")
        shown = output
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                os.close(fd)
                raise OutputBusy(
                    f"{shown} is in use by another caseextract run (pid {holder}); wait for "
                    f"it to finish, or write to another file with -o"
                ) from None
            try:  # the holder before us may have removed the file we opened
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class ResultWriter:
    """Appends records to a JSONL file; with ``resume`` keeps what is done."""

    def __init__(self, path: Path, resume: bool = True) -> None:
        self.path = path
        self.done: set[tuple[str, str]] = set()
        self.notes: list[str] = []  # what resume found and did, for the user
        target = resolve_output(path)
        self._target = target
        self._earlier: dict[str, str] = {}  # id → sha256 of the ok records kept on resume
        self._stale = False
        try:
            self._lock = OutputLock(path)
        except OSError as exc:
            raise OutputError(f"cannot write results to {path}: {exc.strerror or exc}") from None
        try:
            target = self._target = resolve_output(path)  # again, under the lock
            if resume and target.exists():
                self._compact(target)
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (0 if resume else os.O_TRUNC)
            self._fd = os.open(target, flags, 0o666)
        except OSError as exc:
            self._lock.release()
            raise OutputError(f"cannot write results to {path}: {exc.strerror or exc}") from None
        except BaseException:
            self._lock.release()
            raise
        self.written = 0

    def _compact(self, target: Path, keep_failed: bool = False) -> None:
        """Keep the ok records, one per document id (the last: an edited document's new
        record replaces its stale one), and with ``keep_failed`` this run's other
        records; set damaged lines aside; stream, twice."""
        last: dict[str, int] = {}
        for number, _raw, record, _problem in scan(target):
            if record is not None and record.get("status") == "ok":
                last[record_key(record)[0]] = number
        tmp = target.with_name(target.name + ".tmp")
        damaged_path = target.with_name(target.name + ".damaged")
        damaged: list[tuple[int, bytes, str]] = []
        self.done.clear()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            for number, raw, record, problem in scan(target):
                if record is None:
                    damaged.append((number, raw, problem))
                    continue
                key = record_key(record)
                ok = record.get("status") == "ok"
                if ok and last.get(key[0]) == number and key not in self.done:
                    self.done.add(key)
                    out.write(raw)
                elif keep_failed and not ok:
                    out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        self._earlier = dict(self.done)
        if damaged:
            with damaged_path.open("ab") as fh:
                os.chmod(damaged_path, stat.S_IMODE(target.stat().st_mode))
                for _, raw, _ in damaged:
                    fh.write(raw)
        replace_keeping_owner(tmp, target)
        for number, raw, problem in damaged[:MAX_NOTES]:
            if problem == "incomplete":
                self.notes.append(
                    f"{self.path} line {number}: dropped an incomplete last line ({len(raw)} "
                    f"bytes; a run stopped while writing it); kept in {damaged_path}"
                )
            else:
                self.notes.append(
                    f"{self.path} line {number}: damaged, {problem}; moved to {damaged_path}"
                )
        if len(damaged) > MAX_NOTES:
            self.notes.append(f"… and {len(damaged) - MAX_NOTES} more damaged lines")

    def is_done(self, doc_id: str, sha256: str) -> bool:
        return (doc_id, sha256) in self.done

    def write(self, record: ResultRecord) -> None:
        try:
            data = encode_record(record.to_json())
        except (TypeError, ValueError, RecursionError, PydanticSerializationError) as exc:
            document = {"document": record.document.model_dump()}
            record = ResultRecord.from_json(_unwritable(document, exc))
            data = encode_record(record.to_json())
        start = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)  # no partial line stays behind
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            raise OutputError(
                f"cannot write results to {self.path}: {reason}; {self.written} record(s) "
                f"were saved; make room and rerun the same command to resume"
            ) from None
        self.written += 1
        if record.ok:
            doc_id, sha = record.key
            self.done.add(record.key)
            if self._earlier.get(doc_id, sha) != sha:
                self._stale = True  # an edited document: its earlier record is now stale

    def close(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            try:
                if self._stale:  # still under the lock: no other writer can be live
                    self._compact(self._target, keep_failed=True)
            finally:
                self._lock.release()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- CSV


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Spreadsheet columns: scalars as they are, objects by dotted path, lists joined."""
    row: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "evidence":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flatten(value, name + "."))
        elif isinstance(value, list):
            row[name] = "; ".join(fact_label(v) for v in value)
            if value and isinstance(value[0], dict):
                row[name + ".count"] = len(value)
        else:
            row[name] = value
    return row


def csv_rows(record: ResultRecord) -> list[dict[str, Any]]:
    base = {
        "document": record.document.id,
        "status": record.status,
        "error": record.error.message if record.error else None,
        "model": record.model,
        "prompt_version": record.prompt_version,
        "grounding_rate": record.grounding.rate if record.grounding else None,
    }
    extraction = record.extraction or {}
    patients = extraction.get("patients")
    if isinstance(patients, list) and patients:
        article = flatten(extraction.get("article") or {}, "article.")
        return [{**base, **article, **flatten(p, "patient.")} for p in patients]
    return [{**base, **flatten(extraction)}]


# OWASP, CSV Injection (https://owasp.org/www-community/attacks/CSV_Injection): a cell
# that begins with one of these is read as a formula by spreadsheets
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet reads as text: a string that starts a formula gets a leading
    ``'`` (OWASP's advice); numbers and other values are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_text(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """The one CSV writer of the project: a header, every row, every cell through
    ``csv_cell`` and quoted (OWASP: each cell wrapped in double quotes)."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return buf.getvalue()


def write_csv_file(
    path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None
) -> None:
    """``csv_text`` written atomically to ``path`` (a link followed, a special file refused)."""
    write_atomic(resolve_output(path), csv_text(rows, columns).encode("utf-8"))


def write_csv(jsonl: Path, out: Path) -> int:
    rows = [row for record in read_records(jsonl) for row in csv_rows(record)]
    write_csv_file(out, rows)
    return len(rows)
