"""The ``caseextract`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import secrets
from .documents import discover
from .errors import ExtractError
from .llm import MODES, ModelClient, ModelSettings
from .pipeline import Runner, RunSummary, default_task
from .recording import RecordingStore
from .store import ResultWriter, write_csv

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Structured, evidence-backed extraction from clinical case reports.",
)
err = Console(stderr=True)
out = Console()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(secrets.RedactingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDKs' debug logs print request headers; instructor logs every failure we
    # report ourselves. Quiet them unless asked for with -vvv.
    if verbose < 3:
        for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2"):
            logging.getLogger(name).setLevel(max(level, logging.INFO))
        logging.getLogger("instructor").setLevel(logging.CRITICAL)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(secrets.redact(message))}")
    return typer.Exit(code)


Model = Annotated[
    str, typer.Option(envvar="CASEEXTRACT_MODEL", help="Model name as the server knows it.")
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="OPENAI_BASE_URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1"
    ),
]
Mode = Annotated[str, typer.Option(help=f"How instructor asks for structure: {', '.join(MODES)}.")]


RecordMode = Annotated[
    str,
    typer.Option(help="Recorded exchanges: off, replay (no network), record, or cache."),
]
Recordings = Annotated[Path, typer.Option(help="Folder of recorded exchanges.")]
DEFAULT_RECORDINGS = Path("recordings")


def open_store(folder: Path, mode: str) -> RecordingStore | None:
    return None if mode == "off" else RecordingStore(folder, mode)


def build_settings(model: str, base_url: str | None, mode: str, timeout: float,
                   max_tokens: int, http_retries: int, reasks: int) -> ModelSettings:  # fmt: skip
    secrets.register_from_env()
    return ModelSettings(
        model=model,
        base_url=base_url,
        api_key=os.environ.get("OPENAI_API_KEY") or None,
        mode=mode,
        timeout=timeout,
        max_tokens=max_tokens or None,
        http_retries=http_retries,
        reasks=reasks,
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
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
) -> None:
    """Extract one record per document into OUTPUT (JSONL; resumable)."""
    _setup_logging(verbose)
    if fmt not in ("jsonl", "csv"):
        raise _fail("--format must be jsonl or csv")
    if output.suffix == ".csv":
        output = output.with_suffix(".jsonl")
        fmt = "csv"
    try:
        settings = build_settings(model, base_url, mode, timeout, max_tokens, http_retries, reasks)
        task = default_task(prompt_set, schema)
        client = ModelClient(settings, open_store(recordings, record_mode))
    except (ExtractError, ValueError) as exc:
        raise _fail(str(exc)) from None
    paths = discover(inputs)
    if not paths:
        raise _fail("no input documents found")
    summary = execute(task, client, paths, output, concurrency, resume, progress)
    if fmt == "csv":
        rows = write_csv(output, output.with_suffix(".csv"))
        err.print(f"wrote {rows} CSV row(s) to {output.with_suffix('.csv')}")
    print_summary(summary, output)
    if summary.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(1 if summary.failed else 0)


def execute(task, client, paths, output, concurrency, resume, show_progress) -> RunSummary:  # noqa: ANN001
    with ResultWriter(output, resume=resume) as writer:
        bar = Progress(
            TextColumn("[bold]extracting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"), TimeElapsedColumn(),
            console=err, disable=not show_progress, transient=False,
        )  # fmt: skip
        with bar:
            tid = bar.add_task("run", total=len(paths), last="")

            def advance(record: dict) -> None:
                doc = (record or {}).get("document", {}).get("id", "")
                bar.update(tid, advance=1, last=f"{doc} {record.get('status', 'skipped')}")

            runner = Runner(task, client, writer, concurrency, on_result=advance)
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
        table.add_row("[yellow]interrupted[/yellow]", "rerun the same command to resume")
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


def main() -> None:
    app()
