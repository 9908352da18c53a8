"""Field-by-field scoring of a predicted extraction against a gold one.

Generic over the response model: the scorer walks the pydantic structure.

* A list of objects that themselves hold lists of facts (``patients``) is a list
  of *units*: units are aligned one-to-one first (Hungarian assignment on a
  whole-unit similarity), then scored inside each pair.
* A list of facts is matched one-to-one (Hungarian) on its key text (``name``,
  ``description``, ``event`` or ``label``) with a similarity gate. A matched pair
  is a *relaxed* hit; it is also a *strict* hit when its attributes agree too
  (enums such as assertion/status, spinal levels, and the short texts
  ``result``/``attributed_to``/``when``/``shows`` fuzzily).
* Objects with a normalised value (age, sex, spans) and scalars compare after
  normalisation: numbers and enums exactly, ages in years (infants to the month,
  decade phrases by overlap), spans by ISO duration, short text fuzzily.
* Nulls: gold null and prediction null is not counted; gold null and prediction
  set is spurious (false positive); gold set and prediction null is missed.
* A second relaxed figure, *cited* (``f1_cited``), also pairs the items left over
  by the name matching when their quotes cite the same place in the source (at
  least half of the shorter citation's characters inside the other's), one to
  one. Such a pair stays a missed and a spurious entry for the name figure and
  the diff (each noting the other), and counts as one hit in the cited figure:
  naming and granularity differences are told apart from real misses.

Every comparison becomes an ``Entry`` (match / wrong_value / missed / spurious,
with quotes and grounding) — the same entries feed the metrics and the diff.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from caseextract.grounding import Aligner, Alignment, judge_fact
from pydantic import BaseModel
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process
from scipy.optimize import linear_sum_assignment

MATCH_THRESHOLD = 80.0  # key-text similarity (0-100) needed to pair two items
ATTR_THRESHOLD = 70.0  # similarity for secondary short texts in strict matching
SUBSET_MIN_TOKEN_SHARE = 0.5  # token_set_ratio counts only if the shorter text is this share
CITED_MIN_SHARE = 0.5  # cited pairing: share of the shorter citation inside the other
KEY_FIELDS = ("name", "description", "event", "label")
FUZZY_ATTRS = ("result", "attributed_to", "when", "shows")
EXACT_TEXT_FIELDS = {"doi", "pmid", "year"}


class Status(str, enum.Enum):
    match = "match"
    wrong_value = "wrong_value"
    missed = "missed"
    spurious = "spurious"


@dataclass
class Entry:
    family: str  # field path without indices, e.g. "patients.findings"
    unit: str  # which patient (gold label / predicted label) or "" at top level
    status: Status
    gold: str | None = None
    pred: str | None = None
    gold_quotes: list[str] = field(default_factory=list)
    pred_quotes: list[str] = field(default_factory=list)
    pred_grounded: bool | None = None  # None: no prediction or no quotes to ground
    strict: bool = True  # for matched pairs: do the attributes agree too
    note: str = ""
    scalar: bool = False  # a single value (age, title …) rather than a list item
    cited_with: str | None = None  # a missed/spurious item paired by citation: the other item

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "status": self.status.value}


# ---------------------------------------------------------------- similarity


@functools.lru_cache(maxsize=1 << 16)
def _processed(text: str) -> tuple[str, int]:
    """A text as rapidfuzz's ``default_process`` leaves it, and its token count (cached:
    the same names are compared against every item of the other list)."""
    processed = default_process(text)
    return processed, len(processed.split())


def text_similarity(a: str | None, b: str | None) -> float:
    """0–100. token_sort_ratio, lifted to 90 for a gated subset match."""
    if not a or not b:
        return 0.0
    (pa, na), (pb, nb) = _processed(str(a)), _processed(str(b))
    if not pa or not pb:
        return 100.0 if pa == pb else 0.0
    score = fuzz.token_sort_ratio(pa, pb)
    share = min(na, nb) / max(na, nb)
    if share >= SUBSET_MIN_TOKEN_SHARE and fuzz.token_set_ratio(pa, pb) == 100:
        score = max(score, 90.0)
    return float(score)


def _key(item: Any) -> str:
    """An item's key text: its name/description/event/label, else (for a task's own
    models) its first text or enum field, e.g. a cement leak's ``site``."""
    if isinstance(item, BaseModel):
        for name in KEY_FIELDS:
            value = getattr(item, name, None)
            if isinstance(value, str) and value:
                return _text(value)
        for name in type(item).model_fields:
            value = getattr(item, name, None)
            if name != "evidence" and isinstance(value, str | enum.Enum) and value:
                return _text(value)
        return ""
    return _text(item)


