"""Align evidence quotes to character spans of the original document.

The model writes the quote; this module finds where it stands. Matching goes
from strict to loose and stops at the first hit:

* ``exact``      the quote is a substring of the original text;
* ``normalised`` equal after folding case, whitespace and line breaks, end-of-line
  hyphenation, ligatures, dashes and quote marks (as PDF text needs);
* ``fuzzy``      the best approximate substring scores at least
  ``FUZZY_THRESHOLD`` (rapidfuzz ``partial_ratio`` on the normalised texts);
* ``not_found``  none of the above.

A hit counts only at word boundaries: where the quote begins (ends) with a
letter or digit, the text must not continue that word before (after) it — a
"2" inside "T2" or a "1" inside "1st" is no match. A fuzzy hit is widened to
whole words and scored again.

Spans always index the *original* text (``text[start:end]``), whatever
characters it holds. When a quote occurs several times, the first occurrence at
or after the previous quote of the same fact is taken, else the first in the
document: deterministic, and it keeps a fact's quotes together.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from enum import Enum

from rapidfuzz import fuzz

FUZZY_THRESHOLD = 90.0
_MIN_FUZZY_LEN = 12  # shorter quotes must match exactly or after normalisation

_FOLD = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u00ad": "",
    "\u00b5": "\u03bc",
}


class MatchStatus(str, Enum):
    exact = "exact"
    normalised = "normalised"
    fuzzy = "fuzzy"
    not_found = "not_found"
    uninformative = "uninformative"


@dataclass(frozen=True)
class Alignment:
    quote: str
    status: MatchStatus
    start: int | None = None
    end: int | None = None
    score: float = 0.0
    occurrences: int = 0

    @property
    def grounded(self) -> bool:
        return self.status not in (MatchStatus.not_found, MatchStatus.uninformative)


class NormalisedText:
    """A folded copy of a text with a map from each folded char to its original index."""

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        index: list[int] = []
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            # end-of-line hyphenation: "compres-\nsion" -> "compression"
            if ch in "-\u00ad\u2010" and i + 1 < n and text[i + 1] in "\r\n":
                j = i + 1
                while j < n and text[j].isspace():
                    j += 1
                if j < n and text[j].islower() and chars and chars[-1].isalpha():
                    i = j
                    continue
            if ch.isspace():
                if chars and chars[-1] != " ":
                    chars.append(" ")
                    index.append(i)
                i += 1
                continue
            for out in _FOLD.get(ch, ch).casefold():
                chars.append(out)
                index.append(i)
            i += 1
        if chars and chars[-1] == " ":
            chars.pop()
            index.pop()
        self.text = "".join(chars)
        self.index = index

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span for folded [start, end)."""
        return self.index[start], self.index[end - 1] + 1


def fold(text: str) -> str:
    return NormalisedText(text).text


def _wordish(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces (Thai, kana and
    CJK ideographs do not: any position between two of them is a boundary)."""
    if not ch.isalnum():
        return False
    code = ord(ch)
    return not (
        0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x2E80 <= code <= 0x9FFF  # CJK radicals, kana, ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions
    )


def _bounded(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` neither begins nor ends inside a word."""
    if _wordish(text[start]) and start > 0 and _wordish(text[start - 1]):
        return False
    return not (_wordish(text[end - 1]) and end < len(text) and _wordish(text[end]))


def all_occurrences(haystack: str, needle: str) -> list[int]:
    """Start of every occurrence of ``needle`` at word boundaries."""
    out, pos, n = [], haystack.find(needle), len(needle)
    while pos != -1:
        if _bounded(haystack, pos, pos + n):
            out.append(pos)
        pos = haystack.find(needle, pos + 1)
    return out


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and _wordish(text[start]) and _wordish(text[start - 1]):
        start -= 1
    while end < len(text) and _wordish(text[end - 1]) and _wordish(text[end]):
        end += 1
    return start, end


def _pick(positions: list[int], after: int) -> int:
    later = [p for p in positions if p >= after]
    return later[0] if later else positions[0]


class Aligner:
    """Aligns quotes against one document; build once per document."""

    def __init__(
        self, text: str, fuzzy_threshold: float = FUZZY_THRESHOLD, prompt: str = ""
    ) -> None:
        self.text = text
        self.threshold = fuzzy_threshold
        self.prompt = prompt  # what the model was sent, to name values copied from it
        self._norm: NormalisedText | None = None
        self.words: dict[str, tuple[str, list[int]]] = {}  # cache of caseextract.grounding.values

    @property
    def norm(self) -> NormalisedText:
        if self._norm is None:
            self._norm = NormalisedText(self.text)
        return self._norm

    def align(self, quote: str, after: int = 0) -> Alignment:
        quote = quote.strip()
        if not quote:
            return Alignment(quote, MatchStatus.not_found)
        hits = all_occurrences(self.text, quote)
        if hits:
            start = _pick(hits, after)
            return Alignment(quote, MatchStatus.exact, start, start + len(quote), 100.0, len(hits))
        folded = fold(quote)
        if not folded:
            return Alignment(quote, MatchStatus.not_found)
        norm = self.norm
        hits = all_occurrences(norm.text, folded)
        if hits:
            after_norm = bisect_left(norm.index, after)
            k = _pick(hits, after_norm)
            start, end = norm.span(k, k + len(folded))
            return Alignment(quote, MatchStatus.normalised, start, end, 100.0, len(hits))
        if len(folded) >= _MIN_FUZZY_LEN and norm.text:
            res = fuzz.partial_ratio_alignment(folded, norm.text, score_cutoff=self.threshold)
            if res is not None and res.dest_end > res.dest_start:
                ds, de = _widen(norm.text, res.dest_start, res.dest_end)
                score = fuzz.ratio(folded, norm.text[ds:de].strip())
                if score < self.threshold:
                    return Alignment(quote, MatchStatus.not_found)
                start, end = norm.span(ds, de)
                while start < end and self.text[start].isspace():
                    start += 1
                return Alignment(quote, MatchStatus.fuzzy, start, end, round(score, 1), 1)
        return Alignment(quote, MatchStatus.not_found)
