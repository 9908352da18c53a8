"""Scorecards: Markdown and console views of an eval report, and baseline deltas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS = ("precision", "recall", "f1", "f1_cited", "f1_strict")
FIGURES = (
    "F1: items paired by name (near names helped by shared quotes); F1 cited: also pairs "
    "the items left over whose quotes cite the same text, so naming and granularity "
    "differences are told from real misses; F1 strict: paired by name with equal attributes."
)


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def compare(report: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-family and overall F1 changes against a baseline report."""
    rows = []

    def delta(name: str, now: dict[str, Any], before: dict[str, Any]) -> None:
        for metric in ("f1", "f1_cited", "f1_strict"):
            a, b = now.get(metric), before.get(metric)
            if a is None and b is None:
                continue
            d = None if a is None or b is None else a - b
            rows.append({"scope": name, "metric": metric, "baseline": b, "now": a, "delta": d})

    delta("overall (micro)", report["micro"], baseline.get("micro", {}))
    for fam, now in report["families"].items():
        delta(fam, now, baseline.get("families", {}).get(fam, {}))
    return rows


def answers_note(report: dict[str, Any]) -> str | None:
    """What the replayed answers are, when they were imported rather than recorded."""
    recorded = report.get("info", {}).get("recorded") or {}
    if not recorded.get("imported"):
        return None
    return (
        f"imported answers by {recorded.get('answered_by', '?')}, not API recordings: "
        f"{recorded.get('provenance', '?')}"
    )


def _row(name: str, c: dict[str, Any]) -> str:
    return (
        f"| {name} | {_f(c['precision'])} | {_f(c['recall'])} | {_f(c['f1'])} | "
        f"{_f(c.get('f1_cited'))} | {_f(c['f1_strict'])} | {_pct(c['omission_rate'])} | "
        f"{_pct(c['spurious_rate'])} | {_pct(c['hallucination_rate'])} |"
    )


def markdown(report: dict[str, Any], baseline_rows: list[dict[str, Any]] | None = None) -> str:
    info = report.get("info", {})
    lines = [
        "# caseextract scorecard",
        "",
        f"- model: `{info.get('model', '?')}` ({info.get('mode', '?')})",
    ]
    if note := answers_note(report):
        lines.append(f"- answers: {note}")
    lines += [
        f"- prompt version `{report['prompt_version']}`, schema `{report['schema']}` "
        f"v{report['schema_version']}",
        f"- cases: {report['cases']}, extracted: {report['extracted']}, empty (no facts): "
        f"{report.get('empty', 0)}",
        f"- {FIGURES}",
        "",
        "| scope | precision | recall | F1 | F1 cited | F1 strict | omission | spurious "
        "| hallucination |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("**all (micro)**", report["micro"]),
        f"| macro over families | | | {_f(report['macro']['f1_over_families'])} | | | | | |",
        f"| macro over cases | | | {_f(report['macro']['f1_over_cases'])} | | | | | |",
    ]
    for fam, c in report["families"].items():
        lines.append(_row(fam, c))
    lines += [
        "",
        f"Grounding rate of extracted facts and article values: "
        f"{_pct(report.get('grounding_rate'))}",
        "",
        f"Grounding: {(report.get('grounding') or {}).get('summary', '–')}",
        "",
        "| case | status | gold items | predicted | F1 | F1 cited | F1 strict | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in report["per_case"]:
        t = case["totals"]
        note = (case.get("error") or "").replace("|", "/")[:80]
        lines.append(
            f"| {case['case_id']} | {case['status']} | {t['gold']} | {t['pred']} | "
            f"{_f(t['f1'])} | {_f(t.get('f1_cited'))} | {_f(t['f1_strict'])} | {note} |"
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
            d = "–" if r["delta"] is None else f"{r['delta']:+.3f}"
            lines.append(
                f"| {r['scope']} | {r['metric']} | {_f(r['baseline'])} | {_f(r['now'])} | {d} |"
            )
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out_dir: Path, baseline_rows: list | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = dict(report)
    if baseline_rows is not None:
        data["baseline"] = baseline_rows
    (out_dir / "report.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    (out_dir / "scorecard.md").write_text(markdown(report, baseline_rows))
