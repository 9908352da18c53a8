"""``caseextract batch submit|status|collect|cancel``: the provider's Batch API.

Half the price and a separate rate-limit pool, answers within 24 h. The state
lives next to the results (``<results>.batch.json`` and ``<results>.batch/``);
every command can be rerun at any time without sending or paying twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from caseextract import redaction as secrets
from caseextract.batch.collect import collect as collect_batches
from caseextract.batch.submit import Limits, state_path
from caseextract.batch.submit import cancel as cancel_batches
from caseextract.batch.submit import status as batch_status
from caseextract.batch.submit import submit as submit_batches
from caseextract.cli.app import Api, BaseUrl, Mode, Model, app, err, fail, setup_logging
from caseextract.cli.options import ModelOptions
from caseextract.documents import discover
from caseextract.errors import ExtractError
from caseextract.llm.batchapi import BatchAPI
from caseextract.llm.models import DEFAULT_MODEL
from caseextract.tasks import default_task
from rich.markup import escape
from rich.table import Table

batch_app = typer.Typer(
    no_args_is_help=True,
    help="Run through the provider's Batch API (half price, results within 24 h).",
)
app.add_typer(batch_app, name="batch")

Results = Annotated[Path, typer.Option("-o", "--output", help="JSONL results (state beside).")]
Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True)]


def _api(results: Path, base_url: str | None, timeout: float = 120.0) -> BatchAPI:
    from caseextract.batch.submit import BatchJob

    job = BatchJob.load(results)
    s = job.data["settings"]
    api = s.get("api", "chat")  # state written before the Responses path: chat lines
    options = ModelOptions(
        s["model"], base_url, s["mode"], max_tokens=s["max_tokens"] or 0, api=api
    )
    settings = options.settings(timeout=timeout, http_retries=s["http_retries"], reasks=s["reasks"])
    return BatchAPI(settings)


@batch_app.command("submit")
def submit(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or globs (.txt .md .pdf).")],
    output: Results = Path("results.jsonl"),
    model: Model = DEFAULT_MODEL,
    base_url: BaseUrl = None,
    instructor_mode: Mode = "tools",
    api: Api = "auto",
    timeout: Annotated[float, typer.Option(help="Seconds per HTTP request.")] = 120.0,
    max_tokens: Annotated[int, typer.Option(help="Answer limit; 0 = server default.")] = 8192,
    http_retries: Annotated[
        int, typer.Option(help="Times a line lost in a batch (5xx, 429) is sent again.")
    ] = 3,
    reasks: Annotated[int, typer.Option(help="Re-asks after an invalid answer.")] = 2,
    prompt_set: Annotated[str, typer.Option(help="Prompt set name or folder.")] = "case_report",
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
    max_requests: Annotated[
        int, typer.Option(help="Requests per input file (the provider allows 50,000).")
    ] = 50_000,
    max_file_mb: Annotated[
        float, typer.Option(help="Megabytes per input file (the provider allows 200).")
    ] = 200.0,
    verbose: Verbose = 0,
) -> None:
    """Upload the requests `run` would send for each document and create the batch(es)."""
    setup_logging(verbose)
    paths = discover(inputs)
    if not paths:
        raise fail("no input documents found")
    limits = Limits(max(1, min(max_requests, 50_000)), int(min(max_file_mb, 200.0) * 1024 * 1024))
    try:
        options = ModelOptions(model, base_url, instructor_mode, max_tokens=max_tokens, api=api)
        settings = options.settings(timeout=timeout, http_retries=http_retries, reasks=reasks)
        task = default_task(prompt_set, schema)
        api = BatchAPI(settings)
        result = submit_batches(paths, output, task, settings, prompt_set, schema, api, limits)
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    err.print(
        f"submitted {len(result.submitted)} document(s) in {len(result.batches)} batch(es); "
        f"{len(result.skipped)} already done or in a batch"
    )
    for b in result.batches:
        err.print(f"  {b['id']}: {b['requests']} request(s), {b['bytes']:,} bytes ({b['file']})")
    for path, reason in result.refused:
        err.print(f"[red]✗[/red] {escape(f'{path}: [input] {reason}')}")
    err.print(f"state: {state_path(output)}; then: caseextract batch status -o {output}")


@batch_app.command("status")
def status(output: Results = Path("results.jsonl"), base_url: BaseUrl = None) -> None:
    """Show each batch's progress as the provider reports it."""
    try:
        rows = batch_status(output, _api(output, base_url))
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"batches of {output}")
    for col in ("batch", "status", "requests", "completed", "failed", "collected"):
        table.add_column(col)
    for b in rows:
        counts = b.get("request_counts") or {}
        table.add_row(
            str(b["id"] or "(not created yet)"),
            str(b.get("status") or "-"),
            str(b["requests"]),
            str(counts.get("completed", "-")),
            str(counts.get("failed", "-")),
            "yes" if b["collected"] else "no",
        )
    err.print(table)


@batch_app.command("collect")
def collect(
    output: Results = Path("results.jsonl"),
    base_url: BaseUrl = None,
    direct: Annotated[
        bool, typer.Option(help="Send re-asks and lost lines to the server now, not in a batch.")
    ] = False,
    prompt_set: Annotated[str | None, typer.Option(help="As submitted (default).")] = None,
    verbose: Verbose = 0,
) -> None:
    """Download finished batches, validate and ground each answer as `run` does, append
    result lines, and send re-asks and lost lines to a follow-up batch (or --direct)."""
    from caseextract.batch.submit import BatchJob

    setup_logging(verbose)
    try:
        job = BatchJob.load(output)
        task = default_task(prompt_set or job.data["prompt_set"], job.data.get("schema"))
        api = _api(output, base_url)
        secrets.register_from_env()
        key = api.settings.api_key
        r = collect_batches(output, task, api, key, base_url, direct)
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    err.print(
        f"collected {len(r.collected)} batch(es): {r.ok} extracted, {r.failed} failed, "
        f"{r.reasks} re-ask(s), {r.resent} line(s) sent again, {r.direct} by direct call"
    )
    for note in r.notes:
        err.print(f"[yellow]![/yellow] {escape(secrets.redact(note))}")
    for b in r.followups:
        err.print(f"  follow-up {b['id']}: {b['requests']} request(s)")
    if r.waiting:
        err.print(f"still running: {', '.join(r.waiting)}; collect again later")
    for doc_id, kind, message in r.failures[:20]:
        err.print(f"[red]✗[/red] {escape(f'{doc_id}: [{kind}] ' + secrets.redact(message))}")
    if r.failed:
        raise typer.Exit(1)


@batch_app.command("cancel")
def cancel(output: Results = Path("results.jsonl"), base_url: BaseUrl = None) -> None:
    """Cancel the running batches; `collect` then keeps what was answered, and
    `submit` again sends what is missing."""
    try:
        cancelled = cancel_batches(output, _api(output, base_url))
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    err.print(f"cancelling {len(cancelled)} batch(es): {', '.join(cancelled) or '-'}")
