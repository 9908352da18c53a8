"""What went wrong in a model call, as a typed, key-free ``ExtractError``.

The contract of the HTTP retry layer (``client``) and of every error a user sees:

* ``is_transient`` — retried: 408, 409, 429 (not ``insufficient_quota``), 5xx,
  timeouts (``RequestDeadline`` included), connection errors, a 200 whose body is
  not a chat completion (``MalformedBody``). ``is_rate_limited`` picks the 429s
  that spend the ``--rate-limit-wait`` time budget rather than the retry count.
* ``retry_after`` / ``retry_after_wait`` — the server's ``Retry-After`` (seconds,
  milliseconds or an HTTP date), capped at ``MAX_RETRY_AFTER`` with a little jitter.
* ``classify`` — any failure to one of ``errors``' kinds: ``ReplayMiss``,
  ``TransientError`` (retries spent), ``NonRetryableError`` (redirects, 401/403,
  400/404 with advice on the setting to change, quota, context length),
  ``OutputTruncated``, ``ValidationFailed``, else ``ModelCallError``. Our own
  ``ExtractError`` raised inside the HTTP stack comes back as it was. Messages
  never carry the key, and quote the server's words rather than the SDK's dump.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from typing import TYPE_CHECKING, Any

import openai
from caseextract.errors import (
    ExtractError,
    ModelCallError,
    NonRetryableError,
    OutputTruncated,
    ReplayMiss,
    TransientError,
    ValidationFailed,
)
from caseextract.llm import params as request_params
from caseextract.llm.recording import MISS_CODE
from caseextract.redaction import public_url, redact
from instructor.core.exceptions import IncompleteOutputException
from pydantic import ValidationError

if TYPE_CHECKING:
    from caseextract.llm.types import CallStats, ModelSettings

MAX_RETRY_AFTER = 60.0  # seconds; also the rate limiter's longest pause (transport)


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
            f"{stats.http_requests} time(s): {short(detail, 200)}",
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
        if status >= 500 and settings.instructor_mode in ("json_schema", "tools_strict"):
            hint = " (servers without structured-output support answer 5xx: try --mode tools)"
        if status == 429:
            hint = f" (rate limited past --rate-limit-wait {settings.rate_limit_wait:g}s)"
        return TransientError(
            f"HTTP {status} after {stats.http_requests} request(s){hint}: {said}", **ctx
        )
    if status is not None:
        return NonRetryableError(f"HTTP {status}: {said}", **ctx)
    if isinstance(exc, IncompleteOutputException):
        return OutputTruncated(truncated_message(settings, stats.reasoning_tokens), **ctx)
    if isinstance(exc, ValidationError | ValueError):
        return ValidationFailed(
            f"answer did not validate after {stats.attempts} attempt(s): {short(detail)}", **ctx
        )
    return ModelCallError(f"{type(exc).__name__}: {short(detail)}", **ctx)


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
    return short(text, 300)


def truncated_message(settings: ModelSettings, reasoning_tokens: int = 0) -> str:
    param = "max_output_tokens" if settings.api == "responses" else settings.token_param
    budget = f"{param}={settings.max_tokens}"
    if reasoning_tokens:
        return (
            f"output cut at the completion budget {budget}, {reasoning_tokens:,} of it spent "
            "on reasoning; raise --max-tokens or lower --reasoning-effort"
        )
    return f"output cut at the completion budget {budget}; raise --max-tokens"


def short(text: str, limit: int = 600) -> str:
    return text if len(text) <= limit else text[:limit] + " …"
