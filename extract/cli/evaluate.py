"""``caseextract eval``: score extractions of the gold cases and print the scorecard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from caseextract.cli.app import (
    CasesDir,
    ContextWindow,
    GoldDir,
    ModelPath,
    NCtx,
    PromptSetOpt,
    SchemaInPrompt,
    SchemaOpt,
    Verbose,
    app,
    check_options,
    err,
    fail,
    out,
    pass_config,
    passes_option,
    setup_logging,
)
from caseextract.cli.app import fmt3 as _fmt
from caseextract.cli.options import (
    SHARED,
    ModelOptions,
    local_model,
    local_preflight,
    model_options,
)
from caseextract.documents import safe_filename
from caseextract.errors import ExtractError
from caseextract.evals import report as rep
from caseextract.evals.gold import DEFAULT_PROMPT_SET, FIXTURES, gold_task
from caseextract.evals.report_model import BaselineRow, EvalReport, load_report
from caseextract.evals.runner import DEFAULT_GOLD, default_recordings, evaluate
from caseextract.pipeline.passes.multipass import PASS_MODES
from rich import box
from rich.markup import escape
from rich.table import Table


@app.command("eval")
@model_options
def eval_(
    out_dir: Annotated[Path, typer.Option("--out", help="Where reports go.")] = Path("eval-out"),
    recordings: Annotated[Path | None, typer.Option(help="Recorded exchanges folder.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="An earlier report.json.")] = None,
    min_f1: Annotated[float, typer.Option(help="Fail below this micro F1 (relaxed).")] = 0.0,
    min_f1_strict: Annotated[float, typer.Option(help="Fail below this strict F1.")] = 0.0,
    live: Annotated[bool, typer.Option(help="Call a real server instead of replaying.")] = False,
    record: Annotated[bool, typer.Option(help="With --live: store the exchanges.")] = False,
    results: Annotated[Path | None, typer.Option(help="Score an existing results JSONL.")] = None,
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    gold: GoldDir = None,
    cases: CasesDir = None,
    schema: SchemaOpt = None,
    prompt_set: PromptSetOpt = None,
    schema_in_prompt: SchemaInPrompt = False,
    options: ModelOptions = SHARED,
    reasks: Annotated[int, typer.Option(help="Re-asks after an invalid answer.")] = 2,
    local: Annotated[bool, typer.Option(help="With --live: the local llama.cpp server.")] = False,
    model_path: ModelPath = None,
    n_ctx: NCtx = 16384,
    passes: Annotated[str, passes_option("single (as the recordings were made)")] = "single",
    context_window: ContextWindow = None,
    verbose: Verbose = 0,
) -> None:
    """Score extractions of the gold cases; offline (replayed) by default."""
    setup_logging(verbose)
    check_options(max_tokens=options.max_tokens, reasks_min0=reasks, n_ctx=n_ctx)
    if passes not in PASS_MODES:
        raise fail(f"--passes must be one of {', '.join(PASS_MODES)}, not {passes!r}")
    try:
        with local_model(live and local, model_path, n_ctx) as server:
            settings = None
            if live:  # a long timeout: a local model takes minutes per gold case
                settings = options.settings(
                    timeout=1200.0,
                    http_retries=3,
                    reasks=reasks,
                    server=server,
                    context_window=context_window,
                )
            # recording: one folder per model and task, <model> for case reports and
            # <model>-<prompt set> for another task (gemma-3-270m-cement_leakage)
            named = gold_task(gold or DEFAULT_GOLD)
            suffix = "" if named.prompt_set == DEFAULT_PROMPT_SET else f"-{named.prompt_set}"
            folder = recordings or default_recordings(named.prompt_set)
            if live and record and recordings is None:
                assert settings is not None
                folder = FIXTURES / "recordings" / safe_filename(settings.model + suffix)
            report = evaluate(
                out_dir,
                folder,
                record_mode=("record" if record else "off") if live else "replay",
                settings=settings,
                gold_dir=gold,
                results=results,
                cases_filter=case,
                preflight=local_preflight(server, settings) if settings else None,
                cases_dir=cases,
                schema=schema,
                prompt_set=prompt_set,
                schema_in_prompt=schema_in_prompt,
                passes=pass_config(passes, context_window, server, False, 2),
            )
    except (ExtractError, FileNotFoundError, ValueError) as exc:
        raise fail(str(exc)) from None
    rows = None
    if baseline is not None:
        try:
            rows = rep.compare(report, load_report(baseline))
        except ValueError as exc:
            raise fail(f"--baseline: {exc}") from None
    rep.write(report, out_dir, rows)
    print_scorecard(report, rows)
    err.print(f"reports: {out_dir / 'report.json'}, {out_dir / 'scorecard.md'}")
    f1, f1s = report.micro.f1 or 0.0, report.micro.f1_strict or 0.0
    if f1 < min_f1 or f1s < min_f1_strict:
        err.print(
            f"[red]below threshold:[/red] F1 {f1:.3f} (min {min_f1}), "
            f"strict {f1s:.3f} (min {min_f1_strict})"
        )
        raise typer.Exit(1)


def print_scorecard(report: EvalReport, rows: list[BaselineRow] | None) -> None:
    # short headers (explained in the caption) so that 80 columns show them whole
    table = Table(
        title=f"scorecard · {report.info.model or '?'} · {report.extracted}/"
        f"{report.cases} cases extracted, {report.empty} empty",
        caption="cited = F1 cited, strict = F1 strict; omit = omission rate, "
        "spur. = spurious rate, hall. = hallucination rate",
        box=box.SIMPLE_HEAD,  # no column rules: nine columns fit 80 characters
        pad_edge=False,
        collapse_padding=True,
    )
    # F1 (paired by name), cited (also by the same quoted text), strict (attributes too);
    # omission, spurious and hallucination rates
    table.add_column("scope", no_wrap=True, min_width=21)
    for col in ("P", "R", "F1", "cited", "strict", "omit", "spur.", "hall."):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rep.scorecard_rows(report):
        name = "ALL (micro)" if row.scope == rep.MICRO else row.scope
        table.add_row(name, *[_fmt(x) for x in row.scores], *[_pct(x) for x in row.rates])
    out.print(table)
    if note := rep.answers_note(report):
        out.print(escape(f"answers: {note}"))
    out.print(escape(rep.FIGURES + " omit, spur., hall.: omission, spurious, hallucination rates."))
    macro = report.macro
    out.print(
        f"macro F1 over families {_fmt(macro.f1_over_families)}, over cases "
        f"{_fmt(macro.f1_over_cases)}"
    )
    if grounding := report.grounding.get("summary"):
        out.print(escape(f"grounding: {grounding}"))
    for line in rep.entity_lines(report):
        if line:
            out.print(escape(line))
    for case in report.per_case:
        if case.status != "ok":
            out.print(escape(f"  {case.case_id}: {case.status} — {case.error}"))
    if rows:
        changed = [r for r in rows if r.delta not in (None, 0)]
        out.print(f"against baseline: {len(changed)} change(s)")
        for r in changed:
            assert r.delta is not None
            colour = "green" if r.delta > 0 else "red"
            out.print(f"  [{colour}]{r.delta:+.3f}[/{colour}] {escape(r.scope)} {r.metric}")


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"
