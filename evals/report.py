"""Scorecards: the rows of an eval report, its Markdown view, and baseline deltas.

``scorecard_rows`` builds the scorecard's rows once (scope, P, R, F1, cited,
strict, omission, spurious, hallucination); the Markdown here and the terminal
table (``cli.evaluate``) only format them. Reports are ``EvalReport``s
(``report_model``), read and written through the type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from caseextract.evals.report_model import BaselineRow, EvalReport, Scores

METRICS = ("precision", "recall", "f1", "f1_cited", "f1_strict")
FIGURES = (
    "F1: items paired by name (near names helped by shared quotes); F1 cited: also pairs "
    "the items left over whose quotes cite the same text, so naming and granularity "
    "differences are told from real misses; F1 strict: paired by name with equal attributes."
)


def entity_lines(report: EvalReport) -> list[str]:
    """The corpus-annotation check, when the cases have annotations (evals.entities)."""
    er = report.entity_recall
    if not er:
        return []
    return [
        f"Corpus entity recall ({er['entities']} conditions and findings annotated by the "
        f"corpus's authors in {er['cases']} cases, found by span overlap with the quotes): "
        f"records {_f(er['record'])}, gold labels {_f(er['gold'])}",
        "",
    ]


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


@dataclass(frozen=True)
class ScoreRow:
    """One scorecard row: a scope's F1 family of figures and its error rates."""

    scope: str  # a family, or MICRO for the whole report
    precision: float | None
    recall: float | None
    f1: float | None
    f1_cited: float | None
    f1_strict: float | None
    omission: float | None
    spurious: float | None
    hallucination: float | None

    @classmethod
    def of(cls, scope: str, s: Scores) -> ScoreRow:
        return cls(
            scope, s.precision, s.recall, s.f1, s.f1_cited, s.f1_strict,
            s.omission_rate, s.spurious_rate, s.hallucination_rate,
        )  # fmt: skip

    @property
    def scores(self) -> tuple[float | None, ...]:
        """P, R, F1, F1 cited, F1 strict."""
        return (self.precision, self.recall, self.f1, self.f1_cited, self.f1_strict)

    @property
    def rates(self) -> tuple[float | None, ...]:
        """Omission, spurious and hallucination rates."""
        return (self.omission, self.spurious, self.hallucination)


MICRO = "micro"


def scorecard_rows(report: EvalReport) -> list[ScoreRow]:
    """The overall (micro) row, then one per family, in the report's order."""
    rows = [ScoreRow.of(MICRO, report.micro)]
    return rows + [ScoreRow.of(fam, s) for fam, s in report.families.items()]


def compare(report: EvalReport, baseline: EvalReport) -> list[BaselineRow]:
    """Per-family and overall F1 changes against a baseline report."""
    rows = []

    def delta(name: str, now: Scores, before: Scores) -> None:
        for metric in ("f1", "f1_cited", "f1_strict"):
            a, b = getattr(now, metric), getattr(before, metric)
            if a is None and b is None:
                continue
            d = None if a is None or b is None else a - b
            rows.append(BaselineRow(scope=name, metric=metric, baseline=b, now=a, delta=d))

    delta("overall (micro)", report.micro, baseline.micro)
    for fam, now in report.families.items():
        delta(fam, now, baseline.families.get(fam) or Scores())
    return rows


def answers_note(report: EvalReport) -> str | None:
    """What the replayed answers are, when they were imported rather than recorded."""
    recorded = report.info.recorded or {}
    if not recorded.get("imported"):
        return None
    return (
        f"imported answers by {recorded.get('answered_by', '?')}, not API recordings: "
        f"{recorded.get('provenance', '?')}"
    )


def _markdown_row(row: ScoreRow) -> str:
    name = "**all (micro)**" if row.scope == MICRO else row.scope
    cells = [_f(x) for x in row.scores] + [_pct(x) for x in row.rates]
    return f"| {name} | " + " | ".join(cells) + " |"


def markdown(report: EvalReport, baseline_rows: list[BaselineRow] | None = None) -> str:
    info = report.info
    micro, *families = scorecard_rows(report)
    lines = [
        "# caseextract scorecard",
        "",
        f"- model: `{info.model or '?'}` ({info.record_mode or '?'})",
    ]
    if note := answers_note(report):
        lines.append(f"- answers: {note}")
    lines += [
        f"- prompt version `{report.prompt_version}`, schema `{report.schema_name}` "
        f"v{report.schema_version}",
        f"- cases: {report.cases}, extracted: {report.extracted}, empty (no facts): {report.empty}",
        f"- {FIGURES}",
        "",
        "| scope | precision | recall | F1 | F1 cited | F1 strict | omission | spurious "
        "| hallucination |",
        "|---|---|---|---|---|---|---|---|---|",
        _markdown_row(micro),
        f"| macro over families | | | {_f(report.macro.f1_over_families)} | | | | | |",
        f"| macro over cases | | | {_f(report.macro.f1_over_cases)} | | | | | |",
    ]
    lines += [_markdown_row(row) for row in families]
    lines += [
        "",
        f"Grounding rate of extracted facts and article values: {_pct(report.grounding_rate)}",
        "",
        f"Grounding: {report.grounding.get('summary', '–')}",
        "",
        *entity_lines(report),
        "| case | status | gold items | predicted | F1 | F1 cited | F1 strict | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in report.per_case:
        t = case.totals
        note = (case.error or "").replace("|", "/")[:80]
        lines.append(
            f"| {case.case_id} | {case.status} | {t.gold} | {t.pred} | "
            f"{_f(t.f1)} | {_f(t.f1_cited)} | {_f(t.f1_strict)} | {note} |"
        )
    if baseline_rows:
        lines += [
            "",
            "## Against the baseline",
            "",
            "| scope | metric | baseline | now | Δ |",
            "|---|---|---|---|---|",
        ]
        for r in baseline_rows:
            d = "–" if r.delta is None else f"{r.delta:+.3f}"
            lines.append(f"| {r.scope} | {r.metric} | {_f(r.baseline)} | {_f(r.now)} | {d} |")
    return "\n".join(lines) + "\n"


def write(
    report: EvalReport, out_dir: Path, baseline_rows: list[BaselineRow] | None = None
) -> None:
    """``report.json`` (with the baseline rows, when given) and ``scorecard.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if baseline_rows is not None:
        report = report.model_copy(update={"baseline": baseline_rows})
    data = report.to_json()
    (out_dir / "report.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "scorecard.md").write_text(markdown(report, baseline_rows))