def _text(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def _quotes(item: Any) -> list[str]:
    return list(getattr(item, "evidence", []) or [])


def _is_fact_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _list_item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _list_item_type(typing.get_args(annotation)[0])
    if origin is list:
        return typing.get_args(annotation)[0]
    return None


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _is_unit_model(tp: Any) -> bool:
    """A model whose fields include lists of evidence-carrying facts (a patient)."""
    if not _is_fact_model(tp):
        return False
    for f in tp.model_fields.values():
        inner = _list_item_type(f.annotation)
        if _is_fact_model(inner) and "evidence" in inner.model_fields:
            return True
    return False


# ---------------------------------------------------------------- value comparison


def _age_value(obj: Any) -> Any:
    years = getattr(obj, "years", None)
    if years is not None:
        return ("months", round(years * 12)) if years < 2 else ("years", int(years))
    low, high = getattr(obj, "years_low", None), getattr(obj, "years_high", None)
    if low is not None and high is not None:
        return ("range", low, high)
    return ("raw", default_process(getattr(obj, "raw", "") or ""))


def normalised_value(obj: Any) -> Any:
    """The comparable value of a small object or scalar."""
    if obj is None:
        return None
    if isinstance(obj, BaseModel):
        fields = type(obj).model_fields
        if "years" in fields:
            return _age_value(obj)
        if "iso" in fields:
            return ("iso", obj.iso) if obj.iso else ("raw", default_process(obj.raw or ""))
        if "value" in fields:
            return normalised_value(obj.value)
        return default_process(_key(obj))
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, str):
        return obj.strip()
    return obj


def values_agree(gold: Any, pred: Any, field_name: str = "") -> bool:
    g, p = normalised_value(gold), normalised_value(pred)
    if isinstance(g, tuple) and isinstance(p, tuple):
        if g[0] == "range" or p[0] == "range":
            lo_g, hi_g = (g[1], g[2]) if g[0] == "range" else (_years(g), _years(g))
            lo_p, hi_p = (p[1], p[2]) if p[0] == "range" else (_years(p), _years(p))
            return None not in (lo_g, lo_p) and lo_g <= hi_p and lo_p <= hi_g
        return g == p
    if isinstance(g, str) and isinstance(p, str):
        if field_name in EXACT_TEXT_FIELDS:
            return g.lower() == p.lower()
        return text_similarity(g, p) >= MATCH_THRESHOLD
    return g == p


def _years(v: tuple) -> float | None:
    if v[0] == "years":
        return float(v[1])
    if v[0] == "months":
        return v[1] / 12
    return None


def _show(obj: Any) -> str | None:
    if obj is None:
        return None
    if isinstance(obj, BaseModel):
        for name in ("raw", *KEY_FIELDS, "value"):
            value = getattr(obj, name, None)
            if value not in (None, ""):
                return str(value.value if isinstance(value, enum.Enum) else value)
        return _key(obj) or obj.model_dump_json(exclude_none=True)[:200]
    return str(obj.value if isinstance(obj, enum.Enum) else obj)


def _attr_differences(gold: BaseModel, pred: BaseModel) -> list[str]:
    """Strict-match attributes that disagree (enums, bools, levels, short texts)."""
    diffs = []
    for name, f in type(gold).model_fields.items():
        if name == "evidence" or name in KEY_FIELDS:
            continue
        g, p = getattr(gold, name, None), getattr(pred, name, None)
        ann = _strip_optional(f.annotation)
        is_enum = isinstance(ann, type) and issubclass(ann, enum.Enum | bool)
        if is_enum or isinstance(g, enum.Enum | bool) or name in ("assertion", "status"):
            if normalised_value(g) != normalised_value(p):
                diffs.append(f"{name}: {_show(g)} ≠ {_show(p)}")
        elif name == "levels":
            if sorted(g or []) != sorted(p or []):
                diffs.append(f"levels: {g} ≠ {p}")
        elif name in FUZZY_ATTRS and g and (not p or text_similarity(g, p) < ATTR_THRESHOLD):
            diffs.append(f"{name}: {_show(g)} ≠ {_show(p)}")
    return diffs


