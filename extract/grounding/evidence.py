"""What a quote must carry, and what it must say, before it grounds a fact.

``grounding`` finds *where* a quote stands; this module decides whether the
quote is evidence for the fact it is attached to. The rules are generic over any
response model and read only field names, field types and the class attributes
below.

**Informative** (``informative``). A quote carries content when it holds at least
one *content word*: a run of letters and digits (after case folding) that holds
a letter, is at least two characters long and is not a stop word (``STOP_WORDS``:
English function words, negation cues, and a few words every case report uses,
such as "patient" or "case"). Single characters, bare numbers, stop words and
punctuation ground nothing — unless the quote is exactly one number and the
fact's main value is that same number (a count or a year quoted as "3" or
"2014"); like every quote it must stand in the report at word boundaries, so it
is stated as a number in its own right, not read inside "T2" or "1st". "T2",
"L1", "CT" are content words.

**Main value** (``main_values``). The field(s) a fact's quotes must state. A
model class declares them as ``__main_value__: ClassVar[str | tuple[str, ...] |
None]`` (``None``: no support check; with several fields, one supported field is
enough — an investigation is stated by its name or by its result); otherwise it
is the first of ``MAIN_VALUE_FIELDS`` that the class has as a text or number
field (enum and bool fields are never inferred) and that is set.

**Support** (``support_reason``). A patient label written into a value ("(Case 2)")
is not part of it. A value that writes numbers is unsupported when its quotes write
others and none of its own ("78-year-old" against "An 87-year-old"), unless the
numbers are a detail of a long value (``_mostly_words``); when the quotes write no
number at all, or the numbers are such a detail, the value's words may still support
it, weakly (``"numbers unstated"``). Otherwise it is supported by the fact's own
quotes (all of them joined) when one of these holds:

* they share a content word after case folding, accent folding, the judge's tables
  (``EXPANSIONS`` from ``grounding.cues``: "tachycardic" also reads as "heart rate",
  "pale" as "pallor", "TB" as "tuberculosis", "symmetric" as "asymmetry"; a word
  with a negating prefix or suffix also reads as its base, "nontender" as "tender")
  and light stemming (``stem``: one suffix off a short list); two stems, or two
  words, also match when they begin with the same ``MIN_PREFIX`` or more characters
  covering at least ``PREFIX_SHARE`` of the shorter ("distension" ~ "distended",
  "corneal" ~ "corneas"), or when one is the other's tail of ``MIN_TAIL`` or more
  characters ("polyneuropathy" ~ "neuropathy"). Qualifier words (``cues.QUALIFIERS``:
  laterality, specimen, route, severity, course) never support a value that has
  other words: "topical fluconazole" is not stated by "topical miconazole";
* two content words of ``MIN_FUZZY_WORD`` or more characters score at least
  ``WORD_FUZZY`` (rapidfuzz ``ratio``; a misspelt drug name, "oxacilin"), or, from
  ``MIN_EDIT_WORD`` characters, are ``MAX_EDITS`` edit apart ("diasepam");
* the value is only numbers, short codes with digits ("L1", "T12") and the words that
  qualify numbers (``UNIT_WORDS``: units, "old", "later" …), and the quotes write
  one of its codes, or (without codes) one of its numbers ("87-year-old",
  "2 years", "L1"); otherwise units and codes never count as shared words — a
  value's own words must be stated ("paralysis at L1" is not supported by
  "fracture of L1");
* an acronym on one side spells consecutive words of the other, each word giving
  its first letter and possibly more of its letters in order ("CT" ↔ "computed
  tomography", "RPGN" ↔ "rapidly progressive glomerulonephritis");
* the value matches part of the quotes approximately: rapidfuzz ``partial_ratio``
  of at least ``SUPPORT_FUZZY`` on the folded texts, for values of at least
  ``MIN_FUZZY_VALUE`` characters.

Support found only as ``"fuzzy"`` or ``"numbers unstated"`` (``WEAK_REASONS``) is
weak: the fact is grounded and flagged for review, never re-asked. A measured result
whose numbers the quotes contradict (``numbers_contradict``) makes the fact
unsupported even when its name is stated. A quote that is a DOI is informative.

**Assertion**: whether a quote negates what the fact asserts is checked in
``caseextract.grounding.assertion`` (NegEx-style), with the words defined here.

**Empty** (``empty_reason``). A record is empty when it has fewer evidence facts
than the model's ``__min_facts__`` (default 1), or when a field listed in its
``__nonempty__`` is empty (``CaseReport``: ``("patients",)``). A model with no
``evidence`` field anywhere is empty when none of its fields is set.
"""

