"""HTTP clients that cannot hang or fill memory, and never follow a redirect.

``--timeout`` is a total deadline per request, not a limit per socket read: a
server that answers one byte every half second (a slow-loris answer) is cut
off when the deadline passes, with ``httpx2.ReadTimeout`` (the openai client
turns it into ``APITimeoutError``, retried like any timeout). An answer larger
than ``max_bytes`` (a never-ending chunked 200) is cut off with
``ResponseTooLarge``, which is final: asking again would only fill memory again.

Redirects are not followed: a document goes only to the host the user named
(openai's own default client follows them; record mode never did; now neither
does). The client is also bounded by an ``asyncio`` deadline in ``ModelClient``
that covers the headers as well; ``transport`` assembles the stack.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx2
import openai
from caseextract.errors import NonRetryableError
from caseextract.llm.types import MAX_RESPONSE_BYTES


class ResponseTooLarge(NonRetryableError):
    kind = "response_too_large"


def _check(
    total: int, limit: int, deadline: float, timeout: float, request: httpx2.Request
) -> None:
    if total > limit:
        raise ResponseTooLarge(
            f"the answer from {request.url.host} grew past {limit:,} bytes; stopped reading "
            "(a server that never ends its answer?)"
        )
    if time.monotonic() > deadline:
        raise httpx2.ReadTimeout(f"no complete answer within {timeout:g}s", request=request)


class _AsyncStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, guard: tuple[int, float, float]) -> None:
        self.inner, self.guard = inner, guard
        self.request: httpx2.Request | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        limit, deadline, timeout = self.guard
        total = 0
        async for chunk in self.inner:
            total += len(chunk)
            assert self.request is not None
            _check(total, limit, deadline, timeout, self.request)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class AsyncGuardedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, timeout: float, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.timeout, self.max_bytes = timeout, max_bytes
        self.inner = httpx2.AsyncHTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        deadline = time.monotonic() + self.timeout
        response = await self.inner.handle_async_request(request)
        stream = _AsyncStream(response.stream, (self.max_bytes, deadline, self.timeout))  # type: ignore[arg-type]
        stream.request = request
        response.stream = stream
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
