"""``caseextract compare A.jsonl B.jsonl``: two independent extractions, fact by fact.

Writes one agreement record per document (``caseextract.evals.compare``) and
prints where they agree, the share of facts a person must decide, and the
agreement figures (F1 by name, cited and strict, as ``evals.agreement`` prints).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from caseextract.cli.app import SchemaOpt, app, err, fail, out
from caseextract.cli.app import fmt3 as _fmt
from caseextract.errors import ExtractError
from caseextract.fileio import write_atomic
from rich.markup import escape
from rich.table import Table

SECOND_SAMPLE = (
    "for a second, independent sample of one model and prompt, run the same command "
    "again with another -o and without --record-mode cache or replay (those return the "
    "first answer)"
)


def default_out(results_a: Path) -> Path:
    return results_a.with_name(f"{results_a.stem}.agreement.jsonl")


def _who(info: dict[str, Any]) -> str:
    if info.get("missing"):
        return f"{info['results']} (no record)"
    model = info.get("model_returned") or info.get("model") or "unknown model"
    prompt = f"{info.get('prompt_set')} {info.get('prompt_version')}"
    return f"{info['results']}: {model}, prompt {prompt}"


def describe_pair(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two models, two prompt sets, or the same model twice."""
    same_model = (a.get("model_returned") or a.get("model")) == (
        b.get("model_returned") or b.get("model")
    )
    same_prompt = (a.get("prompt_set"), a.get("prompt_version")) == (
        b.get("prompt_set"),
        b.get("prompt_version"),
    )
    if same_model and same_prompt:
        return "the same model and prompt twice"
    if same_model:
        return "one model, two prompt versions"
    return "two models" + ("" if same_prompt else " and two prompt versions")


@app.command()
def compare(
    results_a: Annotated[Path, typer.Argument(help="Extraction A (results JSONL).")],
    results_b: Annotated[Path, typer.Argument(help="Extraction B of the same documents.")],
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Agreement records (default: A.agreement.jsonl)."),
    ] = None,
    sources: Annotated[
        Path | None, typer.Option(help="Folder of the source texts (default: their paths).")
    ] = None,
    schema: SchemaOpt = None,
) -> None:
    """Pair two extractions fact by fact: agreed, differs (which fields), only in A or B."""
    from caseextract.evals.compare import (
        agreement_line,
        compare_files,
        needs_a_person,
        source_text,
        totals,
    )

    target = output or default_out(results_a)
    try:
        docs = compare_files(results_a, results_b, lambda r: source_text(r, sources), schema)
    except (ExtractError, OSError) as exc:
        raise fail(str(exc)) from None
    write_atomic(target, "".join(agreement_line(d) for d in docs))
    first = next((d for d in docs if not d.a.get("missing") and not d.b.get("missing")), docs[0])
    out.print(escape(f"A = {_who(first.a)}"), soft_wrap=True)
    out.print(escape(f"B = {_who(first.b)}"), soft_wrap=True)
    out.print(f"{describe_pair(first.a, first.b)}; {SECOND_SAMPLE}.", soft_wrap=True)
    table = Table("document", "agreed", "differs", "only A", "only B", "F1", "cited", "strict")
    for d in docs:
        t, c = d.tally(), d.counts
        table.add_row(
            escape(d.document),
            *(str(t[k]) for k in ("agreed", "differs", "only_a", "only_b")),
            _fmt(c.prf()[2]),
            _fmt(c.prf(cited=True)[2]),
            _fmt(c.prf(True)[2]),
        )
    tally, total, families = totals(docs)
    table.add_row(
        "[b]all[/b]",
        *(str(tally[k]) for k in ("agreed", "differs", "only_a", "only_b")),
        _fmt(total.prf()[2]),
        _fmt(total.prf(cited=True)[2]),
        _fmt(total.prf(True)[2]),
    )
    out.print(table)
    fam = Table("family", "items A", "items B", "F1", "cited", "strict", title="by family")
    for name, c in sorted(families.items()):
        fam.add_row(name, str(c.gold), str(c.pred), _fmt(c.prf()[2]),
                    _fmt(c.prf(cited=True)[2]), _fmt(c.prf(True)[2]))  # fmt: skip
    out.print(fam)
    share = needs_a_person(tally)
    n = sum(tally.values())
    out.print(
        f"a person decides {n - tally['agreed']} of {n} facts"
        + (f" ({share:.0%})" if share is not None else "")
        + f"; {tally['agreed']} agreed facts can be pre-accepted "
        f"(caseextract review {results_a} --second {results_b})",
        soft_wrap=True,
    )
    for d in docs:
        for w in d.warnings:
            err.print(
                f"[yellow]warning:[/yellow] {escape(d.document)}: {escape(w)}", soft_wrap=True
            )
    err.print(f"wrote {target} ({len(docs)} documents)", soft_wrap=True)
