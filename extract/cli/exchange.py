"""``caseextract export`` and ``caseextract import``: requests out, answers in.

For a machine that cannot reach the model (or a reader who answers by hand):
export the exact requests ``run`` would send, answer them elsewhere, import the
answers as recorded exchanges that ``run``/``eval`` replay unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from caseextract.cli.app import (
    ContextWindow,
    app,
    err,
    fail,
    pass_config,
    passes_option,
    setup_logging,
)
from caseextract.cli.options import SHARED, ModelOptions, model_options
from caseextract.documents import discover
from caseextract.errors import ExtractError, StaleAnswers
from caseextract.exchange.answers import import_answers
from caseextract.exchange.export import export_requests
from caseextract.tasks import default_task
from rich.markup import escape

Verbose = Annotated[int, typer.Option("-v", "--verbose", count=True)]


@app.command("export")
@model_options
def export(
    inputs: Annotated[list[str], typer.Argument(help="Files, folders or globs (.txt .md .pdf).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the requests.")],
    options: ModelOptions = SHARED,
    prompt_set: Annotated[str, typer.Option(help="Prompt set name or folder.")] = "case_report",
    schema: Annotated[str | None, typer.Option(help="Response model as module:Class.")] = None,
    passes: Annotated[
        str, passes_option("single (one request per document; run's default is auto)")
    ] = "single",
    context_window: ContextWindow = None,
    answers: Annotated[
        Path | None,
        typer.Option(
            help="Multi-pass: the store holding the answers imported so far; the export then "
            "holds the requests they lead to (the next round)."
        ),
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Write the exact request `run` would send for each document, a brief and an index.

    Nothing is sent and no key is needed. The model options are `run`'s and mean the same:
    the server named by --base-url decides the request's parameters, not its answers.
    Multi-pass requests come in rounds: export (plans), answer, import; export again with
    --answers STORE (the passes each plan leads to), answer, import.
    """
    setup_logging(verbose)
    paths = discover(inputs)
    if not paths:
        raise fail("no input documents found")
    try:
        # nothing is sent: no retries and no re-asks to count into the request
        settings = options.settings(
            timeout=120.0, http_retries=0, reasks=0, context_window=context_window
        )
        task = default_task(prompt_set, schema)
        config = pass_config(passes, context_window, None, False, 4)
        result = export_requests(
            paths, out_dir, task, settings, prompt_set, schema, config, answers
        )
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    n = len(result.index["documents"])
    unanswered = [e for e in result.index["documents"] if not (out_dir / e["answer"]).is_file()]
    err.print(f"wrote {n} request(s), brief(s) and {out_dir / 'index.json'}")
    if "passes" in result.index:
        err.print(f"{len(unanswered)} request(s) wait for an answer")
    err.print("answer each request as <doc>.answer.json beside it, then: caseextract import")
    if result.stale:
        err.print(
            f"[yellow]stale answers[/yellow] (written for an earlier request): "
            f"{escape(', '.join(result.stale))}"
        )


@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="An export folder holding <doc>.answer.json.")],
    recordings: Annotated[Path, typer.Option(help="Store to write the exchanges to.")],
    provenance: Annotated[
        str, typer.Option(help="Who or what wrote the answers, from what, how (kept in each).")
    ],
    answered_by: Annotated[
        str, typer.Option(help="Short name of the reader (the replies' model name).")
    ] = "unnamed reader",
    model: Annotated[
        str | None,
        typer.Option(help="Model parameter of the replayed requests (default: the export's)."),
    ] = None,
    skip_stale: Annotated[
        bool, typer.Option(help="Import the fresh answers and leave the stale ones out.")
    ] = False,
    check: Annotated[
        bool, typer.Option(help="Check the answers (stale, JSON, schema, quotes); write nothing.")
    ] = False,
    verbose: Verbose = 0,
) -> None:
    """Turn answer files into recorded exchanges that `run` and `eval` replay."""
    setup_logging(verbose)
    try:
        result = import_answers(
            folder, recordings, provenance, answered_by, model, skip_stale, write=not check
        )
    except StaleAnswers as exc:
        raise fail(str(exc), 1) from None
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    for doc_id, g in sorted(result.grounding.items()):
        facts = f"{g.facts} facts, {g.ungrounded_facts} with a quote not in the document; "
        err.print(
            escape(
                f"{doc_id}: {facts if g.facts else ''}quotes exact {g.exact} / normalised "
                f"{g.normalised} / fuzzy {g.fuzzy} / not found {g.not_found}"
            )
        )
    if check:
        err.print(f"checked {len(result.imported)} answer(s); nothing written")
    else:
        err.print(f"imported {len(result.imported)} answer(s) into {recordings}")
    if result.stale:
        err.print(f"[yellow]left out, stale:[/yellow] {escape(', '.join(result.stale))}")
    if result.missing:
        err.print(f"not answered: {escape(', '.join(result.missing))}")
    if result.not_valid:
        err.print(
            "[yellow]do not validate against the schema as written[/yellow] (replay will "
            f"report them as failed): {escape(', '.join(result.not_valid))}"
        )
