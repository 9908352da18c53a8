"""Token estimates and overlapping chunks of a document, with offsets into the original.

Contract: ``chunk_ranges(text, size, overlap)`` returns half-open ``(start, end)``
ranges of ``text`` that cover it whole, each at most ``size`` characters, each
overlapping the previous one by about ``overlap`` characters, with boundaries
moved back to a paragraph, sentence or word break when one is near. Chunks are
always slices of the original text, so a quote found in a chunk at ``i`` is at
``start + i`` in the document.

Tokens are estimated as characters / 4 unless a tokenizer is given (the local
llama.cpp server counts with the model's own).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from caseextract.llm.types import CHARS_PER_TOKEN

TokenCounter = Callable[[str], int]
_BREAKS = ("\n\n", ". ", "\n", " ")


def estimate_tokens(text: str, count: TokenCounter | None = None) -> int:
    """Tokens of ``text``: counted when a tokenizer is at hand, else characters / 4."""
    if count is not None:
        return count(text)
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def chars_per_token(text: str, count: TokenCounter | None = None) -> float:
    """Characters per token for this text (measured with ``count`` when given)."""
    if count is None or not text:
        return CHARS_PER_TOKEN
    return max(1.0, len(text) / max(1, count(text)))


def _break_before(text: str, pos: int, floor: int) -> int:
    """The last break at or before ``pos`` (and after ``floor``), else ``pos``."""
    window = max(floor, pos - max(200, (pos - floor) // 5))
    for mark in _BREAKS:
        at = text.rfind(mark, window, pos)
        if at != -1:
            return at + len(mark)
    return pos


def chunk_ranges(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Overlapping ranges of at most ``size`` characters covering ``text``."""
    n = len(text)
    if size <= 0:
        raise ValueError("chunk size must be positive")
    if n <= size:
        return [(0, n)]
    overlap = max(0, min(overlap, size // 2))
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(n, start + size)
        if end < n:
            end = _break_before(text, end, start + size // 2)
        out.append((start, end))
        if end >= n:
            return out
        nxt = _break_before(text, end - overlap, start + 1) if overlap else end
        start = max(start + 1, min(nxt, end))


def halves(start: int, end: int, text: str, overlap: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut in two parts near its middle, overlapping by about ``overlap``."""
    quarter = max(1, (end - start) // 4)
    overlap = max(0, min(overlap, quarter))
    mid = (start + end) // 2 + overlap // 2
    cut = _break_before(text, mid, mid - quarter)
    back = _break_before(text, cut - overlap, cut - overlap - quarter) if overlap else cut
    return [(start, cut), (max(start + 1, min(back, cut)), end)]