# ---------------------------------------------------------------- the scorer


class _SharedAligner(Aligner):
    """An ``Aligner`` that remembers each quote's alignment (an alignment depends only on
    the text, the quote and ``after``). One per source text is kept for every ``Scorer``
    of that text, so a document is folded once and a quote aligned once per run."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._memo: dict[tuple[str, int], Alignment] = {}
        self._judged: dict[tuple[type, str], bool | None] = {}

    def align(self, quote: str, after: int = 0) -> Alignment:
        key = (quote, after)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = super().align(quote, after)
        return found


_ALIGNERS: OrderedDict[str, _SharedAligner] = OrderedDict()
_ALIGNERS_KEPT = 32  # source texts whose aligner is kept (least recently used goes)


def shared_aligner(text: str) -> Aligner:
    """The aligner of ``text`` shared by every scorer of it (see ``_SharedAligner``)."""
    aligner = _ALIGNERS.get(text)
    if aligner is None:
        aligner = _ALIGNERS[text] = _SharedAligner(text)
        while len(_ALIGNERS) > _ALIGNERS_KEPT:
            _ALIGNERS.popitem(last=False)
    else:
        _ALIGNERS.move_to_end(text)
    return aligner


def _judged(item: BaseModel, aligner: Aligner) -> bool | None:
    """``judge_fact(item, aligner).grounded`` (None when it judges nothing), remembered on a
    shared aligner by the item's type and content: a judgement depends on nothing else."""
    memo = getattr(aligner, "_judged", None)
    key = (type(item), item.model_dump_json()) if memo is not None else None
    if memo is not None and key in memo:
        return memo[key]
    fact = judge_fact(item, aligner)
    judged = fact.grounded if fact is not None else None
    if memo is not None:
        memo[key] = judged
    return judged


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans as sorted, disjoint, non-empty intervals covering the same positions."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(sp for sp in spans if sp[1] > sp[0]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _length(intervals: list[tuple[int, int]]) -> int:
    return sum(end - start for start, end in intervals)


