"""``caseextract check``: one small request with the run's settings, before a big run.

The preflight itself is ``caseextract.llm.preflight.check``; this command prints
its report (API, mode, parameters sent, the model the server names, whether the
schema was enforced, tokens spent and cached) and exits 1 with the one-line advice
when the server refuses the request (2 when the settings are refused up front).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from caseextract.cli.app import app, err, fail, out, setup_logging
from caseextract.cli.options import SHARED, ModelOptions, model_options
from caseextract.errors import ExtractError
from caseextract.llm.preflight import CHECK_BUDGET, check
from rich.markup import escape


@app.command("check")
@model_options
def check_command(
    options: ModelOptions = SHARED,
    timeout: Annotated[float, typer.Option(help="Seconds for the request.")] = 60.0,
    verbose: Annotated[int, typer.Option("-v", "--verbose", count=True)] = 0,
) -> None:
    """Send one small request (a two-sentence report) with exactly these model options.

    Run it before a large run or batch: it shows which API and parameters the server
    accepts, the model it names, whether the schema was enforced, and the cached tokens,
    for under 1,000 tokens. A refusal exits 1 with one line saying what to change.
    """
    setup_logging(verbose)
    try:
        settings = options.settings(timeout=timeout, http_retries=1, reasks=0)
    except ExtractError as exc:
        raise fail(str(exc)) from None
    report = check(settings)
    path = report.api_path or ("/v1/responses" if settings.api == "responses" else "chat")
    lines = [
        f"server: {settings.where}",
        f"API: {path} (--api {options.api} → {settings.api}); mode: {report.mode}",
        f"parameters sent: {json.dumps(report.parameters, sort_keys=True)}"
        f" (budget capped at {CHECK_BUDGET} for the check)",
    ]
    if report.ok:
        enforced = (
            "enforced by the server (strict)"
            if report.enforced
            else ("not enforced by the server: validated by caseextract only")
        )
        lines += [
            f"model named by the server: {report.model}",
            f"schema: {enforced}",
            f"tokens: {report.prompt_tokens:,} in / {report.completion_tokens:,} out; cached "
            f"{report.cached_tokens:,}, written to the cache {report.cache_write_tokens:,}",
        ]
        if report.note:
            lines.append(f"note: {report.note}")
        lines.append("ok: the server accepts these settings")
        for line in lines:
            out.print(escape(line), soft_wrap=True)
        return
    for line in lines:
        out.print(escape(line), soft_wrap=True)
    error = report.error
    kind = error.kind if error is not None else "error"
    err.print(f"[red]refused[/red] {escape(f'[{kind}]: {error}')}", soft_wrap=True)
    raise typer.Exit(1)
