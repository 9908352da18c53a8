"""Request parameters per model family and endpoint: the one place they are chosen.

Also ``refusal_advice``: for a request the API refuses as it stands (a parameter
the model does not take, a schema outside the strict subset, an unknown Azure
deployment), one line saying which setting to change.

The rules (each can be overridden by a setting / CLI flag):

- **Family** (``--model-family``): ``reasoning`` for the GPT-5.x and o-series
  models (``gpt-5*``, ``o1*``, ``o3*``, ``o4*``; a ``provider/`` prefix is
  ignored), ``chat`` for the other OpenAI chat models (``gpt-4*``, ``gpt-3.5*``,
  ``chatgpt-*``), ``unknown`` for any other name (local models, Azure
  deployments named freely).
- **Budget parameter** (``--token-param``): ``max_completion_tokens`` on the
  OpenAI API and Azure OpenAI (all current models accept it; reasoning models
  refuse ``max_tokens``) and for a reasoning model behind any server;
  ``max_tokens`` on every other OpenAI-compatible server (llama.cpp, older vLLM,
  Ollama), which may know only that name.
- **Budget** (``--max-tokens``, ``auto``): 32,768 for reasoning models, whose
  hidden reasoning tokens count against it (answers to this schema run to
  6–8k tokens); 8,192 otherwise. ``None`` sends no budget (server default).
- **Temperature**: never sent to a reasoning model (only the default is
  accepted). ``auto`` sends 0 to chat models and to other servers; on the
  OpenAI API or Azure a model of unknown family gets the server default
  (omitting it is accepted by every model; a deployment name says nothing).
- **Reasoning effort** (``--reasoning-effort``): sent as given, only when given;
  refused up front for a model known to be a chat model (it would be a 400).

Documentation:
https://platform.openai.com/docs/api-reference/chat/create (max_completion_tokens,
reasoning_effort; max_tokens is deprecated there and refused by o-series models),
https://platform.openai.com/docs/guides/reasoning (reasoning tokens use the budget).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from caseextract.errors import ConfigError
from caseextract.redaction import redact

REASONING = "reasoning"
CHAT = "chat"
UNKNOWN = "unknown"
FAMILIES = ("auto", REASONING, CHAT)
TOKEN_PARAMS = ("auto", "max_completion_tokens", "max_tokens")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
AUTO = "auto"
DEFAULT_BUDGET = {REASONING: 32768, CHAT: 8192, UNKNOWN: 8192}
DEFAULT_TEMPERATURE = 0.0
# the settings that shape a request's bytes (with re-asks and retries, which shape how
# many exchanges there are): what a replay store's manifest must name to be replayed
REPLAY_SETTINGS = (
    "model",
    "mode",
    "max_tokens",
    "temperature",
    "reasks",
    "http_retries",
    "token_param",
    "reasoning_effort",
)

_REASONING_NAME = re.compile(r"^(gpt-5|o[1-9])([.\-_]|$)")
_CHAT_NAME = re.compile(r"^(gpt-4|gpt-3\.5|gpt-35|chatgpt-)")


def model_family(model: str, override: str = AUTO) -> str:
    """``reasoning``, ``chat`` or ``unknown`` for a model (or deployment) name."""
    if override != AUTO:
        if override not in FAMILIES:
            raise ConfigError(f"unknown model family {override!r}; choose {', '.join(FAMILIES)}")
        return override
    name = model.rsplit("/", 1)[-1].lower().removeprefix("ft:")  # fine-tunes keep the base name
    if _REASONING_NAME.match(name):
        return REASONING
    if _CHAT_NAME.match(name):
        return CHAT
    return UNKNOWN


def endpoint_kind(base_url: str | None, azure_endpoint: str | None = None) -> str:
    """``azure``, ``openai`` (no base URL, or api.openai.com) or ``compatible``."""
    if azure_endpoint:
        return "azure"
    if not base_url:
        return "openai"
    host = (urlparse(base_url).hostname or "").lower()
    if host == "api.openai.com":
        return "openai"
    if host.endswith(".openai.azure.com"):
        return "azure"
    return "compatible"


@dataclass(frozen=True)
class RequestParams:
    """What goes into every chat-completion request besides messages and schema."""

    family: str
    token_param: str  # max_completion_tokens or max_tokens
    budget: int | None
    temperature: float | None
    reasoning_effort: str | None

    def apply(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.budget is not None:
            kwargs.setdefault(self.token_param, self.budget)
        if self.temperature is not None:
            kwargs.setdefault("temperature", self.temperature)
        if self.reasoning_effort is not None:
            kwargs.setdefault("reasoning_effort", self.reasoning_effort)
        if self.family == REASONING:  # whatever the caller passed: never these two
            kwargs.pop("max_tokens", None)
            kwargs.pop("temperature", None)
        return kwargs


def resolve(
    model: str,
    base_url: str | None,
    azure_endpoint: str | None = None,
    family: str = AUTO,
    token_param: str = AUTO,
    budget: int | str | None = AUTO,
    temperature: float | str | None = AUTO,
    reasoning_effort: str | None = None,
) -> RequestParams:
    """The parameters for one model at one endpoint, by the rules above."""
    fam = model_family(model, family)
    kind = endpoint_kind(base_url, azure_endpoint)
    if token_param not in TOKEN_PARAMS:
        raise ConfigError(f"unknown token param {token_param!r}; choose {', '.join(TOKEN_PARAMS)}")
    if token_param == AUTO:
        openai_like = kind in ("openai", "azure") or fam == REASONING
        token_param = "max_completion_tokens" if openai_like else "max_tokens"
    if fam == REASONING and token_param == "max_tokens":
        raise ConfigError(
            f"{model} is a reasoning model: it refuses max_tokens; "
            "use --token-param max_completion_tokens (or auto)"
        )
    if budget == AUTO:
        budget = DEFAULT_BUDGET[fam]
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise ConfigError(f"the completion budget must be a positive number, not {budget!r}")
    if fam == REASONING:
        temperature = None
    elif temperature == AUTO:
        known = fam == CHAT or kind == "compatible"
        temperature = DEFAULT_TEMPERATURE if known else None
    if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
        raise ConfigError(
            f"unknown reasoning effort {reasoning_effort!r}; choose {', '.join(REASONING_EFFORTS)}"
        )
    if reasoning_effort is not None and fam == CHAT:
        raise ConfigError(f"{model} is not a reasoning model: drop --reasoning-effort")
    return RequestParams(fam, token_param, budget, temperature, reasoning_effort)  # type: ignore[arg-type]


# ------------------------------------------------------------------ refusals


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _error_field(exc: BaseException, name: str) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get(name) or "")
    return ""


def refusal_advice(exc: BaseException, settings: Any) -> str | None:
    """One line saying what to change, for a request the API refuses as it stands
    (a parameter the model does not take, a schema outside the strict subset, an
    unknown Azure deployment); ``None`` for any other error."""
    code, param = _error_field(exc, "code"), _error_field(exc, "param")
    message = redact(_error_field(exc, "message") or str(exc), settings.api_key)
    message = " ".join(message.split())
    model = settings.model
    if code == "unsupported_parameter" and param == "max_tokens":
        return (
            f"{model} refuses max_tokens: use --token-param max_completion_tokens "
            f"(or --model-family reasoning) [{message}]"
        )
    if param == "temperature" and code in ("unsupported_value", "unsupported_parameter"):
        return f"{model} takes only the default temperature: use --model-family reasoning"
    if param == "reasoning_effort":
        return f"{model} does not take a reasoning effort: drop --reasoning-effort [{message}]"
    if code == "invalid_value" and param in ("max_tokens", "max_completion_tokens"):
        return f"--max-tokens {settings.max_tokens} is above {model}'s limit: lower it [{message}]"
    if code in ("invalid_function_parameters", "invalid_json_schema") or (
        "Invalid schema" in message
    ):
        return (
            "the server refused the structured-output schema in "
            f"--mode {settings.instructor_mode}: "
            f"try --mode tools [{_short(message)}]"
        )
    if code == "DeploymentNotFound":
        return f"no Azure deployment {model!r} at {settings.where}: --model names the deployment"
    if settings.azure_endpoint and _status(exc) == 404:
        return (
            f"HTTP 404 from {settings.where}: check --azure-endpoint and "
            f"--api-version {settings.api_version} [{message}]"
        )
    return None