from __future__ import annotations

import re
import types
import unicodedata
from collections.abc import Iterator
from enum import Enum
from functools import lru_cache
from typing import Any, Union, get_args, get_origin

from caseextract.grounding import cues
from caseextract.normalize import UNIT_ALIASES, WORD_NUMBERS, numbers_in
from pydantic import BaseModel
from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

MAIN_VALUE_FIELDS = (
    "name",
    "description",
    "event",
    "result",
    "shows",
    "title",
    "raw",
    "value",
    "label",
)
MIN_PREFIX = 5
PREFIX_SHARE = 0.75
MIN_FUZZY_WORD = 6
WORD_FUZZY = 88.0
SUPPORT_FUZZY = 90.0
MIN_FUZZY_VALUE = 6

_FUNCTION_WORDS = """
a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from
further had has have having he her here hers herself him himself his how i if in into is it
its itself just may me might more most must my myself of off on once only or other our ours
out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up upon very via was we were what
when where which while who whom why will with would you your yours also thus therefore
however although though yet whether within without per vs et al etc
"""
_NEGATION_WORDS = "no not non nor neither never none denied denies deny denying absent negative"
_REPORT_WORDS = "patient patients case cases report reports reported presented presenting"
STOP_WORDS = frozenset((_FUNCTION_WORDS + _NEGATION_WORDS + " " + _REPORT_WORDS).split())
# words that only qualify a number: they support nothing by themselves ("2 days" does not
# state "paralysis 2 days after"); a value made of numbers and these is supported by numbers
UNIT_WORDS = frozenset(
    set(UNIT_ALIASES)
    | {w for w in WORD_NUMBERS if len(w) > 2}
    | {"old", "later", "ago", "aged", "age", "mg", "kg", "ml", "mcg", "cm", "mm", "times"}
)

# words that state a value in other words (signs, abbreviations, adjectives, antonyms):
# the judge's tables in ``grounding.cues`` (cues.toml), read as the words they expand to
EXPANSIONS = cues.EXPANSIONS
# support found only through these is weak: the fact is grounded but flagged for review
WEAK_REASONS = frozenset({"fuzzy", "numbers unstated"})
MAX_EDITS = 1  # a misspelt word ("diasepam") of MIN_EDIT_WORD characters or more
MIN_EDIT_WORD = 7
MIN_TAIL = 8  # a compound's tail that states it: "polyneuropathy" by "neuropathy"
MIN_SHARED_WORDS = 3  # a long value's own words the quotes must state when its numbers differ
_DOI = re.compile(r"^\s*(?:doi:?\s*|https?://(?:dx\.)?doi\.org/)?10\.\d{4,9}/\S+\s*$", re.I)
# a patient's label written into a value ("... (Case 2)"): not part of what it states
_PATIENT_LABEL = re.compile(r"\(?\b(?:case|patient|pt)\.?\s*(?:no\.?\s*)?\d+\b\)?", re.I)
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")
_SUFFIXES = (
    "ations",
    "ation",
    "ities",
    "ness",
    "ments",
    "ment",
    "ings",
    "ing",
    "ity",
    "ies",
    "ied",
    "ous",
    "ful",
    "ive",
    "age",
    "es",
    "ed",
    "al",
    "ic",
    "ly",
    "s",
    "y",
    "e",
)


def quotes_in(value: Any) -> list[str]:
    """Every quote of a JSON answer: the strings of each ``evidence`` list, anywhere in
    it, an object's own quotes before those of what it holds."""
    if isinstance(value, list):
        return [q for v in value for q in quotes_in(v)]
    if isinstance(value, dict):
        own = [q for q in value.get("evidence") or [] if isinstance(q, str)]
        return own + [q for k, v in value.items() if k != "evidence" for q in quotes_in(v)]
    return []


@lru_cache(maxsize=16384)
def deaccent(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Light stemming: one common suffix off, the stem kept at three letters or more."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def words(text: str) -> list[str]:
    """Case- and accent-folded runs of letters and digits."""
    return _WORD.findall(deaccent(text).casefold())


def is_content(word: str) -> bool:
    return len(word) >= 2 and any(c.isalpha() for c in word) and word not in STOP_WORDS


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if is_content(w)]


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def informative(quote: str, value: Any = None) -> bool:
    """Whether ``quote`` carries content (see the module docstring)."""
    if content_words(quote) or _DOI.match(quote):
        return True
    tokens = words(quote)
    if len(tokens) == 1 and _NUMBER.match(tokens[0]) and value is not None:
        return numbers_in(tokens[0]) == numbers_in(_as_text(value)) and not content_words(
            _as_text(value)
        )
    return False


