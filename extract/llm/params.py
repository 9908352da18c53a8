"""Request parameters per model family, endpoint and API: the one place they are chosen.

Also ``refusal_advice``: for a request the API refuses as it stands (a parameter
the model does not take, a schema outside the strict subset, an unknown Azure
deployment, function tools on Chat Completions), one line saying what to change.

What each family accepts is data, in ``models.FAMILIES`` (one cited row per
family); the rules below read it (each can be overridden by a setting / CLI flag):

- **Family** (``--model-family``): ``reasoning`` or ``chat`` from the family's row
  (``gpt-6*``, ``gpt-5*``, ``o1*``/``o3*``/``o4*`` reason; ``gpt-4*``, ``gpt-3.5*``
  chat; a ``provider/`` prefix and ``ft:`` are ignored), ``unknown`` for any other
  name (local models, Azure deployments named freely).
- **API** (``--api``): ``auto`` sends the tool modes (``tools``, ``tools_strict``) to
  ``/v1/responses`` on the OpenAI API and Azure OpenAI (OpenAI's advice for new
  projects, and the only endpoint where the current reasoning families take function
  tools with an effort), and everything else to ``/v1/chat/completions``: the JSON
  modes (no function tools, so every family accepts them there) and every other
  OpenAI-compatible server (llama.cpp, vLLM, Ollama: unchanged). ``responses`` with a
  JSON mode is refused up front (that path is a strict function tool).
- **Budget parameter** (``--token-param``): ``max_output_tokens`` on Responses. On
  Chat Completions ``max_completion_tokens`` on the OpenAI API and Azure OpenAI and
  for a reasoning model behind any server; ``max_tokens`` on every other
  OpenAI-compatible server (which may know only that name).
- **Budget** (``--max-tokens``, ``auto``): the family's default (32,768 for
  reasoning models, whose hidden reasoning tokens count against it; 8,192
  otherwise). ``None`` sends no budget (server default).
- **Temperature**: never sent to a reasoning model (only the default is
  accepted). ``auto`` sends 0 to chat models and to other servers; on the OpenAI
  API or Azure a model of unknown family gets the server default.
- **Reasoning effort** (``--reasoning-effort``): sent as given, only when given;
  refused up front outside the family's set (naming the set), and for a chat model.
- **Function tools on Chat Completions**: refused up front for a family that
  refuses them with the effort sent (``Family.tools_on_chat``), saying what to change.

Documentation:
https://platform.openai.com/docs/api-reference/chat/create (max_completion_tokens,
reasoning_effort), https://platform.openai.com/docs/api-reference/responses/create
(max_output_tokens, reasoning.effort, prompt_cache_key),
https://developers.openai.com/api/docs/guides/reasoning (reasoning tokens use the budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from caseextract.errors import ConfigError
from caseextract.llm import models
from caseextract.redaction import redact

REASONING = models.REASONING
CHAT = models.CHAT
UNKNOWN = "unknown"
FAMILIES = ("auto", REASONING, CHAT)
TOKEN_PARAMS = ("auto", "max_completion_tokens", "max_tokens")
REASONING_EFFORTS = models.ALL_EFFORTS
AUTO = "auto"
RESPONSES = "responses"
CHAT_API = "chat"
APIS = (AUTO, RESPONSES, CHAT_API)
TOOL_MODES = ("tools", "tools_strict")
DEFAULT_BUDGET = {REASONING: models.REASONING_BUDGET, CHAT: models.CHAT_BUDGET, UNKNOWN: 8192}
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
    "api",
)


def model_family(model: str, override: str = AUTO) -> str:
    """``reasoning``, ``chat`` or ``unknown`` for a model (or deployment) name."""
    if override != AUTO:
        if override not in FAMILIES:
            raise ConfigError(f"unknown model family {override!r}; choose {', '.join(FAMILIES)}")
        return override
    row = models.family_of(model)
    return row.kind if row is not None else UNKNOWN


def endpoint_kind(base_url: str | None, azure_endpoint: str | None = None) -> str:
    """``azure``, ``openai`` (no base URL, or api.openai.com) or ``compatible``."""
    if azure_endpoint:
        return "azure"
    if not base_url:
        return "openai"
    url = urlparse(base_url)
    host = (url.hostname or "").lower()
    if host == "api.openai.com":
        return "openai"
    # the Azure v1 API: https://NAME.openai.azure.com/openai/v1/ (also behind a gateway
    # or custom domain, which keeps the path)
    if host.endswith(".openai.azure.com") or url.path.rstrip("/").endswith("/openai/v1"):
        return "azure"
    return "compatible"


AZURE_V1 = "https://NAME.openai.azure.com/openai/v1/"


def choose_api(api: str, kind: str, mode: str, dated_azure: bool = False) -> str:
    """``responses`` or ``chat`` for ``--api`` at an endpoint of ``kind`` in ``mode``.

    On Azure the Responses API needs the v1 API (base URL ``AZURE_V1``, no
    api-version; https://learn.microsoft.com/azure/foundry/openai/how-to/responses):
    with ``--azure-endpoint`` (the dated deployment path) ``auto`` stays on Chat
    Completions."""
    if api not in APIS:
        raise ConfigError(f"unknown API {api!r}; choose {', '.join(APIS)}")
    if api == RESPONSES and dated_azure:
        raise ConfigError(
            f"the Responses API on Azure needs the v1 API: --base-url {AZURE_V1} "
            "(no --azure-endpoint, no --api-version)"
        )
    if api == AUTO:
        openai_like = kind in ("openai", "azure") and not dated_azure
        return RESPONSES if openai_like and mode in TOOL_MODES else CHAT_API
    if api == RESPONSES and mode not in TOOL_MODES:
        raise ConfigError(
            f"--api responses sends a strict function tool: use --mode tools (or tools_strict), "
            f"or --api chat for --mode {mode}"
        )
    return api


@dataclass(frozen=True)
class RequestParams:
    """What goes into every request besides the input and the schema."""

    family: str
    token_param: str  # max_completion_tokens or max_tokens (Chat Completions)
    budget: int | None
    temperature: float | None
    reasoning_effort: str | None
    api: str = CHAT_API  # responses or chat

    def apply(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A Chat Completions request's parameters."""
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

    def apply_responses(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A Responses request's parameters (max_output_tokens, reasoning.effort)."""
        # https://platform.openai.com/docs/api-reference/responses/create
        for name in ("max_tokens", "max_completion_tokens", "reasoning_effort"):
            kwargs.pop(name, None)
        if self.budget is not None:
            kwargs.setdefault("max_output_tokens", self.budget)
        if self.temperature is not None:
            kwargs.setdefault("temperature", self.temperature)
        if self.reasoning_effort is not None:
            kwargs.setdefault("reasoning", {"effort": self.reasoning_effort})
        if self.family == REASONING:
            kwargs.pop("temperature", None)
        return kwargs


def _check_effort(model: str, fam: str, effort: str | None) -> None:
    if effort is None:
        return
    if effort not in REASONING_EFFORTS:
        choose = ", ".join(REASONING_EFFORTS)
        raise ConfigError(f"unknown reasoning effort {effort!r}; choose {choose}")
    if fam == CHAT:
        raise ConfigError(f"{model} is not a reasoning model: drop --reasoning-effort")
    row = models.family_of(model)
    if row is not None and row.kind == fam and effort not in row.efforts:
        raise ConfigError(
            f"--reasoning-effort {effort}: {model} ({row.name}) takes {', '.join(row.efforts)}"
        )


def check_tools_on_chat(model: str, effort: str | None, dated_azure: bool = False) -> None:
    """Refuse up front function tools on Chat Completions where the family refuses them."""
    row = models.family_of(model)
    if row is None or row.tools_on_chat(effort):
        return
    sent = f"reasoning_effort {effort}" if effort else "no reasoning_effort (its default applies)"
    fix = f"--base-url {AZURE_V1} --api responses" if dated_azure else "--api responses"
    if "none" in row.efforts and effort != "none":
        fix += ", or --reasoning-effort none"
    raise ConfigError(
        f"{model} refuses function tools on /v1/chat/completions with {sent}: use {fix} "
        "(or a JSON mode: --mode json_schema)"
    )


def resolve(
    model: str,
    base_url: str | None,
    azure_endpoint: str | None = None,
    family: str = AUTO,
    token_param: str = AUTO,
    budget: int | str | None = AUTO,
    temperature: float | str | None = AUTO,
    reasoning_effort: str | None = None,
    api: str = CHAT_API,
    mode: str = "tools",
) -> RequestParams:
    """The parameters for one model at one endpoint, by the rules above."""
    fam = model_family(model, family)
    kind = endpoint_kind(base_url, azure_endpoint)
    api = choose_api(api, kind, mode, dated_azure=bool(azure_endpoint))
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
        row = models.family_of(model)
        budget = row.budget if row is not None and row.kind == fam else DEFAULT_BUDGET[fam]
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise ConfigError(f"the completion budget must be a positive number, not {budget!r}")
    if fam == REASONING:
        temperature = None
    elif temperature == AUTO:
        known = fam == CHAT or kind == "compatible"
        temperature = DEFAULT_TEMPERATURE if known else None
    _check_effort(model, fam, reasoning_effort)
    if api == CHAT_API and mode in TOOL_MODES:
        check_tools_on_chat(model, reasoning_effort, dated_azure=bool(azure_endpoint))
    return RequestParams(fam, token_param, budget, temperature, reasoning_effort, api)  # type: ignore[arg-type]


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
    if param == "reasoning_effort" and "function tools" in message.lower():
        responses = (
            f"--base-url {AZURE_V1} --api responses"
            if settings.azure_endpoint
            else ("--api responses")
        )
        return (
            f"{model} takes function tools only on /v1/responses (or with reasoning_effort "
            f"none): use {responses}, or --reasoning-effort none [{_short(message)}]"
        )
    if param == "reasoning_effort" and code == "unsupported_value":
        return f"{model} does not take this reasoning effort: change --reasoning-effort [{message}]"
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
    if code == "model_not_found":
        when = models.shutdown_date(model)
        gone = f" (shut down on {when})" if when else ""
        return (
            f"the server has no model {model!r}{gone}: choose a current one, e.g. "
            f"--model {models.DEFAULT_MODEL} [{message}]"
        )
    if code == "DeploymentNotFound":
        return f"no Azure deployment {model!r} at {settings.where}: --model names the deployment"
    if settings.azure_endpoint and _status(exc) == 404:
        return (
            f"HTTP 404 from {settings.where}: check --azure-endpoint and "
            f"--api-version {settings.api_version} [{message}]"
        )
    return None
