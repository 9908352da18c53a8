"""The judge's cue tables, read from ``cues.toml`` (beside this module) once.

``cues.toml`` is the one source of truth for the words the evidence judge reads
as negation, normality and contrast, for the words that state a vital sign, an
abbreviation or an adjective's noun, for the abnormality a normal-examination word
denies, and for the degrees that may follow an author's name; its ``[sources]``
table names where each list comes from. Nothing else in ``grounding`` spells such
words. Everything is case-folded; multi-word cues are tuples of words.

* ``PRE_NEGATION`` / ``POST_NEGATION``: NegEx cues before / after a mention
  (``PRE_NEGATION`` includes the ``[contrast]`` cues for ruled-out wording);
* ``NEGATING_PREFIXES`` / ``NEGATING_SUFFIXES``: glued to one word, negate that
  word only ("nontender", "non-invasive", "painless");
* ``NORMAL_CUES``: a quote with one may state an absent finding;
* ``PRE_HEDGE`` / ``POST_HEDGE``: uncertainty cues (ConText) before / after a mention;
* ``EXPANSIONS``: a word also read as other words (signs, abbreviations,
  adjectives both ways, antonyms), used by support;
* ``ANTONYMS``: the word of a normal examination → the abnormalities it denies;
* ``QUALIFIERS``: laterality, specimen, route, severity, course: words a quote must
  not share alone to state a value.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

TABLES = Path(__file__).with_name("cues.toml")


@cache
def tables() -> dict[str, Any]:
    """The parsed ``cues.toml``."""
    with TABLES.open("rb") as fh:
        return tomllib.load(fh)


def _phrases(items: list[str]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(p.casefold().split()) for p in items)


def _expansions(t: dict[str, Any]) -> dict[str, str]:
    out: dict[str, list[str]] = {}

    def add(word: str, reads_as: str) -> None:
        out.setdefault(word.casefold(), []).extend(reads_as.casefold().split())

    for sign, words in t["signs"].items():
        for w in words:
            add(w, sign)
    for word, reads_as in t["abbreviations"].items():
        add(word, reads_as)
    for adjective, noun in t["adjectives"].items():
        add(adjective, noun)
        add(noun, adjective)
    for abnormality, normal_words in t["antonyms"].items():
        for w in normal_words:
            add(w, abnormality)
    return {k: " ".join(dict.fromkeys(v)) for k, v in out.items()}


_T = tables()
PRE_NEGATION = _phrases(_T["negation"]["pre"] + _T["contrast"]["pre"])
POST_NEGATION = _phrases(_T["negation"]["post"])
NORMAL_CUES = _phrases(_T["normality"]["cues"])
CONTRAST = _phrases(_T["contrast"]["pre"])
PRE_HEDGE = _phrases(_T["hedge"]["pre"])
POST_HEDGE = _phrases(_T["hedge"]["post"])
NEGATING_PREFIXES = tuple(_T["negation"]["prefixes"])
NEGATING_SUFFIXES = tuple(_T["negation"]["suffixes"])
SELF_NEGATING = frozenset(_T["negation"]["self_negating"])
TERMINATORS = frozenset(_T["negation"]["terminators"])
SIGNS = {sign: tuple(words) for sign, words in _T["signs"].items()}
EXPANSIONS = _expansions(_T)
ANTONYMS = {
    w.casefold(): abnormality
    for abnormality, normal_words in _T["antonyms"].items()
    for w in normal_words
}
DEGREES = frozenset(_T["degrees"]["words"])
QUALIFIERS = frozenset(_T["qualifiers"]["words"])
SOURCES = dict(_T["sources"])
MIN_BASE = 4  # "painless" → "pain"; shorter bases ("un-less") are not read


def negated_base(word: str) -> str | None:
    """The word a negating prefix or suffix is glued to ("nontender" → "tender",
    "painless" → "pain"), or None."""
    for p in NEGATING_PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= MIN_BASE + 1:
            return word[len(p) :]
    for s in NEGATING_SUFFIXES:
        if word.endswith(s) and len(word) - len(s) >= MIN_BASE:
            return word[: -len(s)]
    return None
