"""Writing files so that a reader never sees half of one: the one atomic write.

``write_atomic`` writes the new content to a temporary file beside the target (a
name unique to the process and thread, so two writers never share one), flushes
and fsyncs it, gives it the target's mode and owner when the target exists, and
renames it over the target. A reader sees the old file or the new one; a failed
write leaves the old file and removes the temporary one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def replace_keeping_owner(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` over ``dest``, giving it ``dest``'s mode and owner first."""
    try:
        st = dest.stat()
    except FileNotFoundError:
        st = None
    if st is not None:
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        with contextlib.suppress(PermissionError):  # another user's file: mode kept
            os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_file(path: Path, *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A binary file that replaces ``path`` whole when the block ends, or not at all
    (an exception inside the block leaves ``path`` as it was). For content written as
    it streams in (a download); ``write_atomic`` for content at hand."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        with tmp.open("wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        replace_keeping_owner(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes | str, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename."""
    with atomic_file(path, fsync=fsync) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
