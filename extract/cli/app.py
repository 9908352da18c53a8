"""Shared pieces of the command line: the app, consoles, options, settings.

The commands live one group per module (``run``, ``evaluate``, ``review``), above
the pipeline, the evals and the review pages; nothing below the CLI imports it.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .. import redaction as secrets
from ..llm import MODES, ModelSettings
from ..llm.local import LocalServer
from ..llm.recording import RecordingStore
from ..passes import PassConfig

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
ContextWindow = Annotated[
    int | None,
    typer.Option(
        help="The model's context window in tokens (known with --local): longer documents "
        "are read in overlapping chunks."
    ),
]


def passes_option(default: str) -> object:
    return typer.Option(
        "--passes",
        help="single: one call per document; multi: plan, then one call per patient "
        "(finer on truncation); auto: multi when the document is long for the model's "
        f"limits or a single answer is cut. Default {default}.",
    )


def pass_config(
    mode: str,
    context_window: int | None,
    server: LocalServer | None,
    resume: bool,
    concurrency: int,
    max_passes: int = 100,
) -> PassConfig:
    """Multi-pass settings; a local server brings its context window and tokenizer."""
    return PassConfig(
        mode=mode,
        context_window=context_window or (server.n_ctx if server is not None else None),
        count_tokens=server.count_tokens if server is not None else None,
        resume=resume,
        concurrency=1 if server is not None else concurrency,  # it answers one at a time
        max_passes=max_passes,
    )


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


def start_local(model_path: Path | None, n_ctx: int) -> LocalServer:
    """Start llama.cpp's server; SIGTERM then ends us through ``finally`` (no orphan)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    err.print("starting the local llama.cpp server …")
    server = LocalServer(model_path, n_ctx).start()
    err.print(f"local model {server.alias} at {server.base_url}")
    return server


def fmt3(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"
