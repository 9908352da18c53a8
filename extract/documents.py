"""Load case reports from disk: text, Markdown and PDF text layers.

The original text is kept exactly as decoded, because evidence spans index it;
``for_model`` is a tidied copy sent to the model (control characters removed,
runs of blank lines folded). Quotes the model copies from the tidied copy still
align against the original (grounding folds whitespace).
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caseextract.errors import InputError

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
    decode_errors: int = 0  # invalid byte sequences replaced by U+FFFD (UTF-8 read)

    @property
    def for_model(self) -> str:
        return tidy(self.text)


def tidy(text: str) -> str:
    """What the model is sent of ``text``: control characters removed, blank runs folded."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def document_id(path: Path) -> str:
    """A lone file's id: its name without the suffix (gold case ids are these)."""
    return path.stem


# What to do with files that are not text, Markdown or PDF, by suffix.
CONVERT_HINTS = {
    ".docx": "a Word file: save it as PDF or plain text (File › Save As), or convert it "
    "with `pandoc FILE.docx -o FILE.md`",
    ".doc": "an old Word file: save it as PDF or plain text (File › Save As)",
    ".odt": "an OpenDocument file: save it as PDF or plain text",
    ".rtf": "a rich-text file: save it as plain text",
    ".html": "a web page: save it as text, or print it to PDF",
    ".htm": "a web page: save it as text, or print it to PDF",
}
_ZIP_MAGIC = b"PK\x03\x04"


def safe_filename(name: str, limit: int = 120) -> str:
    """A file name from a document id that cannot leave its folder ("../x" → "x")."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "document"
    return cleaned[:limit]


def _decode(data: bytes, path: Path) -> tuple[str, str, int]:
    """(text, encoding, replaced sequences)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16", 0
        except UnicodeDecodeError:
            raise InputError(f"{path}: broken UTF-16 text") from None
    head = data[:8192]
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > len(head) // 100:
        raise InputError(f"{path}: binary file, not a text report")
    try:
        return data.decode("utf-8-sig"), "utf-8", 0
    except UnicodeDecodeError:
        pass
    # Mostly UTF-8 with a few bad bytes (a damaged copy): more valid multi-byte
    # characters than bad sequences. Read it as UTF-8, mark what was replaced, and say
    # so in the record, rather than turning every "β" into "Î²" as Windows-1252 would.
    text = data.decode("utf-8-sig", errors="replace")
    bad = text.count("\ufffd") - data.count("\ufffd".encode())
    if len(_MULTIBYTE.findall(text)) > bad:
        return text, "utf-8", bad
    # Not UTF-8: web pages saved by older tools are mostly Windows-1252. Take that
    # reading only if every byte is defined there, else refuse clearly.
    text = data.decode("cp1252", errors="replace")
    if "\ufffd" in text:
        raise InputError(f"{path}: not valid UTF-8 and not readable as Windows-1252")
    return text, "cp1252", 0


_MULTIBYTE = re.compile("[^\x00-\x7f\ufffd]")
_FILE_KINDS = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
}


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message ("FIFO", "socket", ...)."""
    return _FILE_KINDS.get(stat.S_IFMT(mode), "special file")


def _too_large(path: Path, size: str) -> InputError:
    return InputError(f"{path}: {size} bytes is larger than the {MAX_BYTES:,}-byte limit")


def read_limited(path: Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file, at most ``limit``: anything else fails at once.

    The file is opened without blocking (a FIFO named ``x.txt`` would wait for a
    writer forever), checked on the open descriptor (links are followed, then a
    device, FIFO or socket is refused) and read with the limit enforced while
    reading (a file that grows, or says its size is 0 as /proc files do)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: is a folder")
        if not stat.S_ISREG(st.st_mode):
            kind = file_kind(st.st_mode)
            raise InputError(f"{path}: not a regular file ({kind}); only files are read")
        if st.st_size > limit:
            raise _too_large(path, f"{st.st_size:,}")
        os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(path, f"more than {limit:,}")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def _pdf_text(path: Path, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise InputError(f"{path}: unreadable PDF ({exc})") from None
    text = "\n\n".join(pages)
    if not text.strip():
        raise InputError(f"{path}: PDF has no text layer ({len(pages)} page(s)); run OCR first")
    return text


def load_document(path: Path, doc_id: str | None = None) -> Document:
    """Read one report; raises ``InputError`` with a one-line reason when it cannot."""
    data = read_limited(path)
    errors = 0
    hint = CONVERT_HINTS.get(path.suffix.lower())
    if hint and (data[:4] == _ZIP_MAGIC or path.suffix.lower() not in (".html", ".htm")):
        raise InputError(f"{path}: {hint}")
    if path.suffix.lower() in PDF_SUFFIXES or data[:5] == b"%PDF-":
        text, encoding = _pdf_text(path, data), "pdf"
    else:
        text, encoding, errors = _decode(data, path)
    if not text.strip():
        raise InputError(f"{path}: empty document (no text)")
    return Document(
        id=doc_id or document_id(path),
        path=path,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        encoding=encoding,
        decode_errors=errors,
    )


@dataclass
class Batch:
    """What ``discover`` found: documents with unique ids, and the files it passed over."""

    paths: list[Path]
    ids: dict[Path, str]
    skipped: list[Path]  # files in the folders given that are not .txt/.md/.pdf


def discover(inputs: Iterable[str]) -> list[Path]:
    return discover_batch(inputs).paths


def discover_batch(inputs: Iterable[str]) -> Batch:
    """Expand files, folders (recursively, supported suffixes) and globs; keep order, no repeats.

    A path that does not exist is kept, so that it is reported as a failed document
    rather than silently skipped. Files of other kinds inside a folder are listed in
    ``skipped``. Ids are stable and unique: a file given by name (or glob) is its stem,
    a file found in a folder is its path relative to that folder without the suffix
    (``reports/2024/case.txt`` → ``2024/case``); where two files would still share an
    id (``case.txt`` and ``case.md``, or ``a/case.txt`` and ``b/case.txt`` given by
    name) each takes its path as given instead.
    """
    seen: set[Path] = set()
    out: list[Path] = []
    base: dict[Path, str] = {}
    skipped: list[Path] = []

    def add(p: Path, doc_id: str) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
            base[p] = doc_id

    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if not child.is_file():
                    continue
                if child.suffix.lower() in SUPPORTED:
                    add(child, child.relative_to(path).with_suffix("").as_posix())
                elif not child.name.startswith("."):
                    skipped.append(child)
        elif any(ch in item for ch in "*?[") and not path.exists():
            for match in sorted(glob.glob(item, recursive=True)):
                if Path(match).is_file():
                    add(Path(match), Path(match).stem)
        else:
            add(path, document_id(path))
    counts = Counter(base.values())
    ids = {p: (p.as_posix() if counts[i] > 1 else i) for p, i in base.items()}
    return Batch(out, ids, skipped)
