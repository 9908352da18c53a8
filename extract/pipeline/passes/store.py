"""Finished passes of multi-pass extractions, kept so that a resumed run does not redo them.

A sidecar folder beside the results file (``results.jsonl.passes/``) holds one
JSON file per finished pass, under a folder per document (id and content hash),
removed once the document's record is made. A pass is found again
only for the same document id and content hash, prompt version (single-pass and
pass templates), response model and version, model, mode and answer limit, and
unit (kind, fields, roster entry, document range): any change makes a new key.
Files are written atomically (``fileio.write_atomic``), so a kill never leaves half
of one; a file that cannot be used counts as absent and the pass is redone: not
readable, not UTF-8 or JSON, nested too deeply, over ``MAX_PASS_BYTES``, not an
object for this unit, or not a regular file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from caseextract.documents import read_limited, safe_filename
from caseextract.errors import InputError
from caseextract.fileio import write_atomic

MAX_PASS_BYTES = 20_000_000  # one pass's answer and its stats; answers run to ~25 kB


class PassStore:
    def __init__(self, folder: Path | None, sha256: str, scope: dict[str, Any]) -> None:
        """``scope``: what the document's passes depend on besides the unit."""
        self.folder = folder
        self.sha256 = sha256
        self.scope = json.dumps(scope, sort_keys=True, ensure_ascii=False)

    def _doc_folder(self, doc_id: str, sha256: str) -> Path | None:
        if self.folder is None:
            return None
        return self.folder / f"{safe_filename(doc_id, 100)}-{sha256[:12]}"

    def _path(self, doc_id: str, unit_key: str) -> Path | None:
        folder = self._doc_folder(doc_id, self.sha256)
        if folder is None:
            return None
        digest = hashlib.sha256(f"{self.scope}\n{unit_key}".encode()).hexdigest()[:32]
        return folder / f"{digest}.json"

    def forget(self, doc_id: str, sha256: str) -> None:
        """Drop a document's finished passes (its record now holds what they gave)."""
        folder = self._doc_folder(doc_id, sha256)
        if folder is not None and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # only when no other document has passes kept

    def get(self, doc_id: str, unit_key: str) -> dict[str, Any] | None:
        path = self._path(doc_id, unit_key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(read_limited(path, MAX_PASS_BYTES).decode("utf-8"))
        except (InputError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            return None
        if not isinstance(data, dict) or data.get("unit") != unit_key:
            return None
        return data if isinstance(data.get("value"), dict) else None

    def put(self, doc_id: str, unit_key: str, data: dict[str, Any]) -> None:
        path = self._path(doc_id, unit_key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"unit": unit_key, **data}, ensure_ascii=False))
