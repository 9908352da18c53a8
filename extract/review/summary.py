"""The review at a glance: one self-contained HTML report and the same tables as CSV.

Counts are per patient: a finding stated twice for one patient counts once;
terms are matched case-insensitively on the fact's label (``fact_label``: "no
fever" for an absent finding, "X (suspected)" for an unconfirmed diagnosis).
With ``reviewed`` the decisions of the review files beside the results (or of
the files given) are applied first; on one fact the latest decision stands.
Plots are matplotlib figures (Agg backend) inlined as SVG: no network, no files
beside the page.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract.documents import safe_filename
from caseextract.errors import ConfigError
from caseextract.records import ResultRecord, fact_label
from caseextract.review.decisions import Decision, ReviewFile
from caseextract.review.state import corrected_extraction, document_facts
from caseextract.schema import MAX_AGE_YEARS
from caseextract.store import read_records, write_csv_file
from jinja2 import Environment, PackageLoader, select_autoescape

CATEGORIES = {
    "findings": "Findings",
    "diagnoses": "Diagnoses",
    "interventions": "Interventions",
    "adverse_events": "Adverse events",
    "outcomes": "Outcomes",
}
TOP = 15
_ISO = re.compile(r"P(?:([\d.]+)Y)?(?:([\d.]+)M)?(?:([\d.]+)W)?(?:([\d.]+)D)?")


def iso_months(iso: str | None) -> float | None:
    """Months in an ISO-8601 duration ("P2Y" → 24.0); None when there are none."""
    m = _ISO.match(iso or "")
    if not m or not any(m.groups()):
        return None
    y, mo, w, d = (float(g) if g else 0.0 for g in m.groups())
    return round(y * 12 + mo + w * 7 / 30.4375 + d / 30.4375, 2)


@dataclass
class Term:
    label: str
    patients: int = 0
    documents: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set, repr=False, compare=False)


@dataclass
class Summary:
    documents: list[dict[str, Any]] = field(default_factory=list)
    patients: list[dict[str, Any]] = field(default_factory=list)
    terms: dict[str, dict[str, Term]] = field(default_factory=dict)
    grounding: Counter[str] = field(default_factory=Counter)
    review: Counter[str] = field(default_factory=Counter)
    reviewers: list[str] = field(default_factory=list)

    def top(self, category: str, n: int = TOP) -> list[Term]:
        terms = self.terms.get(category, {}).values()
        return sorted(terms, key=lambda t: (-t.patients, t.label.casefold()))[:n]


def latest_records(results: Path) -> list[ResultRecord]:
    """The latest ok record of each document, else its first one, in first-seen order."""
    by_id: dict[str, ResultRecord] = {}
    for record in read_records(results):
        doc = str(record.document.id)
        if record.ok or doc not in by_id:
            by_id[doc] = record
    return list(by_id.values())


def review_decisions(
    results: Path, files: list[Path] | None = None
) -> tuple[list[Decision], list[str]]:
    """Decisions of the given review files (default: all beside the results), oldest
    first, so that the latest decision on a fact stands whoever made it."""
    files = files or sorted(results.parent.glob(f"{results.stem}.*.review"))
    decisions: list[Decision] = []
    names = []
    for path in files:
        if not path.is_file():
            raise ConfigError(f"no review file at {path}")
        log = ReviewFile(path).read()
        decisions.extend(log.decisions)
        names.append(log.reviewer or path.name)
    return sorted(decisions, key=lambda d: d.at), names


def _file_link(path: str | None, base: Path | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    return p.resolve().as_uri() if p.is_file() else None


@dataclass
class _DocPart:
    """What one record adds to a summary: its rows and term labels, not its text."""

    row: dict[str, Any]
    patients: list[dict[str, Any]]
    terms: list[tuple[str, str, str]]  # (category, casefolded key, label), once per patient
    grounding: dict[str, int]
    review: Counter[str]


def _document_part(
    record: ResultRecord, mine: list[Decision], reviewed: bool, results_dir: Path | None
) -> _DocPart:
    doc = str(record.document.id)
    extraction = record.extraction or {}
    row: dict[str, Any] = {
        "document": doc,
        "anchor": "doc-" + safe_filename(doc),
        "path": record.document.path,
        "link": _file_link(record.document.path, results_dir),
        "status": record.status,
        "error": record.error.message if record.error else "",
        "model": record.model_name,
        "grounding_rate": record.grounding.rate if record.grounding else None,
    }
    states: Counter[str] = Counter()
    if reviewed and record.extraction is not None:
        states = Counter(v.state for v in document_facts(record, mine))
        row.update({k: states.get(k, 0) for k in _STATES})
        if mine:
            extraction = corrected_extraction(record, mine)
    grounding = {}
    if record.grounding is not None:
        grounding = {k: v for k, v in record.grounding.stats.items() if v}
    patients = extraction.get("patients") if isinstance(extraction, dict) else None
    patients = patients if isinstance(patients, list) else []
    row["patients"] = len(patients)
    rows, terms = [], []
    for i, patient in enumerate(patients):
        if isinstance(patient, dict):
            rows.append(_patient_row(doc, i, patient))
            terms.extend(_patient_terms(patient))
    return _DocPart(row, rows, terms, grounding, states)


def _add(s: Summary, part: _DocPart) -> None:
    doc = part.row["document"]
    s.documents.append(part.row)
    s.patients.extend(part.patients)
    s.grounding.update(part.grounding)
    s.review.update(part.review)
    for category, key, label in part.terms:
        term = s.terms[category].setdefault(key, Term(label))
        term.patients += 1
        if doc not in term.seen:
            term.seen.add(doc)
            term.documents.append(doc)


def _by_document(decisions: list[Decision] | None) -> dict[str, list[Decision]]:
    by_doc: dict[str, list[Decision]] = {}
    for d in decisions or []:
        by_doc.setdefault(d.document, []).append(d)
    return by_doc


def collect(
    records: Iterable[ResultRecord],
    decisions: list[Decision] | None = None,
    results_dir: Path | None = None,
) -> Summary:
    """The summary of ``records``, each counted (see ``collect_latest`` for a file)."""
    s = Summary(terms={c: {} for c in CATEGORIES})
    by_doc = _by_document(decisions)
    for record in records:
        mine = by_doc.get(str(record.document.id), [])
        _add(s, _document_part(record, mine, decisions is not None, results_dir))
    return s


def collect_latest(
    results: Path,
    decisions: list[Decision] | None = None,
    results_dir: Path | None = None,
) -> Summary:
    """``collect(latest_records(results), …)`` streamed: one record in memory at a time,
    and of each document only its rows and term labels, never its text or quotes."""
    s = Summary(terms={c: {} for c in CATEGORIES})
    by_doc = _by_document(decisions)
    parts: dict[str, _DocPart] = {}
    for record in read_records(results):
        doc = str(record.document.id)
        if record.ok or doc not in parts:
            parts[doc] = _document_part(
                record, by_doc.get(doc, []), decisions is not None, results_dir
            )
    for part in parts.values():
        _add(s, part)
    return s


_STATES = ("accepted", "rejected", "edited", "added", "undecided")


def _plausible_age(years: Any) -> bool:
    ok = isinstance(years, int | float) and not isinstance(years, bool)
    return ok and math.isfinite(years) and 0 <= years <= MAX_AGE_YEARS


def _patient_row(doc: str, i: int, p: dict[str, Any]) -> dict[str, Any]:
    age = p.get("age") or {}
    years = age.get("years")
    if years is None and age.get("unit") in (None, "years") and age.get("value") is not None:
        years = age.get("value")
    if not _plausible_age(years):  # a record may hold anything (written before the check)
        years = None
    follow = p.get("follow_up") or {}
    return {
        "document": doc,
        "patient": p.get("label") or f"#{i + 1}",
        "age_years": years,
        "age_raw": age.get("raw"),
        "sex": (p.get("sex") or {}).get("value"),
        "follow_up_raw": follow.get("raw"),
        "follow_up_months": iso_months(follow.get("iso")),
        **{c: len(p.get(c) or []) for c in CATEGORIES},
    }


def _patient_terms(patient: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for category in CATEGORIES:
        seen: set[str] = set()
        for item in patient.get(category) or []:
            label = fact_label(item).strip()
            key = label.casefold()
            if not label or key in seen:
                continue
            seen.add(key)
            out.append((category, key, label))
    return out


# ----------------------------------------------------------------------- plots


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # dated RDF block
    return text[text.find("<svg") :]


def plots(s: Summary) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable
    matplotlib.rcParams["svg.hashsalt"] = "caseextract"  # stable ids
    matplotlib.rcParams["text.parse_math"] = False  # report text is text: "$x$" is not TeX
    matplotlib.rcParams["text.usetex"] = False
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    ages = [p["age_years"] for p in s.patients if isinstance(p["age_years"], int | float)]
    if ages:
        fig, ax = plt.subplots(figsize=(5, 2.6))
        ax.hist(ages, bins=range(0, int(max(ages)) + 11, 10), color="#4a78b5", edgecolor="white")
        ax.set_xlabel("age (years)")
        ax.set_ylabel("patients")
        out["age"] = _svg(fig)
    sexes = Counter(p["sex"] or "not stated" for p in s.patients)
    if sexes:
        fig, ax = plt.subplots(figsize=(4, 2.6))
        names = sorted(sexes)
        ax.bar(names, [sexes[n] for n in names], color="#6aa36f")
        ax.set_ylabel("patients")
        out["sex"] = _svg(fig)
    follow = [p["follow_up_months"] for p in s.patients if p["follow_up_months"] is not None]
    if follow:
        fig, ax = plt.subplots(figsize=(5, 2.6))
        ax.hist(follow, bins=12, color="#b5874a", edgecolor="white")
        ax.set_xlabel("follow-up (months)")
        ax.set_ylabel("patients")
        out["follow_up"] = _svg(fig)
    for category, title in CATEGORIES.items():
        top = s.top(category, 12)
        if not top:
            continue
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(top) + 0.8))
        labels = [t.label if len(t.label) <= 40 else t.label[:39] + "…" for t in top][::-1]
        ax.barh(labels, [t.patients for t in top][::-1], color="#4a78b5")
        ax.set_xlabel("patients")
        ax.set_title(title, fontsize=10)
        out[category] = _svg(fig)
    return out


# ----------------------------------------------------------------------- output


def tables(s: Summary) -> dict[str, list[dict[str, Any]]]:
    terms = [
        {
            "category": c,
            "term": t.label,
            "patients": t.patients,
            "documents": len(t.documents),
            "document_ids": "; ".join(t.documents),
        }
        for c in CATEGORIES
        for t in s.top(c, 10**9)
    ]
    docs = [{k: v for k, v in d.items() if k != "anchor"} for d in s.documents]
    return {"documents": docs, "patients": s.patients, "terms": terms}


def write_tables(s: Summary, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in tables(s).items():
        path = folder / f"{name}.csv"
        columns = list(dict.fromkeys(k for row in rows for k in row)) or ["empty"]
        write_csv_file(path, rows, columns)
        written.append(path)
    return written


def render(s: Summary, results: Path, reviewed: bool, figures: dict[str, str]) -> str:
    env = Environment(
        loader=PackageLoader("caseextract.review", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    sexes = Counter(p["sex"] or "not stated" for p in s.patients)
    ages = sorted(p["age_years"] for p in s.patients if p["age_years"] is not None)
    follow = sorted(p["follow_up_months"] for p in s.patients if p["follow_up_months"] is not None)
    return env.get_template("summary.html").render(
        s=s,
        results=results,
        reviewed=reviewed,
        figures=figures,
        categories=CATEGORIES,
        sexes=sorted(sexes.items()),
        ages=ages,
        follow=follow,
        median=lambda xs: xs[len(xs) // 2] if xs else None,
        statuses=Counter(d["status"] for d in s.documents),
        anchors={d["document"]: d["anchor"] for d in s.documents},
        states=_STATES,
    )


def summarize(
    results: Path,
    html: Path,
    reviewed: bool = False,
    csv_dir: Path | None = None,
    review_files: list[Path] | None = None,
) -> list[Path]:
    if not results.is_file():
        raise ConfigError(f"no results file at {results}")
    if next(read_records(results), None) is None:
        raise ConfigError(f"{results} holds no readable record")
    decisions = None
    s_reviewers: list[str] = []
    if reviewed or review_files:
        reviewed = True
        decisions, s_reviewers = review_decisions(results, review_files)
        if not s_reviewers:
            raise ConfigError(
                f"--reviewed: no review file beside {results} ({results.stem}.*.review)"
            )
    s = collect_latest(results, decisions, results.parent)
    s.reviewers = s_reviewers
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(render(s, results, reviewed, plots(s)), encoding="utf-8")
    folder = csv_dir or html.with_name(html.stem + "_tables")
    return [html, *write_tables(s, folder)]
