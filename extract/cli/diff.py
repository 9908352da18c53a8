"""``caseextract diff``, ``show`` and ``cost``: what people look at after a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from caseextract.cli.app import CasesDir, GoldDir, SchemaOpt, app, err, fail, out
from caseextract.cli.app import fmt3 as _fmt
from caseextract.errors import ExtractError
from rich.markup import escape
from rich.table import Table

STATUS_STYLE = {"match": "green", "wrong_value": "yellow", "missed": "red", "spurious": "magenta"}


@app.command()
def diff(
    results: Annotated[Path, typer.Argument(help="Results JSONL (from run or eval).")],
    case: Annotated[list[str] | None, typer.Option(help="Only these case ids.")] = None,
    html: Annotated[
        Path | None, typer.Option(help="Write side-by-side HTML (file or folder).")
    ] = None,
    all_fields: Annotated[bool, typer.Option("--all", help="Show matches too.")] = False,
    gold: GoldDir = None,
    cases: CasesDir = None,
    schema: SchemaOpt = None,
) -> None:
    """Field-by-field review of results against the gold labels."""
    from caseextract.evals.gold import load_gold_set
    from caseextract.evals.runner import DEFAULT_GOLD, records_by_id, resolve_task, score_case

    gold_dir = gold or DEFAULT_GOLD
    try:
        task, _ = resolve_task(gold_dir, schema)
        records = records_by_id(results)
        check_results_task(records, task.response_model.__name__, results, gold_dir)
        golds = load_gold_set(gold_dir, task.response_model, cases)
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    cases_ = [c for c in golds if c.case_id in records]
    if case:
        cases_ = [c for c in cases_ if c.case_id in case]
    if not cases_:
        raise fail(f"no result in {results} has a gold case in {gold_dir}")
    pages = []
    for gold in cases_:
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


def check_results_task(records: dict, schema_name: str, results: Path, gold_dir: Path) -> None:
    """Results made for another task than the gold's: one clear error, not a traceback."""
    made = {(r.schema_name, r.prompt_set) for r in records.values() if r.schema_name}
    if made and schema_name not in {name for name, _ in made}:
        found = ", ".join(f"{n} (prompt set {p})" for n, p in sorted(made, key=str))
        raise ExtractError(
            f"{results} holds results of schema {found}; the gold in {gold_dir} is for "
            f"{schema_name}: pass --gold DIR with gold files for that task"
        )


def write_diff_pages(pages: list, target: Path) -> list[Path]:
    from caseextract.documents import safe_filename
    from caseextract.review.html import render_diff

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
    from caseextract.documents import load_document
    from caseextract.review.html import render_record
    from caseextract.store import read_records

    try:
        document = load_document(source)
    except ExtractError as exc:
        raise fail(str(exc)) from None
    wanted = doc or document.id
    records = list(read_records(results))
    record = next((r for r in records if r.document.id == wanted), None)
    if record is None and doc is None:  # a file found in a folder has a path-like id
        same = [r for r in records if r.document.sha256 == document.sha256]
        record = same[-1] if same else None
    if record is None:
        raise fail(f"no record for {wanted!r} in {results} (give its id with --doc)")
    if record.document.sha256 not in (None, document.sha256):
        err.print("[yellow]warning:[/yellow] the source differs from the one extracted")
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(render_record(record, document.text), encoding="utf-8")
    err.print(f"wrote {html}")


@app.command()
def cost(
    results: Annotated[list[Path] | None, typer.Argument(help="Results JSONL files.")] = None,
    recordings: Annotated[Path | None, typer.Option(help="Recorded exchanges folder.")] = None,
    prices: Annotated[
        Path | None,
        typer.Option(help="TOML price table (per 1M tokens; batch_input_per_million …)."),
    ] = None,
) -> None:
    """Tokens per model (re-asks included; cached prompt and reasoning tokens shown as parts
    of prompt and completion), and cost from YOUR price table."""
    from caseextract.review.ledger import ledger_from_recordings, ledger_from_results, load_prices

    try:
        table_prices = load_prices(prices) if prices else {}
    except (OSError, ValueError) as exc:
        raise fail(f"prices: {exc}") from None
    sources = []
    if results:
        sources.append(("results", ledger_from_results(results)))
    if recordings:
        try:
            sources.append(("recordings", ledger_from_recordings(recordings)))
        except ExtractError as exc:  # a corrupt recording, named
            raise fail(str(exc)) from None
    if not sources:
        raise fail("give results files and/or --recordings")
    for name, rows in sources:
        table = Table(title=f"tokens from {name}")
        batched = any(r.batch_prompt_tokens or r.batch_completion_tokens for r in rows.values())
        cols = ["model", "documents", "model calls", "prompt", "completion"]
        cols += ["batch in / out"] if batched else []
        for col in [*cols, "cost"]:
            table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
        notes = []
        for model_name, r in sorted(rows.items()):
            price = table_prices.get(model_name)
            money = f"not in {prices.name}" if prices else "no price given"
            if price:
                value = price.cost(
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cached_tokens,
                    r.batch_prompt_tokens,
                    r.batch_completion_tokens,
                    r.cache_write_tokens,
                )
                money = "no batch price" if value is None else f"{value:.4f} {price.currency}"
            table.add_row(
                model_name,
                str(r.documents),
                str(r.calls),
                f"{r.prompt_tokens:,}",
                f"{r.completion_tokens:,}",
                *(
                    [f"{r.batch_prompt_tokens:,} / {r.batch_completion_tokens:,}"]
                    if batched
                    else []
                ),
                money,
            )
            if r.cached_tokens or r.reasoning_tokens or r.cache_write_tokens:
                cached_price = price and price.cached_input_per_million is not None
                write_price = price and price.cache_write_per_million is not None
                notes.append(
                    f"{model_name}: {r.cached_tokens:,} of the prompt tokens read from the cache"
                    f" ({'priced as cached input' if cached_price else 'priced as input'}), "
                    f"{r.cache_write_tokens:,} written to it"
                    f" ({'priced as cache writes' if write_price else 'priced as input'}), "
                    f"{r.reasoning_tokens:,} of the completion tokens spent on reasoning"
                )
        out.print(table)
        for note in notes:
            out.print(escape(note), soft_wrap=True)
