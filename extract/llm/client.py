"""The one module that talks to the model (openai client + instructor).

Retries live in three layers that never multiply by accident:

1. **HTTP** — tenacity around each chat-completion request (the openai client's
   own retries are off): 408/409/429/5xx, timeouts and connection errors, with
   exponential backoff that honours ``Retry-After``. At most ``http_retries`` + 1
   requests per model call.
2. **Output** — instructor re-asks on validation errors (bad JSON, schema
   violation, ungrounded quote) with the error fed back, ``reasks`` times at most.
   Worst case a document costs (reasks + 1) × (http_retries + 1) requests.
3. **Never** — 401/403, 400, 404, context length, ``insufficient_quota``, output
   cut at the completion budget, refusals: raised at once as typed errors. A 400
   for a parameter or schema the model refuses says which setting to change.

Request parameters (budget name, temperature, reasoning effort) come from
``params``; strict modes rewrite the request through ``strict``. Azure OpenAI
goes through the openai client's own ``AzureOpenAI`` (deployment = model).

Token usage is counted here, once per completion received (instructor's own
running total is not used), with cached prompt tokens and reasoning tokens.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

import instructor
import openai
from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
from pydantic import BaseModel, ValidationError, create_model, model_validator
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .. import grounding
from ..errors import (
    ConfigError,
    ExtractError,
    ModelCallError,
    ModelRefused,
    NonRetryableError,
    OutputTruncated,
    ReplayMiss,
    TransientError,
    ValidationFailed,
)
from ..redaction import public_url, redact, register_url
from ..redaction import register as register_secret
from . import params as request_params
from .guard import (
    MAX_RESPONSE_BYTES,
    AsyncGuardedTransport,
    GuardedTransport,
    guarded_clients,
)
from .ratelimit import AsyncRateLimitedTransport, RateLimitedTransport, RateLimiter
from .recording import MISS_CODE, AsyncRecordingTransport, RecordingStore, RecordingTransport
from .strict import apply_strict

log = logging.getLogger("caseextract.llm")

MODES = {
    "tools": instructor.Mode.TOOLS,
    # instructor 1.17 folds TOOLS_STRICT into TOOLS (deprecated) and sends no strict
    # flag either way; strict.apply_strict makes the request strict
    "tools_strict": instructor.Mode.TOOLS,
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "json": instructor.Mode.JSON,
    "md_json": instructor.Mode.MD_JSON,
}
STRICT_MODES = ("tools_strict", "json_schema")
MAX_RETRY_AFTER = 60.0
PLACEHOLDER_KEY = "no-key-needed"


@dataclass
class ModelSettings:
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    mode: str = "tools"
    timeout: float = 120.0
    # "auto": chosen per model family and endpoint (see params); resolved on creation
    max_tokens: int | str | None = "auto"  # the completion budget; None = server default
    temperature: float | str | None = "auto"
    http_retries: int = 3
    reasks: int = 2
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    token_param: str = "auto"  # max_completion_tokens or max_tokens
    model_family: str = "auto"  # reasoning or chat, when the name does not tell
    reasoning_effort: str | None = None
    azure_endpoint: str | None = None  # Azure OpenAI: the model is the deployment name
    api_version: str | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    rpm: float | None = None  # client-side limits (llm/ratelimit.py); None: from headers
    tpm: float | None = None
    rate_limit_wait: float = 900.0  # seconds a call may spend on 429s (not counted as retries)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.http_retries < 0 or self.reasks < 0:
            raise ConfigError("retry counts must be 0 or more")
        if any(v is not None and v <= 0 for v in (self.rpm, self.tpm)):
            raise ConfigError("--rpm and --tpm must be more than 0")
        if self.rate_limit_wait < 0:
            raise ConfigError("--rate-limit-wait must be 0 or more")
        if self.azure_endpoint and not self.api_version:
            raise ConfigError("Azure OpenAI needs --api-version (or OPENAI_API_VERSION)")
        p = self.params
        self.max_tokens, self.temperature, self.token_param = p.budget, p.temperature, p.token_param

    @property
    def params(self) -> request_params.RequestParams:
        return request_params.resolve(
            self.model,
            self.base_url,
            self.azure_endpoint,
            family=self.model_family,
            token_param=self.token_param,
            budget=self.max_tokens,
            temperature=self.temperature,
            reasoning_effort=self.reasoning_effort,
        )

    @property
    def where(self) -> str:
        """The server, as it may be printed (credentials in the URL hidden)."""
        url = self.azure_endpoint or self.base_url
        return public_url(url) if url else "the OpenAI API"

    @property
    def key(self) -> str:
        if self.api_key:
            return self.api_key
        if self.azure_endpoint:
            raise ConfigError("no Azure OpenAI key: set AZURE_OPENAI_API_KEY")
        if self.base_url:
            return PLACEHOLDER_KEY  # local OpenAI-compatible servers ignore the key
        raise ConfigError(
            "no API key: set OPENAI_API_KEY, give --base-url for your own server, "
            "or use --local for the bundled local model (no key, no network)"
        )

    def public(self) -> dict[str, Any]:
        """Settings safe to write into results (no key)."""
        data = asdict(self)
        data.pop("api_key")
        return data


@dataclass
class CallStats:
    """What one extraction cost: counted once per completion, re-asks included."""

    attempts: int = 0  # completions received (1 + re-asks)
    http_requests: int = 0
    http_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    reasoning_tokens: int = 0  # of completion_tokens, spent on hidden reasoning
    latency_s: float = 0.0
    model: str | None = None  # as the server names it
    finish_reason: str | None = None
    json_repairs: int = 0  # answers whose raw control characters were escaped

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass
class Extraction:
    value: BaseModel
    stats: CallStats
    facts: list[grounding.GroundedFact]


# ------------------------------------------------------------------ classification


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _code(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("code") or err.get("type") or "")
    return str(getattr(exc, "code", "") or "")


class MalformedBody(Exception):
    """An HTTP 200 whose body is not a chat completion (cut off, or not JSON)."""


class RequestDeadline(Exception):
    """The whole request outlasted ``--timeout`` (however the server trickled it)."""


def _refusal_inside(exc: BaseException) -> ExtractError | None:
    """Our own error raised inside the HTTP stack (too large, corrupt recording),
    which the openai client wraps in ``APIConnectionError``."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if isinstance(cause, ExtractError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def is_rate_limited(exc: BaseException) -> bool:
    """A 429 that passes with time (not ``insufficient_quota``)."""
    return _status(exc) == 429 and is_transient(exc)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError) and _refusal_inside(exc) is not None:
        return False
    if isinstance(
        exc, openai.APITimeoutError | openai.APIConnectionError | MalformedBody | RequestDeadline
    ):
        return True
    status = _status(exc)
    if status is None:
        return False
    if status == 429:
        return "insufficient_quota" not in (_code(exc) + str(exc))
    return status in (408, 409) or status >= 500


def retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if ms := headers.get("retry-after-ms"):
        try:
            seconds = float(ms) / 1000
        except ValueError:
            pass
        else:
            if not math.isnan(seconds):
                return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) else seconds
    try:  # an HTTP date
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own backoff
    return max(0.0, parsed.timestamp() - time.time())


def retry_after_wait(after: float) -> float:
    """Seconds to wait when told ``Retry-After: after``: capped at ``MAX_RETRY_AFTER``,
    with a little jitter on the capped value (so documents told alike do not retry in
    lockstep) that never lifts the wait above the cap."""
    capped = min(max(after, 0.0), MAX_RETRY_AFTER)
    jitter = random.uniform(0, 0.1 * capped + 0.05)
    wait = capped + jitter
    return wait if wait <= MAX_RETRY_AFTER else MAX_RETRY_AFTER - jitter


def classify(exc: BaseException, settings: ModelSettings, stats: CallStats) -> ExtractError:
    """A typed, key-free error for any failure of a model call."""
    ctx = {
        "attempts": stats.attempts,
        "http_requests": stats.http_requests,
        "stats": stats.to_dict(),
    }
    inner = _refusal_inside(exc) if isinstance(exc, openai.APIConnectionError) else None
    if isinstance(exc, ExtractError) or inner is not None:
        error = exc if isinstance(exc, ExtractError) else inner
        assert error is not None
        error.context.update(ctx)
        return error
    status = _status(exc)
    detail = redact(str(exc), settings.api_key)
    said = redact(server_message(exc), settings.api_key)  # the server's words, no raw dict
    where = settings.where
    if _code(exc) == MISS_CODE:
        body = getattr(exc, "body", None) or {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        return ReplayMiss(str(err.get("message") or detail), **ctx)
    if isinstance(exc, openai.APITimeoutError | RequestDeadline):
        return TransientError(f"timed out after {settings.timeout:g}s ({where})", **ctx)
    if isinstance(exc, openai.APIConnectionError):
        return TransientError(f"cannot connect to {where}", **ctx)
    if isinstance(exc, MalformedBody):
        return TransientError(
            f"{where} answered with a body that is not a chat completion, "
            f"{stats.http_requests} time(s): {_short(detail, 200)}",
            **ctx,
        )
    if status is not None and 300 <= status < 400:
        response = getattr(exc, "response", None)
        location = response.headers.get("location", "?") if response is not None else "?"
        return NonRetryableError(
            f"HTTP {status}: {where} redirects to {public_url(location)}; not followed (documents "
            "go only to the server you named); give that address as --base-url if you trust it",
            **ctx,
        )
    if status in (401, 403):
        var = "AZURE_OPENAI_API_KEY" if settings.azure_endpoint else "OPENAI_API_KEY"
        return NonRetryableError(
            f"HTTP {status}: the server refused the credentials; check {var}", **ctx
        )
    if status in (400, 404) and (advice := request_params.refusal_advice(exc, settings)):
        return NonRetryableError(advice, **ctx)
    if status == 429 and not is_transient(exc):
        return NonRetryableError("HTTP 429 insufficient_quota: the account has no quota", **ctx)
    if status == 400 and ("context_length" in _code(exc) or "context length" in detail.lower()):
        return NonRetryableError(f"document too long for the model's context: {said}", **ctx)
    if status == 404:
        return NonRetryableError(f"HTTP 404 from {where}: model {settings.model!r}? {said}", **ctx)
    if status is not None and is_transient(exc):
        hint = ""
        if status >= 500 and settings.mode in ("json_schema", "tools_strict"):
            hint = " (servers without structured-output support answer 5xx: try --mode tools)"
        if status == 429:
            hint = f" (rate limited past --rate-limit-wait {settings.rate_limit_wait:g}s)"
        return TransientError(
            f"HTTP {status} after {stats.http_requests} request(s){hint}: {said}", **ctx
        )
    if status is not None:
        return NonRetryableError(f"HTTP {status}: {said}", **ctx)
    if isinstance(exc, IncompleteOutputException):
        return OutputTruncated(_truncated_message(settings, stats.reasoning_tokens), **ctx)
    if isinstance(exc, ValidationError | ValueError):
        return ValidationFailed(
            f"answer did not validate after {stats.attempts} attempt(s): {_short(detail)}", **ctx
        )
    return ModelCallError(f"{type(exc).__name__}: {_short(detail)}", **ctx)


def server_message(exc: BaseException) -> str:
    """What an HTTP error says, in words: the body's ``error.message`` (OpenAI's error
    shape, https://platform.openai.com/docs/guides/error-codes) or its text, without the
    SDK's "Error code: 400 - {...}" dict dump."""
    body = getattr(exc, "body", None)
    message: Any = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if isinstance(inner, dict) and not message:
            message = inner.get("detail") or inner.get("msg")
    elif isinstance(body, str):
        message = body
    if isinstance(message, list):  # FastAPI-style validation details
        message = "; ".join(
            str(m.get("msg", m)) if isinstance(m, dict) else str(m) for m in message
        )
    if not message:
        message = getattr(exc, "message", None) or str(exc)
    text = re.sub(r"^Error code: \d+ - ", "", str(message))
    if text.startswith("{"):
        return "the server gave no message"
    return _short(text, 300)


def completion_text(completion: Any, limit: int = 4000) -> str:
    """The text of a raw completion (tool-call arguments or content), shortened."""
    try:
        message = completion.choices[0].message
        calls = getattr(message, "tool_calls", None) or []
        text = calls[0].function.arguments if calls else (message.content or "")
    except (AttributeError, IndexError, TypeError):
        text = str(completion)
    return _short(text, limit)


def escape_control_characters(text: str) -> str:
    """``text`` with raw control characters inside JSON strings escaped.

    JSON forbids U+0000–U+001F unescaped inside a string; a grammar-constrained
    local server (llama.cpp) lets them through, and pydantic's parser then rejects
    the whole answer. Outside strings they are whitespace or errors and are left
    for the parser to judge. Nothing else is changed.
    """
    out: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch < " ":
                out.append(_CONTROL_ESCAPES.get(ch) or f"\\u{ord(ch):04x}")
                continue
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


_CONTROL_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_CONTROL = re.compile(r"[\x00-\x1f]")


def repair_control_characters(message: Any) -> bool:
    """Escape raw control characters in a message's JSON (tool-call arguments and
    content) in place; True when anything changed. The recording keeps the raw answer."""
    changed = False
    for call in getattr(message, "tool_calls", None) or []:
        fn = getattr(call, "function", None)
        args = getattr(fn, "arguments", None)
        if isinstance(args, str) and _CONTROL.search(args):
            fixed = escape_control_characters(args)
            changed |= fixed != args
            fn.arguments = fixed
    content = getattr(message, "content", None)
    if isinstance(content, str) and content.lstrip()[:1] in ("{", "[") and _CONTROL.search(content):
        fixed = escape_control_characters(content)
        changed |= fixed != content
        message.content = fixed
    return changed


def check_tool_calls(message: Any, request: dict[str, Any], completion: Any) -> None:
    """One call, to a tool the request offered: anything else is not an answer."""
    offered = [
        (tool.get("function") or {}).get("name")
        for tool in request.get("tools") or []
        if isinstance(tool, dict)
    ]
    calls = getattr(message, "tool_calls", None) or []
    if not offered or not calls:
        return
    names = [str(getattr(getattr(c, "function", None), "name", "?")) for c in calls]
    if len(calls) > 1:
        raise ValidationFailed(
            f"the model made {len(calls)} tool calls ({_short(', '.join(names), 200)}); "
            f"one call to {offered[0]!r} is expected",
            completion=completion,
        )
    if names[0] not in offered:
        raise ValidationFailed(
            f"the model called {_short(names[0], 100)!r}, not {offered[0]!r}", completion=completion
        )


def _truncated_message(settings: ModelSettings, reasoning_tokens: int = 0) -> str:
    budget = f"{settings.token_param}={settings.max_tokens}"
    if reasoning_tokens:
        return (
            f"output cut at the completion budget {budget}, {reasoning_tokens:,} of it spent "
            "on reasoning; raise --max-tokens or lower --reasoning-effort"
        )
    return f"output cut at the completion budget {budget}; raise --max-tokens"


def _short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + " …"


def _usage_details(usage: Any) -> tuple[int, int]:
    """(cached prompt tokens, reasoning tokens) of one completion's usage; 0 when absent."""
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    cached = getattr(prompt, "cached_tokens", None) or 0
    reasoning = getattr(completion, "reasoning_tokens", None) or 0
    return int(cached), int(reasoning)


Restore = Callable[[Any], bool]

# ------------------------------------------------------------------ grounding hook

_ACTIVE: ContextVar[_CallContext | None] = ContextVar("caseextract_call", default=None)


@dataclass
class _CallContext:
    aligner: grounding.Aligner | None
    stats: CallStats
    max_attempts: int
    facts: list[grounding.GroundedFact] | None = None  # from the validator, when it ran
    model: type[BaseModel] | None = None  # the caller's response model
    # (answer as dumped, its facts): grounded in a worker thread before instructor
    # validates the same answer on the event loop (async calls only)
    pre: tuple[dict[str, Any], list[grounding.GroundedFact]] | None = None

    def pregrounded(self, value: BaseModel) -> list[grounding.GroundedFact] | None:
        if self.pre is not None and self.pre[0] == value.model_dump():
            return self.pre[1]
        return None


def preground(ctx: _CallContext, response: Any) -> None:
    """Parse and ground a tool-call answer (run in a worker thread, off the event loop).

    Anything that does not parse is left for instructor to judge and re-ask."""
    if ctx.aligner is None or ctx.model is None:
        return
    try:
        (call,) = response.choices[0].message.tool_calls or []
        value = ctx.model.model_validate_json(call.function.arguments)
    except (ValueError, TypeError, AttributeError, IndexError):
        return
    ctx.pre = (value.model_dump(), grounding.ground(value, ctx.aligner.text, ctx.aligner))


def wire_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` wrapped the way instructor wraps it on every call, but once.

    Given a plain pydantic model, instructor builds a new ``OpenAISchema``
    subclass per call, which defeats its own schema cache: the full JSON schema
    was regenerated for every document (over 40% of the pipeline's time per
    document, bench/overhead.py). A model that already is an ``OpenAISchema`` is
    used as it is; the request sent is byte-identical.
    """
    return model if issubclass(model, instructor.OpenAISchema) else instructor.openai_schema(model)


@cache
def grounded_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` (wired once) plus a validator that rejects answers not evidenced
    by the document.

    It re-asks when a fact needs it (``GroundedFact.needs_reask``: a quote not in
    the document or carrying no content, quotes that do not state the fact's main
    value, an article value not in the document), naming each problem. The check
    runs only inside a model call (it reads the call's context) and is skipped on
    the last allowed attempt, where such facts are kept and flagged instead of
    failing the document. The facts it grounded are kept on the call's context, so
    a valid answer is not grounded twice.
    """

    def _check(self: BaseModel) -> BaseModel:
        ctx = _ACTIVE.get()
        if ctx is None or ctx.aligner is None or ctx.stats.attempts >= ctx.max_attempts:
            return self
        facts = ctx.pregrounded(self)
        if facts is None:
            facts = grounding.ground(self, ctx.aligner.text, ctx.aligner)
        if any(f.needs_reask for f in facts):
            raise ValueError(grounding.ungrounded_message(facts))
        ctx.facts = facts
        return self

    return create_model(
        model.__name__,
        __base__=wire_model(model),
        __doc__=model.__doc__,
        __validators__={"_grounded": model_validator(mode="after")(_check)},
    )


# ------------------------------------------------------------------ the client


class ModelClient:
    """Structured extraction through instructor on the openai client.

    With a ``store`` every HTTP exchange goes through the recording store
    (replay, record or cache); see ``extract.recording``.
    """

    def __init__(self, settings: ModelSettings, store: RecordingStore | None = None) -> None:
        self.settings = settings
        register_secret(settings.api_key)  # redacted from logs, errors and recordings
        register_url(settings.base_url)  # user:password@ and ?api-key= in the URL
        self.store = store
        # recording store (if any) → rate limiter → guarded HTTP (deadline, size cap,
        # no redirects); the limiter sits under the store, so replays cost nothing
        self.limiter = RateLimiter(settings.rpm, settings.tpm, max_pause=MAX_RETRY_AFTER)
        limit = settings.max_response_bytes
        sync: Any = RateLimitedTransport(self.limiter, GuardedTransport(settings.timeout, limit))
        asyn: Any = AsyncRateLimitedTransport(
            self.limiter, AsyncGuardedTransport(settings.timeout, limit)
        )
        if store is not None and store.mode != "off":
            sync, asyn = RecordingTransport(store, sync), AsyncRecordingTransport(store, asyn)
        http_client, async_http_client = guarded_clients(settings.timeout, limit, sync, asyn)
        replaying = store is not None and store.mode == "replay"
        common: dict[str, Any] = dict(
            api_key=(settings.api_key or PLACEHOLDER_KEY) if replaying else settings.key,
            timeout=settings.timeout,
            max_retries=0,  # HTTP retries are ours (tenacity), see module docstring
        )
        if settings.azure_endpoint:  # the deployment is the model named in each request
            common.update(azure_endpoint=settings.azure_endpoint, api_version=settings.api_version)
            self._sync: openai.OpenAI = openai.AzureOpenAI(**common, http_client=http_client)
            self._async: openai.AsyncOpenAI = openai.AsyncAzureOpenAI(
                **common, http_client=async_http_client
            )
        else:
            common["base_url"] = settings.base_url
            self._sync = openai.OpenAI(**common, http_client=http_client)
            self._async = openai.AsyncOpenAI(**common, http_client=async_http_client)
        self._params = settings.params
        mode = MODES[settings.mode]
        self._create = instructor.patch(create=self._raw_create, mode=mode)
        self._acreate = instructor.patch(create=self._raw_acreate, mode=mode)

    # -- HTTP layer ------------------------------------------------------------

    def _retrying(self, cls: type[Retrying] | type[AsyncRetrying]) -> Any:
        s = self.settings
        backoff = wait_exponential_jitter(
            multiplier=s.backoff_initial, max=s.backoff_max, jitter=s.backoff_initial
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = retry_after(exc) if exc else None
            return backoff(state) if after is None else retry_after_wait(after)

        def before_sleep(state: RetryCallState) -> None:
            ctx = _ACTIVE.get()
            if ctx:
                ctx.stats.http_retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying after %s (request %d)", type(exc).__name__, state.attempt_number)

        faults = stop_after_attempt(s.http_retries + 1)
        others = [0]  # failed requests other than 429s, this call

        def stop(state: RetryCallState) -> bool:
            # 429s spend a time budget, other faults the retry count: one never uses the other's
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None and is_rate_limited(exc):
                return (state.seconds_since_start or 0.0) >= s.rate_limit_wait
            others[0] += 1
            return others[0] >= faults.max_attempt_number

        return cls(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _request_kwargs(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Restore | None]:
        """The request as sent: model, parameters for its family, strict schema."""
        kwargs.setdefault("model", self.settings.model)
        kwargs = self._params.apply(kwargs)
        if self.settings.mode in STRICT_MODES:
            return apply_strict(kwargs)
        return kwargs, None

    def _count(self, response: Any, request: dict[str, Any], restore: Restore | None = None) -> Any:
        ctx = _ACTIVE.get()
        choice = response.choices[0] if getattr(response, "choices", None) else None
        usage = getattr(response, "usage", None)
        cached, reasoning = _usage_details(usage)
        if ctx is not None:
            stats = ctx.stats
            stats.attempts += 1
            if usage is not None:
                stats.prompt_tokens += usage.prompt_tokens or 0
                stats.completion_tokens += usage.completion_tokens or 0
                stats.cached_tokens += cached
                stats.reasoning_tokens += reasoning
            stats.model = getattr(response, "model", None) or stats.model
            stats.finish_reason = getattr(choice, "finish_reason", None)
        if choice is None:
            raise ModelCallError("the server returned no choices")
        if repair_control_characters(choice.message) and ctx is not None:
            ctx.stats.json_repairs += 1
        at_limit = (
            self.settings.max_tokens is not None
            and usage is not None
            and (usage.completion_tokens or 0) >= self.settings.max_tokens
        )
        if choice.finish_reason == "length" or at_limit:
            raise OutputTruncated(_truncated_message(self.settings, reasoning), completion=response)
        if restore is not None:
            restore(choice.message)
        if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
            reason = choice.message.refusal or "content filter"
            raise ModelRefused(
                f"the model refused: {_short(str(reason), 200)}", completion=response
            )
        check_tool_calls(choice.message, request, response)
        return response

    def _raw_create(self, *args: Any, **kwargs: Any) -> Any:
        kwargs, restore = self._request_kwargs(kwargs)

        def once() -> Any:
            self._note_request()
            try:
                return self._sync.chat.completions.create(*args, **kwargs)
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                raise MalformedBody(str(exc)) from exc

        return self._count(self._retrying(Retrying)(once), kwargs, restore)

    async def _raw_acreate(self, *args: Any, **kwargs: Any) -> Any:
        kwargs, restore = self._request_kwargs(kwargs)

        async def once() -> Any:
            self._note_request()
            try:
                # the whole request, headers included, within --timeout (not per read)
                async with asyncio.timeout(self.settings.timeout):
                    return await self._async.chat.completions.create(*args, **kwargs)
            except TimeoutError as exc:
                raise RequestDeadline(
                    f"no complete answer within {self.settings.timeout:g}s"
                ) from exc
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                raise MalformedBody(str(exc)) from exc

        response = self._count(await self._retrying(AsyncRetrying)(once), kwargs, restore)
        ctx = _ACTIVE.get()
        if ctx is not None and ctx.aligner is not None:
            await asyncio.to_thread(preground, ctx, response)  # CPU work off the loop
        return response

    @staticmethod
    def _note_request() -> None:
        ctx = _ACTIVE.get()
        if ctx is not None:
            ctx.stats.http_requests += 1

    # -- output layer -----------------------------------------------------------

    def _begin(
        self,
        source_text: str | None,
        messages: list[dict[str, str]],
        model: type[BaseModel] | None = None,
    ) -> tuple[_CallContext, Any]:
        aligner = None
        if source_text is not None:
            prompt = "\n".join(str(m.get("content") or "") for m in messages)
            aligner = grounding.Aligner(source_text, prompt=prompt)
        ctx = _CallContext(aligner, CallStats(), self.settings.reasks + 1, model=model)
        return ctx, _ACTIVE.set(ctx)

    def _finish(
        self, value: BaseModel, model: type[BaseModel], ctx: _CallContext, started: float
    ) -> Extraction:
        # hand back the caller's own model, without instructor's private attributes
        value = model.model_validate(value.model_dump())
        ctx.stats.latency_s = round(time.perf_counter() - started, 4)
        facts = ctx.facts if ctx.facts is not None else ctx.pregrounded(value)
        if facts is None:
            facts = grounding.ground(value, ctx.aligner.text, ctx.aligner) if ctx.aligner else []
        return Extraction(value, ctx.stats, facts)

    def _fail(self, exc: BaseException, stats: CallStats, started: float) -> ExtractError:
        stats.latency_s = round(time.perf_counter() - started, 4)
        cause = exc
        if isinstance(exc, InstructorRetryException) and exc.__cause__ is not None:
            cause = exc.__cause__
        error = classify(cause, self.settings, stats)
        last = getattr(exc, "last_completion", None) or getattr(cause, "completion", None)
        if last is not None:
            error.context["last_completion"] = redact(completion_text(last), self.settings.api_key)
        return error

    def extract(
        self,
        messages: list[dict[str, str]],
        response_model: type[BaseModel],
        source_text: str | None = None,
    ) -> Extraction:
        """Validated ``response_model`` for ``messages``; grounded against ``source_text``."""
        started = time.perf_counter()
        ctx, token = self._begin(source_text, messages)
        try:
            value = self._create(
                response_model=grounded_model(response_model),
                messages=messages,
                max_retries=self.settings.reasks,
            )
        except Exception as exc:
            raise self._fail(exc, ctx.stats, started) from None
        finally:
            _ACTIVE.reset(token)
        return self._finish(value, response_model, ctx, started)

    async def aextract(
        self,
        messages: list[dict[str, str]],
        response_model: type[BaseModel],
        source_text: str | None = None,
    ) -> Extraction:
        started = time.perf_counter()
        ctx, token = self._begin(source_text, messages, response_model)
        try:
            value = await self._acreate(
                response_model=grounded_model(response_model),
                messages=messages,
                max_retries=self.settings.reasks,
            )
        except Exception as exc:
            raise self._fail(exc, ctx.stats, started) from None
        finally:
            _ACTIVE.reset(token)
        return await asyncio.to_thread(self._finish, value, response_model, ctx, started)

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.close()
