"""Article-level values grounded by themselves: title, journal, year, DOI, PMID, names.

Such values carry no quotes; the value is its own evidence. A model class lists
them in ``__grounded_values__`` (``CaseReport``: ``Article`` title, journal, year,
DOI, PMID; ``Author`` name). Each value is looked up in the source word by word
after the folding of ``grounding.fold`` (case, dashes, quote marks, ligatures,
spacing), ignoring punctuation, at word boundaries; a DOI is looked up without
its ``https://doi.org/`` or ``doi:`` prefix, and a name is also tried with its
last words first ("Chen, Chia-Hui" for "Chia-Hui Chen"), and without the degrees
that follow it ("A. B. Name, MD, FAANEM": the post-nominals of ``cues.DEGREES``), so
a name is found whether or not the model and the page write its degrees. A value of
``MIN_FUZZY_VALUE`` characters or more that is not found so is aligned like a
quote (``Aligner.align``, fuzzy at word boundaries), so a title with a typo is
still found. The result is a
``GroundedFact`` of kind ``value`` whose one alignment is the value's span:
``grounded``; ``from_prompt`` when the value is not in the source but is in the
prompt the model was sent (the prompt's own wrapper sentence as a title); else
``ungrounded``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from caseextract.grounding import cues
from caseextract.grounding.align import Aligner, Alignment, MatchStatus, all_occurrences, fold
from caseextract.grounding.status import FactStatus, GroundedFact
from pydantic import BaseModel

_WORD = re.compile(r"[^\W_]+")
MIN_FUZZY_VALUE = 20  # values this long may also match approximately (as quotes do)
_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", flags=re.IGNORECASE)


def _word_text(aligner: Aligner, which: str) -> tuple[str, list[int]]:
    """``which`` ("source"/"prompt") as folded words joined by spaces, with a map from
    each character to the folded source text (source only); cached on the aligner."""
    if which not in aligner.words:
        if which == "source":
            found = [(m.group(0), m.start()) for m in _WORD.finditer(aligner.norm.text)]
        else:
            found = [(m.group(0), 0) for m in _WORD.finditer(fold(aligner.prompt))]
        chars: list[str] = []
        index: list[int] = []
        for word, at in found:
            if chars:
                chars.append(" ")
                index.append(at)
            chars.extend(word)
            index.extend(range(at, at + len(word)))
        aligner.words[which] = ("".join(chars), index)
    return aligner.words[which]


def find_value(aligner: Aligner, value: str, which: str = "source") -> tuple[int, int] | None:
    """Span in the original text of ``value`` compared word by word (``(0, 0)`` for a hit
    in the prompt), or None."""
    tokens = _WORD.findall(fold(value))
    if not tokens:
        return None
    text, index = _word_text(aligner, which)
    tries = [tokens] + [tokens[k:] + tokens[:k] for k in range(1, min(len(tokens), 4))]
    for t in tries:
        needle = " ".join(t)
        hits = all_occurrences(text, needle)
        if hits:
            if which != "source":
                return 0, 0
            k = hits[0]
            return aligner.norm.span(index[k], index[k + len(needle) - 1] + 1)
    return None


def without_degrees(name: str) -> str:
    """``name`` without the degrees that follow it ("A. B. Name, MD, FAANEM" → "A. B.
    Name"); the name itself when it is all degrees."""
    tokens = _WORD.findall(fold(name))
    k = len(tokens)
    while k > 1 and tokens[k - 1] in cues.DEGREES:
        k -= 1
    if k == len(tokens):
        return name
    # cut the original after its k-th word
    found = list(_WORD.finditer(name))
    return name[: found[k - 1].end()].rstrip(" ,;") if len(found) == len(tokens) else name


def ground_values(path: str, obj: BaseModel, aligner: Aligner) -> Iterator[GroundedFact]:
    """The object's ``__grounded_values__``, each looked up in the source itself."""
    for name in getattr(type(obj), "__grounded_values__", ()):
        value = getattr(obj, name, None)
        if value is None or isinstance(value, bool) or not str(value).strip():
            continue
        text = str(value).strip()
        if name == "doi":
            text = _DOI_PREFIX.sub("", text)
        vpath = f"{path}.{name}" if path else name
        span = find_value(aligner, text)
        if span is None and name == "name" and without_degrees(text) != text:
            span = find_value(aligner, without_degrees(text))
        if span is not None:
            exact = aligner.text[span[0] : span[1]] == text
            status = MatchStatus.exact if exact else MatchStatus.normalised
            yield GroundedFact(vpath, [Alignment(text, status, *span, 100.0, 1)], kind="value")
            continue
        if len(text) >= MIN_FUZZY_VALUE:  # a long title with a typo: the quote aligner's fuzzy
            found = aligner.align(text)
            if found.grounded:
                yield GroundedFact(vpath, [found], kind="value")
                continue
        miss = Alignment(text, MatchStatus.not_found)
        if aligner.prompt and find_value(aligner, text, "prompt") is not None:
            reason = f"{name} {text[:80]!r} is text of the prompt, not of the report"
            yield GroundedFact(vpath, [miss], [], FactStatus.from_prompt, reason, "value")
        else:
            reason = f"{name} {text[:80]!r} is not in the report"
            yield GroundedFact(vpath, [miss], [], FactStatus.ungrounded, reason, "value")
