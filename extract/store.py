"""Result files: an append-only JSONL ledger that survives kills, and CSV views of it.

Each record is one line written with a single ``write`` and flushed, so a crash
leaves at most one partial last line. Opening for resume drops that partial
line and earlier failed records (they are retried) by rewriting the file to a
temporary name and renaming it over the old one, so the file is never seen
half-written. A document is "done" when an ``ok`` record exists for its id and
content hash; ``failed`` and ``empty`` records (a valid answer with too few
facts) are dropped on resume and their documents asked again.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from .errors import ConfigError
from .records import ResultRecord, fact_label


def read_records(path: Path) -> Iterator[ResultRecord]:
    """Valid records of a JSONL file; a partial or corrupt line is skipped."""
    if not path.exists():
        return
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break
            try:
                data = json.loads(line)
                if isinstance(data, dict):
                    yield ResultRecord.from_json(data)
            except (json.JSONDecodeError, ValidationError):
                continue


class ResultWriter:
    """Appends records to a JSONL file; with ``resume`` keeps what is done."""

    def __init__(self, path: Path, resume: bool = True) -> None:
        self.path = path
        self.done: set[tuple[str, str]] = set()
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
        kept: list[ResultRecord] = []
        for record in read_records(self.path):
            if record.ok and record.key not in self.done:
                self.done.add(record.key)
                kept.append(record)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for record in kept:
                fh.write(record.to_line())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def is_done(self, doc_id: str, sha256: str) -> bool:
        return (doc_id, sha256) in self.done

    def write(self, record: ResultRecord) -> None:
        self._fh.write(record.to_line())
        self._fh.flush()
        if record.ok:
            self.done.add(record.key)

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

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
