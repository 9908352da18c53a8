"""The ``caseextract`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
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
from .local import LocalServer
from .pipeline import Runner, RunSummary, Task, default_task
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


def build_settings(
    model: str,
    base_url: str | None,
    mode: str,
    timeout: float,
    max_tokens: int,
    http_retries: int,
    reasks: int,
) -> ModelSettings:
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
    local: Annotated[
        bool,
        typer.Option(help="Start a local llama.cpp server (no key, nothing leaves the machine)."),
    ] = False,
    model_path: Annotated[
        Path | None, typer.Option(help="GGUF model for --local (default: bundled Gemma 3 270M).")
    ] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window for --local, in tokens.")] = 16384,
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
        summary = execute(task, client, paths, output, concurrency, resume, progress, preflight)
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


def start_local(model_path: Path | None, n_ctx: int) -> LocalServer:
    """Start llama.cpp's server; SIGTERM then ends us through ``finally`` (no orphan)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    err.print("starting the local llama.cpp server …")
    server = LocalServer(model_path, n_ctx).start()
    err.print(f"local model {server.alias} at {server.base_url}")
    return server


def execute(
    task: Task,
    client: ModelClient,
    paths: list[Path],
    output: Path,
    concurrency: int,
    resume: bool,
    show_progress: bool,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
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

            def advance(record: dict) -> None:
                doc = (record or {}).get("document", {}).get("id", "")
                bar.update(tid, advance=1, last=f"{doc} {record.get('status', 'skipped')}")

            runner = Runner(
                task, client, writer, concurrency, on_result=advance, preflight=preflight
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


def main() -> None:
    app()


# ---------------------------------------------------------------- eval / diff / show / cost

STATUS_STYLE = {"match": "green", "wrong_value": "yellow", "missed": "red", "spurious": "magenta"}


@app.command("eval")
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
    model: Model = "gpt-4o-mini",
    base_url: BaseUrl = None,
    mode: Mode = "tools",
    max_tokens: Annotated[int, typer.Option()] = 8192,
    reasks: Annotated[int, typer.Option()] = 2,
    local: Annotated[bool, typer.Option(help="With --live: the local llama.cpp server.")] = False,
    model_path: Annotated[Path | None, typer.Option(help="GGUF model for --local.")] = None,
    n_ctx: Annotated[int, typer.Option(help="Context window for --local.")] = 16384,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
) -> None:
    """Score extractions of the gold cases; offline (replayed) by default."""
    from evals import report as rep
    from evals.gold import FIXTURES
    from evals.runner import DEFAULT_RECORDINGS, evaluate

    from .documents import safe_filename

    _setup_logging(verbose)
    settings = None
    store_mode = "replay"
    server = None
    try:
        if live:
            if local:
                server = start_local(model_path, n_ctx)
                base_url, model = server.base_url, server.alias
            settings = build_settings(model, base_url, mode, 1200.0, max_tokens, 3, reasks)
            store_mode = "record" if record else "off"
        folder = recordings or DEFAULT_RECORDINGS
        if live and record and recordings is None:
            folder = FIXTURES / "recordings" / safe_filename(model)
        preflight = None
        if server is not None and settings is not None:
            preflight = server.preflight(settings.max_tokens)
        report = evaluate(
            out_dir,
            folder,
            store_mode,
            settings,
            results=results,
            cases_filter=case,
            preflight=preflight,
        )
    except (ExtractError, FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    finally:
        if server is not None:
            server.stop()
    rows = None
    if baseline is not None:
        rows = rep.compare(report, json.loads(baseline.read_text(encoding="utf-8")))
    rep.write(report, out_dir, rows)
    print_scorecard(report, rows)
    err.print(f"reports: {out_dir / 'report.json'}, {out_dir / 'scorecard.md'}")
    m = report["micro"]
    f1, f1s = m["f1"] or 0.0, m["f1_strict"] or 0.0
    if f1 < min_f1 or f1s < min_f1_strict:
        err.print(
            f"[red]below threshold:[/red] F1 {f1:.3f} (min {min_f1}), "
            f"strict {f1s:.3f} (min {min_f1_strict})"
        )
        raise typer.Exit(1)


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def print_scorecard(report: dict, rows: list | None) -> None:
    info = report.get("info", {})
    table = Table(
        title=f"scorecard · {info.get('model', '?')} · {report['extracted']}/"
        f"{report['cases']} cases extracted"
    )
    for col in ("scope", "P", "R", "F1", "F1 strict", "omission", "spurious", "halluc."):
        if col == "scope":
            table.add_column(col, no_wrap=True, min_width=22)
        else:
            table.add_column(col, justify="right")

    def add(name: str, c: dict) -> None:
        def pct(x: float | None) -> str:
            return "–" if x is None else f"{100 * x:.0f}%"

        table.add_row(
            name,
            _fmt(c["precision"]),
            _fmt(c["recall"]),
            _fmt(c["f1"]),
            _fmt(c["f1_strict"]),
            pct(c["omission_rate"]),
            pct(c["spurious_rate"]),
            pct(c["hallucination_rate"]),
        )

    add("ALL (micro)", report["micro"])
    for fam, c in report["families"].items():
        add(fam, c)
    out.print(table)
    macro = report["macro"]
    out.print(
        f"macro F1 over families {_fmt(macro['f1_over_families'])}, over cases "
        f"{_fmt(macro['f1_over_cases'])}"
    )
    for case in report["per_case"]:
        if case["status"] != "ok":
            out.print(escape(f"  {case['case_id']}: {case['status']} — {case.get('error')}"))
    if rows:
        changed = [r for r in rows if r["delta"] not in (None, 0)]
        out.print(f"against baseline: {len(changed)} change(s)")
        for r in changed:
            colour = "green" if r["delta"] > 0 else "red"
            out.print(
                f"  [{colour}]{r['delta']:+.3f}[/{colour}] {escape(r['scope'])} {r['metric']}"
            )


@app.command()
def diff(
    results: Annotated[Path, typer.Argument(help="Results JSONL (from run or eval).")],
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write side-by-side HTML (file or folder).")
    ] = None,
    all_fields: Annotated[bool, typer.Option("--all", help="Show matches too.")] = False,
) -> None:
    """Field-by-field review of results against the gold labels."""
    from evals.gold import load_gold_set
    from evals.runner import records_by_id, score_case

    task = default_task()
    records = records_by_id(results)
    cases = [c for c in load_gold_set(model=task.response_model) if c.case_id in records]
    if case:
        cases = [c for c in cases if c.case_id in case]
    if not cases:
        raise _fail(f"no result in {results} has a gold case")
    pages = []
    for gold in cases:
        scored = score_case(gold, records[gold.case_id], task.response_model)
        t = scored.counts.summary()
        out.rule(
            f"{gold.case_id} · {scored.status} · F1 {_fmt(t['f1'])} · strict {_fmt(t['f1_strict'])}"
        )
        if scored.error:
            out.print(escape(f"error: {scored.error}"))
        for e in scored.entries:
            if e.status.value == "match" and not all_fields and e.pred_grounded is not False:
                continue
            style = STATUS_STYLE[e.status.value]
            flag = " [red](ungrounded)[/red]" if e.pred_grounded is False else ""
            line = f"{e.family} [{e.unit}]: gold={e.gold!r} predicted={e.pred!r}"
            line += f" — {e.note}" if e.note else ""
            out.print(f"[{style}]{e.status.value:>11}[/{style}]{flag} {escape(line)}")
        pages.append((gold, scored))
    if html is not None:
        written = write_diff_pages(pages, html)
        err.print(f"wrote {', '.join(str(p) for p in written)}")


def write_diff_pages(pages: list, target: Path) -> list[Path]:
    from .documents import safe_filename
    from .html import render_diff

    written = []
    single = len(pages) == 1 and target.suffix == ".html"
    for gold, scored in pages:
        path = target if single else target / f"{safe_filename(gold.case_id)}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        t = scored.counts.summary()
        sub = f"status {scored.status} · F1 {_fmt(t['f1'])} · strict {_fmt(t['f1_strict'])}"
        entries = [e.to_dict() for e in scored.entries]
        path.write_text(render_diff(gold.case_id, entries, gold.text, sub), encoding="utf-8")
        written.append(path)
    return written


@app.command()
def show(
    results: Annotated[Path, typer.Argument(help="Results JSONL.")],
    source: Annotated[Path, typer.Option(help="The source document of the record.")],
    html: Annotated[Path, typer.Option(help="Output HTML file.")] = Path("evidence.html"),
    doc: Annotated[str | None, typer.Option(help="Document id (default: from --source).")] = None,
) -> None:
    """Write an HTML page with every evidence span highlighted in its source."""
    from .documents import load_document
    from .html import render_record
    from .store import read_records

    try:
        document = load_document(source)
    except ExtractError as exc:
        raise _fail(str(exc)) from None
    wanted = doc or document.id
    record = next((r for r in read_records(results) if r["document"]["id"] == wanted), None)
    if record is None:
        raise _fail(f"no record for {wanted!r} in {results}")
    if record["document"].get("sha256") not in (None, document.sha256):
        err.print("[yellow]warning:[/yellow] the source differs from the one extracted")
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(render_record(record, document.text), encoding="utf-8")
    err.print(f"wrote {html}")


@app.command()
def cost(
    results: Annotated[list[Path] | None, typer.Argument(help="Results JSONL files.")] = None,
    recordings: Annotated[Path | None, typer.Option(help="Recorded exchanges folder.")] = None,
    prices: Annotated[Path | None, typer.Option(help="TOML price table (per 1M tokens).")] = None,
) -> None:
    """Tokens per model (re-asks included), and cost from YOUR price table."""
    from .ledger import ledger_from_recordings, ledger_from_results, load_prices

    try:
        table_prices = load_prices(prices) if prices else {}
    except (OSError, ValueError) as exc:
        raise _fail(f"prices: {exc}") from None
    sources = []
    if results:
        sources.append(("results", ledger_from_results(results)))
    if recordings:
        sources.append(("recordings", ledger_from_recordings(recordings)))
    if not sources:
        raise _fail("give results files and/or --recordings")
    for name, rows in sources:
        table = Table(title=f"tokens from {name}")
        for col in ("model", "documents", "model calls", "prompt", "completion", "cost"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for model_name, r in sorted(rows.items()):
            price = table_prices.get(model_name)
            money = "no price given"
            if price:
                money = f"{price.cost(r.prompt_tokens, r.completion_tokens):.4f} {price.currency}"
            table.add_row(
                model_name,
                str(r.documents),
                str(r.calls),
                f"{r.prompt_tokens:,}",
                f"{r.completion_tokens:,}",
                money,
            )
        out.print(table)
