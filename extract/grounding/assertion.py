"""The assertion check: does a fact's own quote negate what the fact asserts?

NegEx-style (Chapman et al., 2001): a negation cue (``PRE_NEGATION``, with the
contrast cues for ruled-out wording: "rather than", "differentiated from", "lack
of") at most ``NEG_WINDOW`` words before a word of the value, or a post cue
(``POST_NEGATION``) at most ``NEG_WINDOW`` words after it, with no clause break
(``TERMINATORS``) between, negates that mention. A negating prefix or suffix glued
to a word negates that word only ("nontender", "painless"; "Non-invasive blood
pressure" does not negate the blood pressure), and a normal-examination word
negates the abnormality it denies ("symmetric" for asymmetry, "negative" for a
positive result). A fact asserted present conflicts when every mention of its
value in its quotes is negated, when a word of its value is only ever written
negated in itself, or when every mention is hedged (ConText uncertainty cues:
"suspicion of", "tentative", "mimicking" — a hedged statement is "possible"). A
measured result (``result_conflict``) is read the same way: "growth of X" against
"showed no growth". A fact asserted absent conflicts when its quotes hold no
negation, contrast or normality cue at all (``NORMAL_CUES``: "intact", "symmetric",
"stable", "uneventful", "soft", "clear" …). Every cue is data in
``grounding/cues.toml`` (read by ``grounding.cues``, each list with its source).
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

from caseextract.grounding import cues
from caseextract.grounding.evidence import deaccent, is_content, stem, stems_match, words
from pydantic import BaseModel

NEG_WINDOW = 5

# the cue tables are data (``grounding.cues``, cues.toml); these names are kept for readers
PRE_NEGATION = cues.PRE_NEGATION
POST_NEGATION = cues.POST_NEGATION
NORMAL_CUES = cues.NORMAL_CUES
TERMINATORS = cues.TERMINATORS
_SELF_NEGATING = cues.SELF_NEGATING

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


_PRE = [p for p in PRE_NEGATION if p not in {(x,) for x in cues.NEGATING_PREFIXES}]
_POST = list(POST_NEGATION)
_NORMAL = list(NORMAL_CUES)


def _negated_at(
    tokens: list[str], i: int, j: int, pre: list | None = None, post: list | None = None
) -> bool:
    """Whether the mention ``tokens[i:j]`` is negated (or, given other cues, hedged)
    within its clause."""
    pre = _PRE if pre is None else pre
    post = _POST if post is None else post
    lo = i
    while lo > 0 and i - lo < NEG_WINDOW and tokens[lo - 1] not in TERMINATORS:
        if tokens[lo - 1] in ".;:!?":
            break
        lo -= 1
    if any(_has(tokens, k, p) and k + len(p) <= i for k in range(lo, i) for p in pre):
        return True
    hi = j
    while hi < len(tokens) and hi - j < NEG_WINDOW and tokens[hi] not in TERMINATORS:
        if tokens[hi] in ".;:!?":
            break
        hi += 1
    return any(_has(tokens, k, p) and k + len(p) <= hi for k in range(j, hi) for p in post)


def _prefixed(tokens: list[str], k: int) -> bool:
    """Whether ``tokens[k]`` follows a negating prefix written apart ("non-invasive")."""
    return k > 0 and tokens[k - 1] in cues.NEGATING_PREFIXES


def _mentions(tokens: list[str], stems: set[str]) -> list[tuple[int, bool]]:
    """``(index, negated in itself)`` for each token that mentions a value word: by its
    stem, through the word a negating prefix or suffix is glued to ("painless" for
    pain), or as the normal-examination word that denies it ("symmetric" for asymmetry)."""

    def hits(word: str) -> bool:
        return is_content(word) and any(stems_match(stem(word), s) for s in stems)

    out = []
    for k, t in enumerate(tokens):
        base = cues.negated_base(t)
        if hits(t):
            out.append((k, _prefixed(tokens, k)))
        elif (base and hits(base)) or (t in cues.ANTONYMS and hits(cues.ANTONYMS[t])):
            out.append((k, True))
    return out


def _has_cue(tokens: list[str]) -> bool:
    """Any negation, contrast or normality cue, or a word negated by what is glued to it."""
    cues_ = _PRE + _POST + _NORMAL
    if any(_has(tokens, k, p) for k in range(len(tokens)) for p in cues_):
        return True
    return any(t in cues.NEGATING_PREFIXES or cues.negated_base(t) for t in tokens)


def _present_conflict(value: str, quotes: str) -> str | None:
    value_words = words(value)
    if _SELF_NEGATING & set(value_words):
        return None
    stems = {stem(w) for w in value_words if is_content(w)}
    tokens = [t for t in _CLAUSE.findall(deaccent(quotes).casefold())]
    mentions = _mentions(tokens, stems)
    if mentions and all(own or _negated_at(tokens, k, k + 1) for k, own in mentions):
        return "its quotes negate it"
    for s in stems:  # a word of the value only ever written negated in itself
        own = [o for k, o in mentions if _mentions([tokens[k]], {s})]
        if own and all(own):
            return "its quotes negate it"
    hedge = (list(cues.PRE_HEDGE), list(cues.POST_HEDGE))
    if mentions and all(_negated_at(tokens, k, k + 1, *hedge) for k, _ in mentions):
        return "its quotes only hedge it (a hedged statement is possible)"
    return None


def result_conflict(result: str, quotes: str) -> str | None:
    """A reason when the quotes negate a test's result as written ("growth of ..."
    against "showed no growth", "positive" against "was negative"), else None."""
    why = _present_conflict(result, quotes)
    return f"its result {result!r} is stated, but {why}" if why else None


def assertion_conflict(fact: BaseModel, value: str, quotes: str) -> str | None:
    """A reason when the quotes assert the opposite of the fact, else None."""
    asserted = _assertion(fact)
    if asserted not in ("present", "absent"):
        return None
    if _SELF_NEGATING & set(words(value)):
        return None
    if asserted == "present":
        why = _present_conflict(value, quotes)
        return f"marked present, but {why}" if why else None
    if not _has_cue(_CLAUSE.findall(deaccent(quotes).casefold())):
        return "marked absent, but its quotes do not negate it"
    return None