# ----------------------------------------------------------------- main value


def _text_like(annotation: Any) -> bool:
    if annotation in (str, int, float):
        return True
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_text_like(a) for a in args)
    if origin is not None and getattr(annotation, "__metadata__", None) is not None:
        return _text_like(get_args(annotation)[0])
    return False


@lru_cache(maxsize=256)
def main_value_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """The declared or inferred main value field(s) of a fact class."""
    if "__main_value__" in dir(cls):
        declared = cls.__main_value__
        if declared is None:
            return ()
        return (declared,) if isinstance(declared, str) else tuple(declared)
    for name in MAIN_VALUE_FIELDS:
        info = cls.model_fields.get(name)
        if info is None:
            continue
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, Enum | bool):
            continue
        if _text_like(ann):
            return (name,)
    return ()


def main_values(fact: BaseModel) -> list[tuple[str, str]]:
    """``(field, value as text)`` for each of the fact's main values that is set."""
    out = []
    for name in main_value_fields(type(fact)):
        value = getattr(fact, name, None)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str) and not value.strip():
            continue
        out.append((name, _as_text(value)))
    return out


# -------------------------------------------------------------------- support


def stems_match(a: str, b: str) -> bool:
    if a == b:
        return True
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n >= MIN_PREFIX and n >= PREFIX_SHARE * min(len(a), len(b))


def _spells(word: str, run: list[str]) -> bool:
    """Whether ``word`` is an acronym of ``run``: each word gives its first letter,
    and possibly more of its letters in order, and all of ``word`` is used."""
    if not run:
        return not word
    if not word or word[0] != run[0][0]:
        return False
    rest, token = word[1:], run[0][1:]
    # letters taken from inside this word, then the next word starts
    for k in range(len(rest) + 1):
        taken, pos, ok = rest[:k], 0, True
        for ch in taken:
            pos = token.find(ch, pos) + 1
            if pos == 0:
                ok = False
                break
        if ok and _spells(rest[k:], run[1:]):
            return True
    return False


def _acronym_of(tokens: list[str], word: str) -> bool:
    n = len(word)
    if not (2 <= n <= 6 and word.isalpha()):
        return False
    return any(
        _spells(word, tokens[i : i + size])
        for size in range(2, n + 1)
        for i in range(len(tokens) - size + 1)
        if tokens[i][0] == word[0]
    )


def _expand(ws: list[str]) -> list[str]:
    """The words, each followed by what it also reads as (``EXPANSIONS``) and by the
    word a negating prefix or suffix is glued to ("nontender" → "tender")."""
    out = list(ws)
    for w in ws:
        base = cues.negated_base(w)
        for x in (w, base) if base else (w,):
            if x != w:
                out.append(x)
            if x in EXPANSIONS:
                out.extend(EXPANSIONS[x].split())
    return out


def _tail_of(a: str, b: str) -> bool:
    """One word is the other with a prefix ("polyneuropathy" ~ "neuropathy"), the shorter
    of ``MIN_TAIL`` characters or more."""
    short, long_ = sorted((a, b), key=len)
    return len(short) >= MIN_TAIL and long_ != short and long_.endswith(short)


def _close(a: str, b: str) -> bool:
    """One misspelling apart: ``ratio`` of at least ``WORD_FUZZY`` or ``MAX_EDITS``
    edits between words of ``MIN_EDIT_WORD`` characters or more."""
    if fuzz.ratio(a, b) >= WORD_FUZZY:
        return True
    return min(len(a), len(b)) >= MIN_EDIT_WORD and Levenshtein.distance(a, b) <= MAX_EDITS


def _strong(word: str) -> bool:
    """A word that states something by itself: not a unit, not a short code with digits
    such as a level ("L1", "T12") or an ordinal ("1st"); "H1N1" is strong."""
    return word not in UNIT_WORDS and (len(word) > 3 or not any(c.isdigit() for c in word))


def _mostly_words(value: str, quotes: str) -> bool:
    """A long value whose numbers are a detail: at most a third of its words are
    numbers and the quotes state ``MIN_SHARED_WORDS`` of its own words or more (a
    caption title quoted for a figure whose ``shows`` adds a dose)."""
    tokens = [w for w in words(value) if w not in STOP_WORDS]
    numbers = [w for w in tokens if _NUMBER.match(w)]
    strong = {stem(w) for w in content_words(value) if _strong(w)}
    quoted = {stem(w) for w in _expand(content_words(quotes))}
    return 3 * len(numbers) <= len(tokens) and len(strong & quoted) >= MIN_SHARED_WORDS