def _common(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """Positions two sets of sorted disjoint intervals have in common."""
    i = j = total = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return total


class Scorer:
    def __init__(self, source_text: str | None = None) -> None:
        self.aligner = shared_aligner(source_text) if source_text else None
        self._spans: dict[int, list[tuple[int, int]]] = {}
        self._chars: dict[int, list[tuple[int, int]]] = {}

    def spans(self, item: Any) -> list[tuple[int, int]]:
        if self.aligner is None:
            return []
        key = id(item)
        if key not in self._spans:
            found = [self.aligner.align(q) for q in _quotes(item)]
            self._spans[key] = [(a.start, a.end) for a in found if a.start is not None]
        return self._spans[key]

    def chars(self, item: Any) -> list[tuple[int, int]]:
        """The source positions an item's evidence covers, as sorted disjoint intervals
        (cached per item, as ``spans``)."""
        key = id(item)
        if key not in self._chars:
            self._chars[key] = _merged(self.spans(item))
        return self._chars[key]

    def overlap(self, g: Any, p: Any) -> float:
        """Share of the two items' evidence characters that they have in common (0–1)."""
        a, b = self.chars(g), self.chars(p)
        if not a or not b:
            return 0.0
        common = _common(a, b)
        return common / (_length(a) + _length(b) - common)

    def cited_share(self, g: Any, p: Any) -> float:
        """Share of the shorter of the two items' citations that the other also cites (0–1)."""
        a, b = self.chars(g), self.chars(p)
        return _common(a, b) / min(_length(a), _length(b)) if a and b else 0.0

    def grounded(self, item: Any) -> bool | None:
        quotes = _quotes(item)
        if self.aligner is None or not quotes:
            return None
        if isinstance(item, BaseModel):  # the full judgement: found, informative, supported
            judged = _judged(item, self.aligner)
            if judged is not None:
                return judged
        return all(self.aligner.align(q).grounded for q in quotes)

    def score(self, gold: BaseModel, pred: BaseModel | None) -> list[Entry]:
        entries: list[Entry] = []
        self._object(gold, pred, "", "", entries)
        return entries

    # -- walkers ------------------------------------------------------------------

    def _object(
        self, gold: BaseModel, pred: BaseModel | None, path: str, unit: str, out: list[Entry]
    ) -> None:
        for name, f in type(gold).model_fields.items():
            if name == "evidence":
                continue
            fam = f"{path}.{name}" if path else name
            g = getattr(gold, name, None)
            p = getattr(pred, name, None) if pred is not None else None
            item_type = _list_item_type(f.annotation)
            if item_type is not None:
                if _is_unit_model(item_type):
                    self._units(g or [], p or [], fam, out)
                else:
                    self._facts(g or [], p or [], fam, unit, out)
            elif _is_fact_model(_strip_optional(f.annotation)) and not _has_value(
                _strip_optional(f.annotation)
            ):
                if g is None and p is None:
                    continue
                cls = type(g) if g is not None else type(p)
                self._object(g or cls.model_construct(), p, fam, unit, out)
            else:
                self._scalar(g, p, fam, unit, name, out)

    def _scalar(self, g: Any, p: Any, fam: str, unit: str, name: str, out: list[Entry]) -> None:
        if _empty(g) and _empty(p):
            return
        entry = Entry(
            fam,
            unit,
            Status.match,
            _show(g),
            _show(p),
            _quotes(g),
            _quotes(p),
            self.grounded(p) if p is not None else None,
            scalar=True,
        )
        if _empty(g):
            entry.status, entry.gold = Status.spurious, None
        elif _empty(p):
            entry.status, entry.pred = Status.missed, None
        elif not values_agree(g, p, name):
            entry.status, entry.strict = Status.wrong_value, False
        out.append(entry)

    def _facts(self, gold: list, pred: list, fam: str, unit: str, out: list[Entry]) -> None:
        pairs, lone_g, lone_p = match_items(gold, pred, self.overlap if self.aligner else None)
        for gi, pi in pairs:
            g, p = gold[gi], pred[pi]
            diffs = _attr_differences(g, p) if isinstance(g, BaseModel) else []
            out.append(
                Entry(
                    fam,
                    unit,
                    Status.wrong_value if diffs else Status.match,
                    _show(g),
                    _show(p),
                    _quotes(g),
                    _quotes(p),
                    self.grounded(p),
                    strict=not diffs,
                    note="; ".join(diffs),
                )
            )
        cited = dict(self.cited_pairs(gold, pred, lone_g, lone_p))
        by_pred = {pi: gi for gi, pi in cited.items()}
        for gi in lone_g:
            e = Entry(fam, unit, Status.missed, _show(gold[gi]), None, _quotes(gold[gi]))
            if gi in cited:
                e.cited_with = _show(pred[cited[gi]])
                e.note = f"cites the same text as the predicted {e.cited_with!r}"
            out.append(e)
        for pi in lone_p:
            p = pred[pi]
            e = Entry(fam, unit, Status.spurious, None, _show(p), [], _quotes(p), self.grounded(p))
            if pi in by_pred:
                e.cited_with = _show(gold[by_pred[pi]])
                e.note = f"cites the same text as the gold {e.cited_with!r}"
            out.append(e)

    def cited_pairs(
        self, gold: list, pred: list, lone_g: list[int], lone_p: list[int]
    ) -> list[tuple[int, int]]:
        """Items left over by the name matching that cite the same text, one to one."""
        if self.aligner is None or not lone_g or not lone_p:
            return []
        share = np.array([[self.cited_share(gold[g], pred[p]) for p in lone_p] for g in lone_g])
        rows, cols = linear_sum_assignment(-share)
        return [
            (lone_g[r], lone_p[c])
            for r, c in zip(rows, cols, strict=True)
            if share[r, c] >= CITED_MIN_SHARE
        ]

    def _units(self, gold: list, pred: list, fam: str, out: list[Entry]) -> None:
        pairs, lone_g, lone_p = align_units(gold, pred)
        for gi, pi in pairs:
            label = _unit_label(gold[gi], pred[pi])
            self._object(gold[gi], pred[pi], fam, label, out)
        for gi in lone_g:
            self._object(gold[gi], None, fam, _unit_label(gold[gi], None), out)
        for pi in lone_p:
            cls = type(pred[pi])
            empty = cls.model_construct(
                **{
                    n: []
                    for n, f in cls.model_fields.items()
                    if _list_item_type(f.annotation) is not None
                }
            )
            self._object(empty, pred[pi], fam, _unit_label(None, pred[pi]), out)


def _has_value(tp: Any) -> bool:
    """Small objects compared as one value (age, sex, span) rather than walked."""
    return _is_fact_model(tp) and bool({"years", "iso", "value"} & set(tp.model_fields))


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == []


def _unit_label(g: Any, p: Any) -> str:
    gl = getattr(g, "label", None) if g is not None else None
    pl = getattr(p, "label", None) if p is not None else None
    if gl and pl and gl != pl:
        return f"{gl} ↔ {pl}"
    return gl or pl or "?"


def pair_similarity(g: Any, p: Any, overlap: Overlap | None = None) -> float:
    """Key-text similarity, raised when both items quote the same place in the source.

    Two labellers (or a labeller and a model) often name one finding differently
    ("urinary blood" / "haematuria") while quoting the same sentence. Half the
    name score plus up to 50 points for overlapping evidence lets those pair, while
    two different items quoted from one sentence ("paralysis" / "weakness") stay apart.
    """
    name = text_similarity(_key(g), _key(p))
    if overlap is None:
        return name
    return max(name, 0.5 * name + 50.0 * overlap(g, p))


Overlap = Callable[[Any, Any], float]


def match_items(
    gold: list, pred: list, overlap: Overlap | None = None
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """One-to-one matching (Hungarian) on ``pair_similarity``, gated at MATCH_THRESHOLD."""
    if not gold or not pred:
        return [], list(range(len(gold))), list(range(len(pred)))
    sim = np.array([[pair_similarity(g, p, overlap) for p in pred] for g in gold])
    rows, cols = linear_sum_assignment(-sim)
    pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= MATCH_THRESHOLD]
    used_g, used_p = {r for r, _ in pairs}, {c for _, c in pairs}
    return (
        pairs,
        [i for i in range(len(gold)) if i not in used_g],
        [j for j in range(len(pred)) if j not in used_p],
    )


def unit_similarity(g: BaseModel, p: BaseModel) -> float:
    """0–1: agreement of age, sex, label and the diagnoses/findings named."""
    score, weight = 0.0, 0.0
    for name, w in (("age", 2.0), ("sex", 1.0)):
        gv, pv = getattr(g, name, None), getattr(p, name, None)
        if gv is not None and pv is not None:
            weight += w
            score += w * values_agree(gv, pv)
    for name, w in (("diagnoses", 2.0), ("findings", 1.0), ("interventions", 1.0)):
        gl, pl = getattr(g, name, None) or [], getattr(p, name, None) or []
        if gl and pl:
            pairs, _, _ = match_items(gl, pl)
            weight += w
            score += w * len(pairs) / max(len(gl), len(pl))
    gl, pl = getattr(g, "label", None), getattr(p, "label", None)
    if gl and pl:
        weight += 0.5
        score += 0.5 * (text_similarity(gl, pl) >= 90)
    return score / weight if weight else 0.0


def align_units(gold: list, pred: list) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    if not gold or not pred:
        return [], list(range(len(gold))), list(range(len(pred)))
    sim = np.array([[unit_similarity(g, p) for p in pred] for g in gold])
    rows, cols = linear_sum_assignment(-sim)
    pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
    used_g, used_p = {r for r, _ in pairs}, {c for _, c in pairs}
    return (
        pairs,
        [i for i in range(len(gold)) if i not in used_g],
        [j for j in range(len(pred)) if j not in used_p],
    )


# ---------------------------------------------------------------- metrics


RATE_NAMES = (
    "precision",
    "recall",
    "f1",
    "precision_strict",
    "recall_strict",
    "f1_strict",
    "precision_cited",
    "recall_cited",
    "f1_cited",
    "omission_rate",
    "spurious_rate",
    "hallucination_rate",
)


@dataclass
class Counts:
    tp_relaxed: int = 0
    tp_strict: int = 0
    fp_relaxed: int = 0
    fp_strict: int = 0
    fn_relaxed: int = 0
    fn_strict: int = 0
    gold: int = 0
    pred: int = 0
    pred_ungrounded: int = 0
    pred_with_quotes: int = 0
    cited_pairs: int = 0  # missed + spurious items that cite the same text (one hit, cited)

    def add_entry(self, e: Entry) -> None:
        has_g, has_p = e.gold is not None, e.pred is not None
        self.gold += has_g
        self.pred += has_p
        if has_p and e.pred_grounded is not None:
            self.pred_with_quotes += 1
            self.pred_ungrounded += not e.pred_grounded
        if e.status is Status.match:
            self.tp_relaxed += 1
            self.tp_strict += 1
        elif e.status is Status.wrong_value:
            if e.scalar:  # a wrong scalar is wrong in both views
                self.fp_relaxed += 1
                self.fn_relaxed += 1
            else:
                self.tp_relaxed += 1
            self.fp_strict += 1
            self.fn_strict += 1
        elif e.status is Status.missed:
            self.fn_relaxed += 1
            self.fn_strict += 1
            self.cited_pairs += e.cited_with is not None  # counted once, on the gold side
        elif e.status is Status.spurious:
            self.fp_relaxed += 1
            self.fp_strict += 1

    def add(self, other: Counts) -> None:
        for k, v in other.__dict__.items():
            setattr(self, k, getattr(self, k) + v)

    def prf(
        self, strict: bool = False, cited: bool = False
    ) -> tuple[float | None, float | None, float | None]:
        """Precision, recall, F1: relaxed (paired by name), strict, or cited (relaxed
        plus the pairs that cite the same text)."""
        tp = self.tp_strict if strict else self.tp_relaxed
        fp = self.fp_strict if strict else self.fp_relaxed
        fn = self.fn_strict if strict else self.fn_relaxed
        if cited and not strict:
            tp, fp, fn = tp + self.cited_pairs, fp - self.cited_pairs, fn - self.cited_pairs
        p = tp / (tp + fp) if tp + fp else None
        r = tp / (tp + fn) if tp + fn else None
        if p is None or r is None:
            f = None if (tp + fp + fn) == 0 else 0.0
        else:
            f = 2 * p * r / (p + r) if p + r else 0.0
        return p, r, f

    @property
    def omission_rate(self) -> float | None:
        return self.fn_relaxed / self.gold if self.gold else None

    @property
    def spurious_rate(self) -> float | None:
        return self.fp_relaxed / self.pred if self.pred else None

    @property
    def hallucination_rate(self) -> float | None:
        """Predicted items whose own quotes are not in the source."""
        return self.pred_ungrounded / self.pred_with_quotes if self.pred_with_quotes else None

    def summary(self) -> dict[str, Any]:
        pr, rr, fr = self.prf(False)
        ps, rs, fs = self.prf(True)
        pc, rc, fc = self.prf(cited=True)
        rates = (pr, rr, fr, ps, rs, fs, pc, rc, fc)
        rates += (self.omission_rate, self.spurious_rate, self.hallucination_rate)
        return {**self.__dict__, **dict(zip(RATE_NAMES, rates, strict=True))}


def family_of(entry: Entry) -> str:
    """Report grouping: the last part of the path (findings, age, article.title …)."""
    parts = entry.family.split(".")
    return entry.family if parts[0] == "article" else parts[-1] if len(parts) > 1 else parts[0]


def count(entries: list[Entry]) -> tuple[Counts, dict[str, Counts]]:
    total = Counts()
    families: dict[str, Counts] = {}
    for e in entries:
        total.add_entry(e)
        families.setdefault(family_of(e), Counts()).add_entry(e)
    return total, families
