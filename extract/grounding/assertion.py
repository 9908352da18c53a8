"""The assertion check: does a fact's own quote negate what the fact asserts?

NegEx-style (Chapman et al., 2001): a
negation cue (``PRE_NEGATION``) at most ``NEG_WINDOW`` words before a word of the
value, or a post cue (``POST_NEGATION``) at most ``NEG_WINDOW`` words after it,
with no clause break (``TERMINATORS``) between, negates that mention. A fact
asserted present whose every mention in its quotes is negated conflicts; a fact
asserted absent whose quotes hold no negation or normality cue at all conflicts.
Each quote is read with the words that lead up to it in its clause of the source
(``grounding.LEAD_CHARS``), so a quote clipped after "without" is still negated.
Values that carry their own negation ("could not walk", "inability to walk") are
not checked. A class names its assertion field and how its values map to
present/absent with ``__assertion__: ClassVar[tuple[str, dict[str, str]]]``; the
default reads a field ``assertion`` valued ``present``/``absent``. (negspacy and
medspaCy implement NegEx too, but need a spaCy pipeline and its model download;
the cue lists here are small and tested.)
"""

from __future__ import annotations

import re
from enum import Enum

from caseextract.grounding.evidence import deaccent, is_content, stem, stems_match, words
from pydantic import BaseModel

NEG_WINDOW = 5

PRE_NEGATION = (
    "no",
    "non",
    "not",
    "without",
    "denied",
    "denies",
    "deny",
    "denying",
    "negative for",
    "absence of",
    "absent",
    "free of",
    "ruled out",
    "rule out",
    "misdiagnosed with",
    "misdiagnosed as",
    "never",
    "neither",
    "nor",
    "none",
    "no evidence of",
    "no sign of",
    "no signs of",
    "resolution of",
    # how authors set a differential diagnosis aside
    "dismissed",
    "excluded",
    "argue against",
    "argues against",
    "argued against",
)
POST_NEGATION = (
    "absent",
    "was absent",
    "were absent",
    "negative",
    "was negative",
    "were negative",
    "ruled out",
    "was ruled out",
    "were ruled out",
    "excluded",
    "was excluded",
    "not seen",
    "not detected",
    "not found",
    "resolved",
    "disappeared",
    "free",
    "unlikely",
    "was unlikely",
    "is unlikely",
)
NORMAL_CUES = (
    "normal",
    "unremarkable",
    "intact",
    "within normal limits",
    "negative",
    "afebrile",
    "apyrexial",
)
_SELF_NEGATING = frozenset(
    [
        "no",
        "not",
        "non",
        "without",
        "never",
        "none",
        "unable",
        "inability",
        "absent",
        "absence",
        "negative",
        "denied",
        "denies",
        "cannot",
    ]
)
TERMINATORS = frozenset(
    ["but", "however", "although", "though", "yet", "except", "which", "who", "whereas"]
)

_CLAUSE = re.compile(r"[^\W_]+|[.;:!?]")


def _assertion(fact: BaseModel) -> str | None:
    spec = getattr(type(fact), "__assertion__", None) or (
        "assertion",
        {"present": "present", "absent": "absent"},
    )
    name, mapping = spec
    if name not in type(fact).model_fields:
        return None
    value = getattr(fact, name, None)
    value = value.value if isinstance(value, Enum) else value
    return mapping.get(value)


def _has(tokens: list[str], start: int, phrase: tuple[str, ...]) -> bool:
    return tuple(tokens[start : start + len(phrase)]) == phrase


_PRE = [tuple(p.split()) for p in PRE_NEGATION]
_POST = [tuple(p.split()) for p in POST_NEGATION]
_NORMAL = [tuple(p.split()) for p in NORMAL_CUES]


def _negated_at(tokens: list[str], i: int, j: int) -> bool:
    """Whether the mention ``tokens[i:j]`` is negated within its clause."""
    lo = i
    while lo > 0 and i - lo < NEG_WINDOW and tokens[lo - 1] not in TERMINATORS:
        if tokens[lo - 1] in ".;:!?":
            break
        lo -= 1
    if any(_has(tokens, k, p) and k + len(p) <= i for k in range(lo, i) for p in _PRE):
        return True
    hi = j
    while hi < len(tokens) and hi - j < NEG_WINDOW and tokens[hi] not in TERMINATORS:
        if tokens[hi] in ".;:!?":
            break
        hi += 1
    return any(_has(tokens, k, p) and k + len(p) <= hi for k in range(j, hi) for p in _POST)


def assertion_conflict(fact: BaseModel, value: str, quotes: str) -> str | None:
    """A reason when the quotes assert the opposite of the fact, else None."""
    asserted = _assertion(fact)
    if asserted not in ("present", "absent"):
        return None
    value_words = words(value)
    if _SELF_NEGATING & set(value_words):
        return None
    stems = {stem(w) for w in value_words if is_content(w)}
    tokens = [t for t in _CLAUSE.findall(deaccent(quotes).casefold())]
    mentions = [
        k
        for k, t in enumerate(tokens)
        if is_content(t) and any(stems_match(stem(t), s) for s in stems)
    ]
    if asserted == "present":
        if mentions and all(_negated_at(tokens, k, k + 1) for k in mentions):
            return "marked present, but its quotes negate it"
        return None
    cues = _PRE + _POST + _NORMAL
    if not any(_has(tokens, k, p) for k in range(len(tokens)) for p in cues):
        return "marked absent, but its quotes do not negate it"
    return None
