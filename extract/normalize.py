"""Normalisers for values that case reports write in many ways.

Each function takes the raw text as written in a report and returns a normalised
value, or ``None`` when the text cannot be read with confidence. The raw text is
always kept beside the normalised value by the schema; nothing here guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}

UNIT_ALIASES = {
    "y": "years",
    "yr": "years",
    "yrs": "years",
    "year": "years",
    "years": "years",
    "mo": "months",
    "mos": "months",
    "month": "months",
    "months": "months",
    "wk": "weeks",
    "wks": "weeks",
    "week": "weeks",
    "weeks": "weeks",
    "d": "days",
    "day": "days",
    "days": "days",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
}

_UNIT_IN_YEARS = {"years": 1.0, "months": 1 / 12, "weeks": 7 / 365.25, "days": 1 / 365.25}
_ISO_LETTER = {"years": "Y", "months": "M", "weeks": "W", "days": "D"}
_ISO_TIME_LETTER = {"hours": "H", "minutes": "M"}

_NUM = r"(\d+(?:[.,]\d+)?|(?:" + "|".join(sorted(WORD_NUMBERS, key=len, reverse=True)) + r")\b)"
_UNIT = r"(" + "|".join(sorted(UNIT_ALIASES, key=len, reverse=True)) + r")\.?"
_DASH = "-\u2010\u2011\u2012\u2013\u2014\u2212"


def _number(token: str) -> float | None:
    token = token.lower().strip()
    if token in WORD_NUMBERS:
        return float(WORD_NUMBERS[token])
    try:
        return float(token.replace(",", "."))
    except ValueError:
        return None


def _clean(text: str) -> str:
    text = text.replace("\u00a0", " ")
    for dash in _DASH:
        text = text.replace(dash, "-")
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass(frozen=True)
class ParsedAge:
    value: float | None
    unit: str | None
    years: float | None
    years_low: float | None = None
    years_high: float | None = None


def parse_age(raw: str) -> ParsedAge | None:
    """Read an age as written ("87-year-old", "3-month-old", "in her early 70s").

    Returns value and unit as written, the age in years, and for decade phrases a
    range (``years`` is then ``None``: a range is not a point).
    """
    text = _clean(raw)
    decade = re.search(r"\b(early|mid|late)?[- ]?(\d0)'?s\b", text)
    if decade and not re.search(_NUM + r"[- ]?" + _UNIT, text):
        base = int(decade.group(2))
        low, high = {"early": (0, 3), "mid": (4, 6), "late": (7, 9), None: (0, 9)}[decade.group(1)]
        return ParsedAge(None, "years", None, float(base + low), float(base + high))
    m = re.search(_NUM + r"[- ]?" + _UNIT + r"(?:[- ]?(?:old|of age))?", text)
    if m:
        value = _number(m.group(1))
        unit = UNIT_ALIASES[m.group(2)]
        if value is None or unit not in _UNIT_IN_YEARS:
            return None
        return ParsedAge(value, unit, round(value * _UNIT_IN_YEARS[unit], 4))
    m = re.search(r"\b(?:aged?|age of)\s+(\d{1,3})\b", text)
    if m:
        value = float(m.group(1))
        return ParsedAge(value, "years", value)
    return None


def _halves(text: str) -> str:
    """ "half a month" → "0.5 month"; "one and a half years" → "1.5 years"."""
    text = re.sub(r"\bhalf an? ", "0.5 ", text)
    return re.sub(
        _NUM + r" and a half ",
        lambda m: f"{(_number(m.group(1)) or 0) + 0.5:g} ",
        text,
    )


def parse_duration(raw: str) -> str | None:
    """ISO-8601 duration for a written span ("2 years" → "P2Y", "4 days later" → "P4D").

    Compound spans add up ("1 year and 6 months" → "P1Y6M"); fractional values are
    kept ("1.5 years" → "P1.5Y"). Returns ``None`` when no span is written.
    """
    text = _halves(_clean(raw))
    parts: dict[str, float] = {}
    for m in re.finditer(r"\b" + _NUM + r"[- ]?" + _UNIT + r"(?![a-z])", text):
        value = _number(m.group(1))
        unit = UNIT_ALIASES[m.group(2)]
        if value is None:
            continue
        parts[unit] = parts.get(unit, 0.0) + value
    if not parts:
        return None

    def fmt(v: float) -> str:
        return str(int(v)) if v == int(v) else f"{v:g}"

    date = "".join(fmt(parts[u]) + _ISO_LETTER[u] for u in _ISO_LETTER if u in parts)
    time = "".join(fmt(parts[u]) + _ISO_TIME_LETTER[u] for u in _ISO_TIME_LETTER if u in parts)
    return "P" + date + ("T" + time if time else "")


_REGIONS = {"C": 7, "T": 12, "L": 5, "S": 5}
_ORDER = [f"{r}{i}" for r, n in _REGIONS.items() for i in range(1, n + 1)]
_ALIAS = {"D": "T", "TH": "T"}  # dorsal = thoracic
_LEVEL = r"(C|TH|T|D|L|S)\s?(\d{1,2})"


def _level(region: str, number: str) -> str | None:
    name = f"{_ALIAS.get(region, region)}{int(number)}"
    return name if name in _ORDER else None


def expand_spinal_levels(raw: str) -> list[str]:
    """Expand spinal level notation into single levels, in anatomical order.

    "T12 to L2" → T12, L1, L2; "L4/5" → L4, L5; "T12–L2" → T12, L1, L2;
    "L1" → L1; "C5-6 and C6-7" → C5, C6, C7. Unknown text gives an empty list.
    """
    text = _clean(raw).upper()
    found: list[str] = []
    pattern = re.compile(
        _LEVEL + r"(?:\s*(?:-|/|TO|THROUGH|AND)\s*(?:(C|TH|T|D|L|S)\s?)?(\d{1,2}))?"
    )
    for m in pattern.finditer(text):
        start = _level(m.group(1), m.group(2))
        if start is None:
            continue
        if m.group(4) is None:
            found.append(start)
            continue
        end = _level(m.group(3) or m.group(1), m.group(4))
        if end is None:
            found.append(start)
            continue
        a, b = sorted((_ORDER.index(start), _ORDER.index(end)))
        joined = m.group(0)
        if re.search(r"\bAND\b", joined):
            found.extend([start, end])
        else:
            found.extend(_ORDER[a : b + 1])
    ordered = sorted(set(found), key=_ORDER.index)
    return ordered


def normalise_figure_label(raw: str) -> str:
    """Canonical figure reference: "fig 2", "Figure 2", "FIG. 2A" → "Fig. 2" / "Fig. 2A"."""
    m = re.search(r"\bfig(?:ure)?s?\.?\s*(\d+[a-z]?)", raw, flags=re.IGNORECASE)
    if not m:
        return raw.strip()
    num = m.group(1)
    return f"Fig. {num[:-1] + num[-1].upper() if num[-1].isalpha() else num}"


def numbers_in(text: str) -> set[str]:
    """Numbers written in a text, as digits ("four" → "4", "2.5" → "2.5")."""
    out: set[str] = set()
    cleaned = _clean(text)
    for token in re.findall(r"\d+(?:[.,]\d+)?", cleaned):
        value = float(token.replace(",", "."))
        out.add(f"{value:g}")
    for word in re.findall(r"[a-z]+", cleaned):
        if word in WORD_NUMBERS and word not in ("a", "an"):
            out.add(f"{float(WORD_NUMBERS[word]):g}")
    return out
