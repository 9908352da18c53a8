"""The HTTP stack under the openai client, assembled in one place.

From the openai client down: the recording store (replay, record or cache; absent
when recording is off) → the rate limiter (``ratelimit``) → guarded HTTP
(``guard``: a total deadline per request, a cap on the answer's size, no
redirects). The limiter sits under the store, so a replayed answer costs nothing
and is never paced. The openai client's own retries are off: HTTP retries are
``ModelClient``'s (tenacity, see ``client``). Azure OpenAI goes through the
openai client's own ``AsyncAzureOpenAI`` (the deployment is the model named in
each request). A replaying client needs no key: nothing is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import openai
from caseextract.llm import failures
from caseextract.llm.guard import AsyncGuardedTransport
from caseextract.llm.ratelimit import AsyncRateLimitedTransport, RateLimiter
from caseextract.llm.recording import AsyncRecordingTransport, RecordingStore
from caseextract.llm.types import PLACEHOLDER_KEY

if TYPE_CHECKING:
    from caseextract.llm.types import ModelSettings


def http_stack(
    settings: ModelSettings, store: RecordingStore | None, limiter: RateLimiter
) -> httpx2.AsyncBaseTransport:
    """The transports, top first: store (unless off) → limiter → guarded HTTP."""
    transport: httpx2.AsyncBaseTransport = AsyncRateLimitedTransport(
        limiter, AsyncGuardedTransport(settings.timeout, settings.max_response_bytes)
    )
    if store is not None and store.record_mode != "off":
        transport = AsyncRecordingTransport(store, transport)
    return transport


def openai_client(
    settings: ModelSettings, store: RecordingStore | None
) -> tuple[openai.AsyncOpenAI, RateLimiter]:
    """The async openai (or Azure OpenAI) client over the stack, and its rate limiter."""
    # read at call time, so a test that shortens the cap shortens the limiter's pauses too
    limiter = RateLimiter(settings.rpm, settings.tpm, max_pause=failures.MAX_RETRY_AFTER)
    http_client = httpx2.AsyncClient(
        transport=http_stack(settings, store, limiter),
        timeout=settings.timeout,
        follow_redirects=False,
    )
    replaying = store is not None and store.record_mode == "replay"
    common: dict[str, Any] = dict(
        api_key=(settings.api_key or PLACEHOLDER_KEY) if replaying else settings.key,
        timeout=settings.timeout,
        max_retries=0,  # HTTP retries are ModelClient's (tenacity)
        http_client=http_client,
    )
    if settings.azure_endpoint:  # the deployment is the model named in each request
        common.update(azure_endpoint=settings.azure_endpoint, api_version=settings.api_version)
        return openai.AsyncAzureOpenAI(**common), limiter
    return openai.AsyncOpenAI(base_url=settings.base_url, **common), limiter
