"""Result files: an append-only JSONL ledger that survives kills, and CSV views of it.

Each record is one line written with a single ``write`` and flushed, so a crash
leaves at most one partial last line. Opening for resume drops that partial
line and earlier failed records (they are retried) by rewriting the file to a
temporary name and renaming it over the old one, so the file is never seen
half-written. A document is "done" when an ``ok`` record exists for its id and
content hash. One ``ok`` record is kept per document id: when an edited document
(same id, new content) is extracted again, its stale record is dropped (at close,
and again by the next resume if the run was killed before).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError


def record_key(record: dict[str, Any]) -> tuple[str, str]:
    doc = record.get("document", {})
    return str(doc.get("id")), str(doc.get("sha256"))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Valid records of a JSONL file; a partial or corrupt line is skipped."""
    if not path.exists():
        return
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


class ResultWriter:
    """Appends records to a JSONL file; with ``resume`` keeps what is done."""

    def __init__(self, path: Path, resume: bool = True) -> None:
        self.path = path
        self.done: set[tuple[str, str]] = set()
        self._earlier: dict[str, str] = {}  # id → sha256 of the ok records kept on resume
        self._stale = False
        if path.is_dir():
            raise ConfigError(f"{path} is a folder; give a file for the results, e.g. "
                              f"{path / 'results.jsonl'}")  # fmt: skip
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if resume and path.exists():
                self._compact()
            elif path.exists():
                path.unlink()
            self._fh: IO[str] = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write results to {path}: {exc.strerror or exc}") from None

    def _compact(self) -> None:
        """Keep one ok record per document id, the last one: an edited document's new
        record replaces its stale one."""
        records = [r for r in read_records(self.path) if r.get("status") == "ok"]
        last = {record_key(r)[0]: i for i, r in enumerate(records)}
        kept: list[dict[str, Any]] = []
        self.done.clear()
        for i, record in enumerate(records):
            key = record_key(record)
            if last[key[0]] != i or key in self.done:
                continue
            self.done.add(key)
            kept.append(record)
        self._earlier = {record_key(r)[0]: record_key(r)[1] for r in kept}
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for record in kept:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def is_done(self, doc_id: str, sha256: str) -> bool:
        return (doc_id, sha256) in self.done

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        self._fh.write(line)
        self._fh.flush()
        if record.get("status") == "ok":
            key = record_key(record)
            self.done.add(key)
            if self._earlier.get(key[0], key[1]) != key[1]:
                self._stale = True  # an edited document: its earlier record is now stale

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        if self._stale:
            self._compact()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- CSV

_NAME_FIELDS = ("name", "description", "event", "label", "raw", "value")


def _label(item: Any) -> str:
    if isinstance(item, dict):
        for key in _NAME_FIELDS:
            if item.get(key) not in (None, ""):
                text = str(item[key])
                if item.get("assertion") == "absent":
                    text = f"no {text}"
                elif item.get("status") not in (None, "confirmed") and key == "name":
                    text = f"{text} ({item['status']})"
                return text
        return ""
    return str(item)


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
            row[name] = "; ".join(_label(v) for v in value)
            if value and isinstance(value[0], dict):
                row[name + ".count"] = len(value)
        else:
            row[name] = value
    return row


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    doc = record.get("document", {})
    base = {
        "document": doc.get("id"),
        "status": record.get("status"),
        "error": (record.get("error") or {}).get("message"),
        "model": record.get("model"),
        "prompt_version": record.get("prompt_version"),
        "grounding_rate": (record.get("grounding") or {}).get("rate"),
    }
    extraction = record.get("extraction") or {}
    patients = extraction.get("patients")
    if isinstance(patients, list) and patients:
        article = flatten(extraction.get("article") or {}, "article.")
        return [{**base, **article, **flatten(p, "patient.")} for p in patients]
    return [{**base, **flatten(extraction)}]


def write_csv(jsonl: Path, out: Path) -> int:
    rows = [row for record in read_records(jsonl) for row in csv_rows(record)]
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out)
    return len(rows)
