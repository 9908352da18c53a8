"""``caseextract run`` and ``caseextract schema``: extraction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from caseextract import redaction as secrets
from caseextract.cli.app import (
    RUN_RECORDINGS,
    ContextWindow,
    ModelPath,
    NCtx,
    Recordings,
    RecordMode,
    SchemaInPrompt,
    Verbose,
    app,
    check_options,
    err,
    fail,
    open_store,
    out,
    pass_config,
    passes_option,
    setup_logging,
)
from caseextract.cli.options import (
    SHARED,
    ModelOptions,
    local_model,
    local_preflight,
    model_options,
)
from caseextract.documents import CONVERT_HINTS, discover_batch
from caseextract.errors import ExtractError
from caseextract.llm import ModelClient
from caseextract.pipeline.passes.multipass import PASS_MODES, PassConfig
from caseextract.pipeline.runner import Runner, RunSummary
from caseextract.records import ResultRecord
from caseextract.safetext import printable
from caseextract.store import ResultWriter, write_csv
from caseextract.tasks import Task, default_task
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@app.command()
@model_options
def run(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or globs (.txt .md .pdf).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL results.")] = Path(
        "results.jsonl"
    ),
    options: ModelOptions = SHARED,
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request, in all.")] = 120.0,
    http_retries: Annotated[int, typer.Option(help="Retries of a failed HTTP request.")] = 3,
    reasks: Annotated[int, typer.Option(help="Re-asks after an invalid answer.")] = 2,
    rpm: Annotated[
        float | None,
        typer.Option(help="Requests per minute to stay under (default: read from the server)."),
    ] = None,
    tpm: Annotated[
        float | None,
        typer.Option(help="Tokens per minute to stay under, estimated before sending."),
    ] = None,
    rate_limit_wait: Annotated[
        float, typer.Option(help="Seconds a document may wait out 429s (not counted as retries).")
    ] = 900.0,
    concurrency: Annotated[
        int, typer.Option("-j", "--concurrency", help="Documents extracted at a time.")
    ] = 4,
    resume: Annotated[bool, typer.Option(help="Skip documents already done in OUTPUT.")] = True,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, or csv (also writes a CSV).")
    ] = "jsonl",
    prompt_set: Annotated[str, typer.Option(help="Prompt set name or folder.")] = "case_report",
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
    schema_in_prompt: SchemaInPrompt = False,
    record_mode: RecordMode = "off",
    recordings: Recordings = RUN_RECORDINGS,
    local: Annotated[
        bool,
        typer.Option(help="Start a local llama.cpp server (no key, nothing leaves the machine)."),
    ] = False,
    model_path: ModelPath = None,
    n_ctx: NCtx = 16384,
    passes: Annotated[str, passes_option("auto")] = "auto",
    context_window: ContextWindow = None,
    max_passes: Annotated[
        int, typer.Option(help="Model calls one document may take in passes, splits included.")
    ] = 100,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: Verbose = 0,
) -> None:
    """Extract one record per document into OUTPUT (JSONL; resumable)."""
    setup_logging(verbose)
    check_options(
        concurrency=concurrency,
        timeout=timeout,
        max_tokens_min0=options.max_tokens,
        http_retries_min0=http_retries,
        reasks_min0=reasks,
        n_ctx=n_ctx,
    )
    if fmt not in ("jsonl", "csv"):
        raise fail("--format must be jsonl or csv")
    if passes not in PASS_MODES:
        raise fail(f"--passes must be one of {', '.join(PASS_MODES)}, not {passes!r}")
    if output.suffix == ".csv":
        output = output.with_suffix(".jsonl")
        fmt = "csv"
    batch = discover_batch(inputs)
    if not batch.paths:
        print_skipped(batch.skipped)
        raise fail("no input documents found (.txt, .md, .pdf)")
    try:
        with local_model(local, model_path, n_ctx) as server:
            settings = options.settings(
                timeout=timeout,
                http_retries=http_retries,
                reasks=reasks,
                server=server,
                context_window=context_window,
                rpm=rpm,
                tpm=tpm,
                rate_limit_wait=rate_limit_wait,
            )
            task = default_task(prompt_set, schema, schema_in_prompt)
            client = ModelClient(settings, open_store(recordings, record_mode))
            multi = pass_config(passes, context_window, server, resume, concurrency, max_passes)
            summary = execute(
                task,
                client,
                batch.paths,
                output,
                concurrency,
                resume,
                progress,
                local_preflight(server, settings),
                batch.ids,
                multi,
            )
    except (ExtractError, ValueError) as exc:
        raise fail(str(exc)) from None
    if fmt == "csv":
        rows = write_csv(output, output.with_suffix(".csv"))
        err.print(f"wrote {rows} CSV row(s) to {output.with_suffix('.csv')}")
    print_summary(summary, output, len(batch.skipped))
    print_skipped(batch.skipped)
    if summary.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if summary.failed or summary.empty else 0)


def execute(
    task: Task,
    client: ModelClient,
    paths: list[Path],
    output: Path,
    concurrency: int,
    resume: bool,
    show_progress: bool,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
    ids: dict[Path, str] | None = None,
    passes: PassConfig | None = None,
) -> RunSummary:
    with ResultWriter(output, resume=resume) as writer:
        for note in writer.notes:
            err.print(f"[yellow]warning:[/yellow] {escape(printable(note))}", soft_wrap=True)
        bar = Progress(
            TextColumn("[bold]extracting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            console=err,
            disable=not show_progress,
            transient=False,
        )
        with bar:
            tid = bar.add_task("run", total=len(paths), last="")

            def advance(record: ResultRecord | None) -> None:
                last = "skipped" if record is None else f"{record.document.id} {record.status}"
                last = escape(printable(last))
                bar.update(tid, advance=1, last=last)

            runner = Runner(
                task,
                client,
                writer,
                concurrency,
                on_result=advance,
                preflight=preflight,
                ids=ids,
                passes=passes,
            )
            try:
                asyncio.run(runner.run(paths))
            except KeyboardInterrupt:
                runner.summary.interrupted = True
    return runner.summary


def print_summary(s: RunSummary, output: Path, unsupported: int = 0) -> None:
    table = Table(title="caseextract run", show_header=False)
    table.add_row("documents", str(s.total))
    table.add_row("extracted", f"[green]{s.ok}[/green]")
    if s.empty:
        table.add_row("empty (no facts; retried on resume)", f"[yellow]{s.empty}[/yellow]")
    table.add_row("failed", f"[red]{s.failed}[/red]" if s.failed else "0")
    table.add_row("already done (skipped)", str(s.skipped))
    if unsupported:
        table.add_row(
            "[yellow]not read (not .txt/.md/.pdf)[/yellow]", f"{unsupported}, listed below"
        )
    table.add_row("model calls (incl. re-asks)", str(s.attempts))
    table.add_row("HTTP requests (incl. retries)", str(s.http_requests))
    table.add_row("tokens prompt / completion", f"{s.prompt_tokens:,} / {s.completion_tokens:,}")
    if s.cached_tokens or s.reasoning_tokens:
        table.add_row(
            "of which cached prompt / reasoning",
            f"{s.cached_tokens:,} / {s.reasoning_tokens:,}",
        )
    g = s.grounding
    if g.facts:
        table.add_row("grounded facts and values", f"{g.grounded} of {g.facts}")
    for kind, n in sorted(s.failures.items()):
        table.add_row(f"failed: {kind}", str(n))
    table.add_row("results", str(output))
    if s.interrupted:
        left = s.total - s.ok - s.empty - s.failed - s.skipped
        table.add_row(
            "[yellow]interrupted[/yellow]",
            f"{left} not finished (in flight or not started); rerun the same command to resume",
        )
    err.print(table)
    if g.facts:
        err.print(escape(f"grounding: {g.describe()}"))
    for doc_id, reason in s.empty_docs[:20]:
        err.print(f"[yellow]∅[/yellow] {escape(f'{doc_id}: [empty] {reason}')}")
    for doc_id, kind, message in s.failed_docs[:20]:
        line = printable(f"{doc_id}: [{kind}] " + secrets.redact(message or ""))
        err.print(f"[red]✗[/red] {escape(line)}", soft_wrap=True)
    if len(s.failed_docs) > 20:
        err.print(f"… and {len(s.failed_docs) - 20} more failures in {output}")


def print_skipped(skipped: list[Path], limit: int = 20) -> None:
    """Files in the folders given that are not text, Markdown or PDF: named, never silent."""
    if not skipped:
        return
    err.print(f"[yellow]skipped {len(skipped)} file(s) that are not .txt, .md or .pdf:[/yellow]")
    for path in skipped[:limit]:
        hint = CONVERT_HINTS.get(path.suffix.lower(), "not a supported kind of file")
        err.print(escape(f"  {path}: {hint}"), soft_wrap=True)
    if len(skipped) > limit:
        err.print(f"  … and {len(skipped) - limit} more")


@app.command()
def schema(
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
) -> None:
    """Print the JSON Schema of the response model."""
    try:
        task = default_task(schema=schema)
    except ExtractError as exc:
        raise fail(str(exc)) from None
    out.print_json(json.dumps(task.response_model.model_json_schema()))
