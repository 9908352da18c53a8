"""``caseextract run`` and ``caseextract schema``: extraction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import redaction as secrets
from ..documents import discover
from ..errors import ExtractError
from ..llm import ModelClient
from ..passes import PASS_MODES, PassConfig
from ..pipeline import Runner, RunSummary, Task, default_task
from ..records import ResultRecord
from ..store import ResultWriter, write_csv
from .app import (
    DEFAULT_RECORDINGS,
    BaseUrl,
    ContextWindow,
    Mode,
    Model,
    Recordings,
    RecordMode,
    _fail,
    _setup_logging,
    app,
    build_settings,
    err,
    open_store,
    out,
    pass_config,
    passes_option,
    start_local,
)


@app.command()
def run(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or globs (.txt .md .pdf).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL results.")] = Path(
        "results.jsonl"
    ),
    model: Model = "gpt-4o-mini",
    base_url: BaseUrl = None,
    mode: Mode = "tools",
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.")] = 120.0,
    max_tokens: Annotated[int, typer.Option(help="Answer limit; 0 = server default.")] = 8192,
    http_retries: Annotated[int, typer.Option(help="Retries of a failed HTTP request.")] = 3,
    reasks: Annotated[int, typer.Option(help="Re-asks after an invalid answer.")] = 2,
    concurrency: Annotated[int, typer.Option("-j", "--concurrency")] = 4,
    resume: Annotated[bool, typer.Option(help="Skip documents already done in OUTPUT.")] = True,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl, or csv (also writes a CSV).")
    ] = "jsonl",
    prompt_set: Annotated[str, typer.Option(help="Prompt set name or folder.")] = "case_report",
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
    record_mode: RecordMode = "off",
    recordings: Recordings = DEFAULT_RECORDINGS,
    local: Annotated[
        bool,
        typer.Option(help="Start a local llama.cpp server (no key, nothing leaves the machine)."),
    ] = False,
    model_path: Annotated[
        Path | None, typer.Option(help="GGUF model for --local (default: bundled Gemma 3 270M).")
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window for --local, in tokens.")] = 16384,
    passes: Annotated[str, passes_option("auto")] = "auto",
    context_window: ContextWindow = None,
    max_passes: Annotated[
        int, typer.Option(help="Model calls one document may take in passes, splits included.")
    ] = 100,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
) -> None:
    """Extract one record per document into OUTPUT (JSONL; resumable)."""
    _setup_logging(verbose)
    if fmt not in ("jsonl", "csv"):
        raise _fail("--format must be jsonl or csv")
    if passes not in PASS_MODES:
        raise _fail(f"--passes must be one of {', '.join(PASS_MODES)}, not {passes!r}")
    if output.suffix == ".csv":
        output = output.with_suffix(".jsonl")
        fmt = "csv"
    paths = discover(inputs)
    if not paths:
        raise _fail("no input documents found")
    server = None
    try:
        if local:
            server = start_local(model_path, n_ctx)
            base_url, model = server.base_url, server.alias
        settings = build_settings(model, base_url, mode, timeout, max_tokens, http_retries, reasks)
        task = default_task(prompt_set, schema)
        client = ModelClient(settings, open_store(recordings, record_mode))
        preflight = server.preflight(settings.max_tokens) if server is not None else None
        multi = pass_config(passes, context_window, server, resume, concurrency, max_passes)
        summary = execute(
            task, client, paths, output, concurrency, resume, progress, preflight, multi
        )
    except (ExtractError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        if server is not None:
            server.stop()
    if fmt == "csv":
        rows = write_csv(output, output.with_suffix(".csv"))
        err.print(f"wrote {rows} CSV row(s) to {output.with_suffix('.csv')}")
    print_summary(summary, output)
    if summary.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if summary.failed else 0)


def execute(
    task: Task,
    client: ModelClient,
    paths: list[Path],
    output: Path,
    concurrency: int,
    resume: bool,
    show_progress: bool,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
    passes: PassConfig | None = None,
) -> RunSummary:
    with ResultWriter(output, resume=resume) as writer:
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
                bar.update(tid, advance=1, last=last)

            runner = Runner(
                task,
                client,
                writer,
                concurrency,
                on_result=advance,
                preflight=preflight,
                passes=passes,
            )
            try:
                asyncio.run(runner.run(paths))
            except KeyboardInterrupt:
                runner.summary.interrupted = True
    return runner.summary


def print_summary(s: RunSummary, output: Path) -> None:
    table = Table(title="caseextract run", show_header=False)
    table.add_row("documents", str(s.total))
    table.add_row("extracted", f"[green]{s.ok}[/green]")
    table.add_row("failed", f"[red]{s.failed}[/red]" if s.failed else "0")
    table.add_row("already done (skipped)", str(s.skipped))
    table.add_row("model calls (incl. re-asks)", str(s.attempts))
    table.add_row("HTTP requests (incl. retries)", str(s.http_requests))
    table.add_row("tokens prompt / completion", f"{s.prompt_tokens:,} / {s.completion_tokens:,}")
    g = s.grounding
    if g.facts:
        table.add_row(
            "grounding (facts)",
            f"{g.facts} facts, {g.ungrounded_facts} ungrounded, {g.number_mismatches} number "
            f"mismatches; quotes exact {g.exact} / normalised {g.normalised} / fuzzy {g.fuzzy}"
            f" / not found {g.not_found}",
        )
    for kind, n in sorted(s.failures.items()):
        table.add_row(f"failed: {kind}", str(n))
    table.add_row("results", str(output))
    if s.interrupted:
        left = s.total - s.ok - s.failed - s.skipped
        table.add_row(
            "[yellow]interrupted[/yellow]",
            f"{left} not finished (in flight or not started); rerun the same command to resume",
        )
    err.print(table)
    for doc_id, kind, message in s.failed_docs[:20]:
        err.print(f"[red]✗[/red] {escape(f'{doc_id}: [{kind}] ' + secrets.redact(message or ''))}")
    if len(s.failed_docs) > 20:
        err.print(f"… and {len(s.failed_docs) - 20} more failures in {output}")


@app.command()
def schema(
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
) -> None:
    """Print the JSON Schema of the response model."""
    try:
        task = default_task(schema=schema)
    except ExtractError as exc:
        raise _fail(str(exc)) from None
    out.print_json(json.dumps(task.response_model.model_json_schema()))
