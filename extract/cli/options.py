"""The model options ``run``, ``eval`` and ``export`` share, declared once.

``@model_options`` puts the shared options (``--model``, ``--base-url``, ``--mode``,
``--max-tokens``, ``--token-param``, ``--model-family``, ``--reasoning-effort``,
``--azure-endpoint``, ``--api-version``, ``--api``) into a command's signature in place of
its ``options: ModelOptions = SHARED`` parameter, and hands the command one
``ModelOptions``; ``ModelOptions.settings`` turns them into ``ModelSettings``
(each command names its own timeout and retry counts, by keyword; ``batch``
builds a ``ModelOptions`` from its own options or its saved state).
``local_model`` is the one ``--local`` sequence: start llama.cpp's server, point
the settings at it, check each document fits, stop the server however the
command ends.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from caseextract import redaction as secrets
from caseextract.cli.app import (
    Api,
    ApiVersion,
    AzureEndpoint,
    BaseUrl,
    MaxTokens,
    Mode,
    Model,
    ModelFamily,
    ReasoningEffort,
    TokenParam,
    check_base_url,
    err,
)
from caseextract.llm import ModelSettings
from caseextract.llm.local import LocalServer
from caseextract.llm.models import DEFAULT_MODEL, shutdown_notice

Preflight = Callable[[list[dict[str, str]]], None]


@dataclass(frozen=True)
class ModelOptions:
    """What the shared options said (defaults are the options' defaults)."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    instructor_mode: str = "tools"  # --mode
    max_tokens: int | None = None  # None: by model family; 0: the server's default
    token_param: str = "auto"
    model_family: str = "auto"
    reasoning_effort: str | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    api: str = "auto"  # --api: responses, chat or auto

    def settings(
        self,
        *,
        timeout: float,
        http_retries: int,
        reasks: int,
        server: LocalServer | None = None,
        context_window: int | None = None,
        **extra: Any,
    ) -> ModelSettings:
        """``ModelSettings`` from the options; a local ``server`` names the model and URL.

        The key comes from the environment (``AZURE_OPENAI_API_KEY`` with an Azure
        endpoint, else ``OPENAI_API_KEY``); ``extra`` holds a command's own settings.
        With a declared ``context_window``, the budget chosen by model family (no
        ``--max-tokens``) takes at most half of it, leaving the other half to the report."""
        base_url = server.base_url if server is not None else self.base_url
        secrets.register_from_env()
        if base_url is not None:
            secrets.register_url(base_url)
            check_base_url(base_url)
        key_var = "AZURE_OPENAI_API_KEY" if self.azure_endpoint else "OPENAI_API_KEY"
        if server is None and (notice := shutdown_notice(self.model)):
            err.print(notice, markup=False, highlight=False, soft_wrap=True)
        settings = ModelSettings(
            model=server.alias if server is not None else self.model,
            base_url=None if self.azure_endpoint else base_url,
            api_key=os.environ.get(key_var) or None,
            instructor_mode=self.instructor_mode,
            timeout=timeout,
            max_tokens="auto" if self.max_tokens is None else (self.max_tokens or None),
            http_retries=http_retries,
            reasks=reasks,
            token_param=self.token_param,
            model_family=self.model_family,
            reasoning_effort=self.reasoning_effort,
            azure_endpoint=self.azure_endpoint,
            api_version=self.api_version,
            api=self.api,
            **extra,
        )
        half = context_window // 2 if context_window else None
        auto_budget = self.max_tokens is None and isinstance(settings.max_tokens, int)
        if half and auto_budget and settings.max_tokens > half:  # type: ignore[operator]
            settings = dataclasses.replace(settings, max_tokens=half)
        return settings


SHARED = ModelOptions()  # `options: ModelOptions = SHARED`: where the shared options go

_OPTION_TYPES = {
    "model": Model,
    "base_url": BaseUrl,
    "instructor_mode": Mode,
    "max_tokens": MaxTokens,
    "token_param": TokenParam,
    "model_family": ModelFamily,
    "reasoning_effort": ReasoningEffort,
    "azure_endpoint": AzureEndpoint,
    "api_version": ApiVersion,
    "api": Api,
}


def model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command with the shared model options in place of its ``options`` parameter."""
    signature = inspect.signature(command, eval_str=True)
    shared = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=f.default,
            annotation=_OPTION_TYPES[f.name],
        )  # fmt: skip
        for f in fields(ModelOptions)
    ]
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        params.extend(shared if param.name == "options" else [param])
    if len(params) == len(signature.parameters):
        raise TypeError(f"{command.__name__} takes no `options: ModelOptions` parameter")

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> Any:
        options = ModelOptions(**{f.name: kwargs.pop(f.name) for f in fields(ModelOptions)})
        return command(options=options, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


@contextmanager
def local_model(local: bool, model_path: Path | None, n_ctx: int) -> Iterator[LocalServer | None]:
    """llama.cpp's server for ``--local`` (else None), stopped however the block ends.

    SIGTERM then ends us through ``finally`` (no orphan server)."""
    if not local:
        yield None
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    err.print("starting the local llama.cpp server …")
    server = LocalServer(model_path, n_ctx)
    try:
        server.start()
        err.print(f"local model {server.alias} at {server.base_url}")
        yield server
    finally:
        server.stop()


def local_preflight(server: LocalServer | None, settings: ModelSettings) -> Preflight | None:
    """The check run before each document on a local server: it fits the context."""
    return server.preflight(settings.max_tokens) if server is not None else None
