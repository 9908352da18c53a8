"""Shared pieces of the command line: the app, consoles, option types, checks.

The commands live one group per module (``run``, ``evaluate``, ``review``,
``exchange``), above the pipeline, the evals and the review pages; nothing below
the CLI imports it. The model options and the settings built from them are in
``options``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from caseextract import redaction as secrets
from caseextract.errors import ConfigError
from caseextract.llm import INSTRUCTOR_MODES
from caseextract.llm.local import LocalServer
from caseextract.llm.recording import RecordingStore
from caseextract.pipeline.passes.multipass import PassConfig
from caseextract.safetext import printable
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand

# What an option takes, in --help, instead of typer's type tags (<list[str]>, <path>).
METAVARS = {
    "case": "ID",
    "doc": "ID",
    "schema": "MODULE:CLASS",
    "prompt_set": "NAME|DIR",
    "model": "NAME",
    "base_url": "URL",
    "instructor_mode": "MODE",
    "record_mode": "MODE",
    "fmt": "jsonl|csv",
    "timeout": "SECONDS",
}


class Command(TyperCommand):
    """A command whose help names what each option takes (FILE, N, URL …), not its type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument  # its name says what it takes; no type tag
            if param.param_type_name != "option" or param.metavar is not None:
                continue
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = ""
            elif param.name in METAVARS:
                param.metavar = METAVARS[param.name]
            else:
                param.metavar = _metavar(param.display_type(None))

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def _metavar(typed: str) -> str:
    """``<path>`` → PATH, ``<int>`` → N, ``<float>`` → NUMBER, else TEXT."""
    for tag, name in (("path", "PATH"), ("int", "N"), ("float", "NUMBER")):
        if tag in typed.lower():
            return name
    return "TEXT"


class App(typer.Typer):
    """Every command of the app is a ``Command``."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


app = App(
    add_completion=False,
    no_args_is_help=True,
    help="Structured, evidence-backed extraction from clinical case reports.",
)
err = Console(stderr=True)
out = Console()


def setup_logging(verbose: int) -> None:
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
    # pypdf warns about repairs it made (a wrong xref offset …) and reads on; the text
    # layer is checked after reading, so its warnings are noise unless asked for.
    logging.getLogger("pypdf").setLevel(logging.ERROR if verbose < 2 else logging.NOTSET)


def fail(message: str, code: int = 2) -> typer.Exit:
    # one line, however long: scripts and people grep for it
    err.print(f"[red]error:[/red] {escape(printable(secrets.redact(message)))}", soft_wrap=True)
    return typer.Exit(code)


def check_options(**values: float | None) -> None:
    """Numeric options out of range are a usage error (exit 2, one line), never sent on.

    Names ending in ``_min0`` may be 0; the others must be positive."""
    for key, value in values.items():
        if value is None:
            continue
        name, _, floor = key.partition("_min")
        option = "--" + name.replace("_", "-")
        if option == "--concurrency":
            option = "-j/--concurrency"
        if floor == "0" and value < 0:
            raise fail(f"{option} must be 0 or more, not {value:g}")
        if not floor and value <= 0:
            raise fail(f"{option} must be more than 0, not {value:g}")


Verbose = Annotated[
    int,
    typer.Option(
        "-v",
        "--verbose",
        count=True,
        help="More log output on stderr; a counter: -v info, -vv debug, -vvv also the SDKs'.",
    ),
]
Model = Annotated[
    str, typer.Option(envvar="CASEEXTRACT_MODEL", help="Model name as the server knows it.")
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="OPENAI_BASE_URL", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1"
    ),
]
Mode = Annotated[
    str,
    typer.Option(
        "--mode", help=f"How instructor asks for structure: {', '.join(INSTRUCTOR_MODES)}."
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        help="Completion budget (answer + reasoning tokens); default by model family "
        "(32768 reasoning, 8192 others); 0 = server default."
    ),
]
TokenParam = Annotated[
    str,
    typer.Option(
        help="Name of the budget: max_completion_tokens (OpenAI, Azure, reasoning models), "
        "max_tokens (other servers), or auto."
    ),
]
ModelFamily = Annotated[
    str,
    typer.Option(
        help="reasoning (gpt-5.x, o-series) or chat, when --model does not say (Azure "
        "deployment names); auto reads the name."
    ),
]
ReasoningEffort = Annotated[
    str | None,
    typer.Option(
        help="Reasoning models: none, minimal, low, medium, high, xhigh or max "
        "(each family takes its own set; others are refused up front)."
    ),
]
Api = Annotated[
    str,
    typer.Option(
        "--api",
        help="responses (/v1/responses), chat (/v1/chat/completions) or auto: Responses for "
        "the tool modes on the OpenAI API and the Azure v1 URL, Chat Completions otherwise.",
    ),
]
AzureEndpoint = Annotated[
    str | None,
    typer.Option(
        envvar="AZURE_OPENAI_ENDPOINT",
        help="Azure OpenAI resource (https://NAME.openai.azure.com); --model = deployment.",
    ),
]
ApiVersion = Annotated[
    str | None, typer.Option(envvar="OPENAI_API_VERSION", help="Azure OpenAI API version.")
]


GoldDir = Annotated[
    Path | None,
    typer.Option(
        "--gold",
        help="Folder of gold files (default: fixtures/gold of a checkout). Each file names "
        "its task; files without one are for the case-report task.",
    ),
]
CasesDir = Annotated[
    Path | None,
    typer.Option(
        "--cases",
        help="Folder of the gold cases' texts (default: the sources the gold files name, "
        "beside the gold folder).",
    ),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option(
        "--schema",
        help="Response model as module:Class (default: the task the gold files name).",
    ),
]
PromptSetOpt = Annotated[
    str | None,
    typer.Option("--prompt-set", help="Prompt set name or folder (default: the gold files' own)."),
]

SchemaInPrompt = Annotated[
    bool,
    typer.Option(
        help="Also describe the schema in the prompt, for servers that turn the tool into a "
        "grammar without showing it to the model (llama.cpp with Gemma's template).",
    ),
]

RecordMode = Annotated[
    str,
    typer.Option(help="Recorded exchanges: off, replay (no network), record, or cache."),
]
Recordings = Annotated[Path, typer.Option(help="Folder of recorded exchanges.")]
ModelPath = Annotated[
    Path | None, typer.Option(help="GGUF model for --local (default: bundled Gemma 3 270M).")
]
NCtx = Annotated[int, typer.Option(help="Context window for --local, in tokens.")]
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
    passes: str,
    context_window: int | None,
    server: LocalServer | None,
    resume: bool,
    concurrency: int,
    max_passes: int = 100,
) -> PassConfig:
    """Multi-pass settings; a local server brings its context window and tokenizer."""
    return PassConfig(
        strategy=passes,
        context_window=context_window or (server.n_ctx if server is not None else None),
        count_tokens=server.count_tokens if server is not None else None,
        resume=resume,
        concurrency=1 if server is not None else concurrency,  # it answers one at a time
        max_passes=max_passes,
    )


# the store `run --record-mode …` uses by default (the eval's own: evals.runner.EVAL_RECORDINGS)
RUN_RECORDINGS = Path("recordings")


def open_store(folder: Path, record_mode: str) -> RecordingStore | None:
    return None if record_mode == "off" else RecordingStore(folder, record_mode)


def check_base_url(url: str) -> None:
    """A usable server address, or ``ConfigError`` saying why (credentials hidden)."""
    shown = secrets.public_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise ConfigError(f"--base-url {shown!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {shown!r}: expected http(s)://host[:port]/v1")


def fmt3(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"
