"""``caseextract review`` (the review web app, adjudication, exports) and ``summarize``.

``review`` never changes the results file: decisions go to an append-only review
file beside it (``RESULTS.<reviewer>.review``). The web app listens on 127.0.0.1.
"""

from __future__ import annotations

import getpass
import json
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from caseextract.cli.app import app, err, fail
from caseextract.documents import safe_filename
from caseextract.errors import ExtractError

if TYPE_CHECKING:
    from caseextract.review.second import SecondExtraction
    from caseextract.review.session import ReviewSession


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "reviewer"


@app.command()
def review(
    results: Annotated[Path | None, typer.Argument(help="Results JSONL to review.")] = None,
    sources: Annotated[
        Path | None, typer.Option(help="Folder of the source texts (default: their paths).")
    ] = None,
    reviewer: Annotated[
        str,
        typer.Option(
            envvar="CASEEXTRACT_REVIEWER",
            help="Your name, written with each decision (default: your login name).",
        ),
    ] = "",
    schema: Annotated[
        str | None, typer.Option(help="Response model module:Class (default: the record's).")
    ] = None,
    adjudicate: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="Two review files: show where the reviewers disagree, and decide."),
    ] = None,
    second: Annotated[
        Path | None,
        typer.Option(
            help="A second, independent extraction of the same documents: agreed facts "
            "are pre-accepted, the rest is decided side by side."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open a browser.")
    ] = False,
    export_gold: Annotated[
        Path | None, typer.Option(help="Write a gold file per fully reviewed document here.")
    ] = None,
    export_jsonl: Annotated[
        Path | None, typer.Option(help="Write the corrected records (reviewed documents).")
    ] = None,
    export_csv: Annotated[Path | None, typer.Option(help="The corrected records as CSV.")] = None,
) -> None:
    """Review extracted facts in the browser: accept, reject, edit, add; adjudicate; export."""
    from caseextract.review.decisions import read_review
    from caseextract.review.session import ReviewSession, compare

    name = reviewer or _default_reviewer()
    disagreements = None
    pair = None
    try:
        if adjudicate is not None:
            log_a, log_b = read_review(adjudicate[0]), read_review(adjudicate[1])
            results = results or log_a.results
            if results is None:
                raise fail(f"{adjudicate[0]} does not name its results file; give RESULTS")
            agreed, disagreements = compare(log_a, log_b)
            pair = (log_a.reviewer or adjudicate[0].name, log_b.reviewer or adjudicate[1].name)
            if name in pair:
                err.print(f"[yellow]warning:[/yellow] you are one of the two reviewers ({name})")
        if results is None:
            raise fail("give a results file (or --adjudicate A.review B.review)")
        session = ReviewSession(results, name, sources, schema)
        if adjudicate is not None:
            session.base = agreed
            err.print(
                f"{len(agreed)} decisions agreed, {len(disagreements or [])} disagreements "
                f"between {pair[0]} and {pair[1]}"
            )
        double = _second(session, second, schema) if second is not None else None
    except ExtractError as exc:
        raise fail(str(exc)) from None
    if export_gold or export_jsonl or export_csv:
        _export(session, export_gold, export_jsonl, export_csv, double)
        return
    from caseextract.review.app import bind, build_app, serve

    sock = bind(port)
    page = "adjudicate" if disagreements else "pairs" if double else ""
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/{page}"
    err.print(f"reviewing {results} as {name}; decisions go to {session.review.path}")
    err.print(f"serving at {url}  (Ctrl-C to stop)")
    if not no_browser:
        webbrowser.open(url)
    serve(build_app(session, sock.getsockname()[1], disagreements, pair, double), sock)


def _second(session: ReviewSession, results_b: Path, schema: str | None) -> SecondExtraction:
    """Pair A (the session's results) with B, and pre-accept what they agree on."""
    from caseextract.evals.compare import compare_files, needs_a_person, totals
    from caseextract.review.second import SecondExtraction

    docs = compare_files(session.results, results_b, lambda r: session.source(r).text, schema)
    double = SecondExtraction(session, results_b, {d.document: d.to_dict() for d in docs})
    accepted = double.preaccept()
    tally, _, _ = totals(docs)
    share = needs_a_person(tally)
    err.print(
        f"A ({double.describe('a')}), B ({double.describe('b')}): {tally['agreed']} facts "
        f"agreed ({accepted} pre-accepted now), {tally['differs']} differ, {tally['only_a']} "
        f"only in A, {tally['only_b']} only in B"
        + (f": a person decides {share:.0%}" if share is not None else ""),
        soft_wrap=True,
    )
    for d in docs:
        for w in d.warnings:
            err.print(f"[yellow]warning:[/yellow] {d.document}: {w}", soft_wrap=True)
    return double


def _export(
    session: ReviewSession,
    gold: Path | None,
    jsonl: Path | None,
    csv_out: Path | None,
    double: SecondExtraction | None = None,
) -> None:
    from caseextract.store import write_csv

    log = session.log()
    reviewed = [
        n for n, r in enumerate(session.records) if session.decisions(r, log) and r.extraction
    ]
    if not reviewed:
        raise fail(f"no decisions yet in {session.review.path}")
    lines = []
    for n in reviewed:
        doc = session.records[n].document.id
        try:
            lines.append(session.corrected(n).to_line())
            if gold is not None:
                gold.mkdir(parents=True, exist_ok=True)
                path = gold / f"{safe_filename(str(doc))}.json"
                if double is not None and double.pending(n):
                    double.gold(n)  # raises: the disagreements not decided yet
                data = json.dumps(session.gold(n, folder=gold), indent=1, ensure_ascii=False)
                path.write_text(data + "\n", encoding="utf-8")
                err.print(f"wrote {path}")
        except ExtractError as exc:  # undecided facts, a record that does not validate
            why = "; ".join(getattr(exc, "errors", [])[:3])
            err.print(f"[yellow]no gold file for {doc}:[/yellow] {exc} ({why})", soft_wrap=True)
    if jsonl is not None:
        jsonl.write_text("".join(lines), encoding="utf-8")
        err.print(f"wrote {jsonl} ({len(lines)} records)")
    if csv_out is not None:
        tmp = csv_out.with_name(csv_out.name + ".jsonl.tmp")
        tmp.write_text("".join(lines), encoding="utf-8")
        try:
            rows = write_csv(tmp, csv_out)
        finally:
            tmp.unlink()
        err.print(f"wrote {csv_out} ({rows} rows)")


@app.command()
def summarize(
    results: Annotated[Path, typer.Argument(help="Results JSONL.")],
    html: Annotated[Path, typer.Option(help="Report page to write.")] = Path("report.html"),
    reviewed: Annotated[
        bool, typer.Option("--reviewed", help="Apply the review files beside the results.")
    ] = False,
    csv_dir: Annotated[
        Path | None, typer.Option("--csv", help="Folder for the tables as CSV (default: beside).")
    ] = None,
    review_files: Annotated[
        list[Path] | None,
        typer.Option("--review", help="Apply only these review files (implies --reviewed)."),
    ] = None,
) -> None:
    """The review at a glance: documents, patients, frequent facts, follow-up, status."""
    from caseextract.review.summary import summarize as build

    try:
        written = build(
            results, html, reviewed=reviewed, csv_dir=csv_dir, review_files=review_files
        )
    except ExtractError as exc:
        raise fail(str(exc)) from None
    err.print(f"wrote {', '.join(str(p) for p in written)}")
