"""Strings that are safe to write and to print.

``encodable`` makes any value UTF-8-encodable: lone surrogates (from file names
that are not valid UTF-8, decoded by Python with ``surrogateescape``, or from a
server's JSON ``"\\udc80"``) become the visible text ``\\udc80``. ``printable``
makes a string safe for a terminal: control characters (escape sequences, new
lines, bidi overrides) are shown escaped instead of acting on the terminal.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def encodable_str(text: str) -> str:
    return _SURROGATE.sub(_escape, text) if _SURROGATE.search(text) else text


def encodable(value: Any) -> Any:
    """``value`` with every string (keys included) made UTF-8-encodable."""
    if isinstance(value, str):
        return encodable_str(value)
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    return value


def printable(text: object) -> str:
    """``text`` for a terminal: control and direction-changing characters escaped."""
    return _UNPRINTABLE.sub(_escape, str(text))
