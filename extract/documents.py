"""Load case reports from disk: text, Markdown and PDF text layers.

The original text is kept exactly as decoded, because evidence spans index it;
``for_model`` is a tidied copy sent to the model (control characters removed,
runs of blank lines folded). Quotes the model copies from the tidied copy still
align against the original (grounding folds whitespace).
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED = TEXT_SUFFIXES | PDF_SUFFIXES
MAX_BYTES = 5_000_000  # a case report is rarely over 200 kB; 5 MB is an upper bound
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Document:
    id: str
    path: Path
    text: str
    sha256: str
    encoding: str

    @property
    def for_model(self) -> str:
        return tidy(self.text)


def tidy(text: str) -> str:
    """What the model is sent of ``text``: control characters removed, blank runs folded."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def document_id(path: Path) -> str:
    return path.stem


def safe_filename(name: str, limit: int = 120) -> str:
    """A file name from a document id that cannot leave its folder ("../x" → "x")."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "document"
    return cleaned[:limit]


def _decode(data: bytes, path: Path) -> tuple[str, str]:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise InputError(f"{path}: broken UTF-16 text") from None
    head = data[:8192]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > len(head) // 100:
        raise InputError(f"{path}: binary file, not a text report")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Not UTF-8: web pages saved by older tools are mostly Windows-1252. Take that
    # reading only if every byte is defined there, else refuse clearly.
    text = data.decode("cp1252", errors="replace")
    if "\ufffd" in text:
        raise InputError(f"{path}: not valid UTF-8 and not readable as Windows-1252")
    return text, "cp1252"


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise InputError(f"{path}: unreadable PDF ({exc})") from None
    text = "\n\n".join(pages)
    if not text.strip():
        raise InputError(f"{path}: PDF has no text layer ({len(pages)} page(s)); run OCR first")
    return text


def load_document(path: Path) -> Document:
    """Read one report; raises ``InputError`` with a one-line reason when it cannot."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if path.is_dir():
        raise InputError(f"{path}: is a folder")
    if size > MAX_BYTES:
        raise InputError(f"{path}: {size:,} bytes is larger than the {MAX_BYTES:,}-byte limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if path.suffix.lower() in PDF_SUFFIXES or data[:5] == b"%PDF-":
        text, encoding = _pdf_text(path), "pdf"
    else:
        text, encoding = _decode(data, path)
    if not text.strip():
        raise InputError(f"{path}: empty document (no text)")
    return Document(
        id=document_id(path),
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        encoding=encoding,
    )


def discover(inputs: Iterable[str]) -> list[Path]:
    """Expand files, folders (recursively, supported suffixes) and globs; keep order, no repeats.

    A path that does not exist is kept, so that it is reported as a failed document
    rather than silently skipped.
    """
    seen: set[Path] = set()
    out: list[Path] = []

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUPPORTED:
                    add(child)
        elif any(ch in item for ch in "*?[") and not path.exists():
            for match in sorted(glob.glob(item, recursive=True)):
                if Path(match).is_file():
                    add(Path(match))
        else:
            add(path)
    return out