def numbers_contradict(value: str, quotes: str) -> bool:
    """Whether ``value`` writes numbers and its quotes write others, none of its own
    ("10 ng/mL" against "was 1.76 ng/mL"), unless its numbers are a detail of a long
    value (``_mostly_words``). Such a main value makes the fact unsupported even when
    another of its main values is stated."""
    value = _PATIENT_LABEL.sub(" ", value).strip() or value
    v_numbers, q_numbers = numbers_in(value), numbers_in(quotes)
    return bool(v_numbers and q_numbers and not v_numbers & q_numbers) and not _mostly_words(
        value, quotes
    )


def support_reason(value: str, quotes: str, numbers: bool = True) -> str | None:
    """How ``quotes`` support ``value`` ("words", "numbers", "acronym", "fuzzy",
    "numbers unstated"), or None; ``numbers=False`` leaves the numbers unchecked."""
    value = _PATIENT_LABEL.sub(" ", value).strip() or value
    v_numbers = numbers_in(value)
    if numbers and v_numbers and not v_numbers & numbers_in(quotes):
        if numbers_in(quotes) and not _mostly_words(value, quotes):
            return None  # no number the quotes write: "78-year-old" vs "An 87-year-old"
        # the quotes write none of its numbers, but their words may state it, weakly
        reason = support_reason(value, quotes, numbers=False)
        return "numbers unstated" if reason in ("words", "acronym") else None
    v_content = _expand(content_words(value))
    q_words = _expand(content_words(quotes))
    v_words = [w for w in v_content if _strong(w)]
    if not v_words:  # numbers, units and codes only: "87-year-old", "2 years", "L1"
        codes = [w for w in v_content if w not in UNIT_WORDS]
        if codes:
            return "words" if set(codes) & set(q_words) else None
        return "numbers" if v_numbers else None
    q_stems = {stem(w) for w in q_words}
    named = [w for w in v_words if w not in cues.QUALIFIERS]
    v_words = named or v_words  # "serum lipase" must be stated by "lipase"
    for w in v_words:
        s = stem(w)
        if s in q_stems or any(stems_match(s, q) for q in q_stems):
            return "words"
        if any(stems_match(w, q) or _tail_of(w, q) for q in q_words):  # "corneal" ~ "corneas"
            return "words"
    long_q = [w for w in q_words if len(w) >= MIN_FUZZY_WORD]
    for w in v_words:
        if len(w) >= MIN_FUZZY_WORD and any(_close(w, q) for q in long_q):
            return "fuzzy"
    q_all = [w for w in words(quotes) if w not in STOP_WORDS]
    v_all = [w for w in words(value) if w not in STOP_WORDS]
    if any(_acronym_of(q_all, w) for w in set(v_words)) or any(
        _acronym_of(v_all, w) for w in set(q_words)
    ):
        return "acronym"
    folded_value = " ".join(words(value))
    if len(folded_value) >= MIN_FUZZY_VALUE and (
        fuzz.partial_ratio(folded_value, " ".join(words(quotes))) >= SUPPORT_FUZZY
    ):
        return "fuzzy"
    return None


# ---------------------------------------------------------------------- empty


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in get_args(annotation):
        yield from _models_in(arg)


@lru_cache(maxsize=256)
def carries_evidence(cls: type[BaseModel], _seen: frozenset[type] = frozenset()) -> bool:
    """Whether ``cls`` or a model anywhere in its fields has an ``evidence`` field."""
    if "evidence" in cls.model_fields:
        return True
    seen = _seen | {cls}
    return any(
        carries_evidence(m, seen)
        for info in cls.model_fields.values()
        for m in _models_in(info.annotation)
        if m not in seen
    )


def _blank(value: Any) -> bool:
    if isinstance(value, BaseModel):
        return all(_blank(getattr(value, n)) for n in type(value).model_fields)
    return value is None or value == "" or value == [] or value == {}


def empty_reason(value: BaseModel, facts: int) -> str | None:
    """Why a record counts as empty (see the module docstring), or None."""
    cls = type(value)
    for name in getattr(cls, "__nonempty__", ()):
        if not getattr(value, name, None):
            return f"no {name} extracted"
    if not carries_evidence(cls):  # a model without evidence: empty when nothing is set
        return "nothing extracted" if _blank(value) else None
    minimum = getattr(cls, "__min_facts__", 1)
    if facts < minimum:
        return f"{facts} fact(s) with evidence extracted; at least {minimum} needed"
    return None
