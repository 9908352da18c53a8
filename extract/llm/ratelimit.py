"""Rate limits as a budget: requests and tokens per minute, shared by every call of a client.

Contracts:

* ``RateLimiter`` keeps two buckets, requests and tokens. ``--rpm``/``--tpm`` set
  their rates (per minute; one second's worth may go at once). Without them a
  bucket learns its rate and level from the server's ``x-ratelimit-limit-*``,
  ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` headers (limit, what is
  left, time until the limit is back to its initial state:
  https://platform.openai.com/docs/guides/rate-limits), and enforces nothing
  until a server sends them.
* Before a request is sent it reserves one request and its estimated tokens:
  ceil(request body bytes / 4) + its ``max_tokens`` (the provider estimates the
  prompt from its characters and counts the requested answer length against the
  limit before anything is generated; same guide). Reservations queue in order:
  each waits until its bucket is back above zero.
* A header-bearing answer to a request sets the bucket from the server's view:
  remaining − what was reserved after that request + the refill since it went.
* A 429 without those headers pauses every call of the client for its
  ``Retry-After`` (with them, the buckets already hold the server's view).
* ``AsyncRateLimitedTransport`` applies it at the HTTP boundary, under the recording
  store: replayed exchanges spend nothing.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx2
from caseextract.llm.types import CHARS_PER_TOKEN

HISTORY_S = 300.0  # reservations kept for reading headers against
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """``"6m0s"``, ``"1s"``, ``"20ms"``, ``"1.5"`` → seconds; None when unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def estimate_tokens(body: bytes) -> int:
    """Tokens a request counts against a TPM limit before it is answered (estimated)."""
    found = _ANSWER_LIMIT.search(body) if body else None
    return math.ceil(len(body) / CHARS_PER_TOKEN) + (int(found.group(1)) if found else 0)


_ANSWER_LIMIT = re.compile(rb'"max_(?:completion_)?tokens"\s*:\s*(\d+)')


@dataclass
class _Bucket:
    name: str  # "requests" or "tokens", as in the header names
    rate: float | None = None  # per second; None: not known, nothing enforced
    fixed: bool = False  # set by the user: headers do not change the rate
    capacity: float = math.inf
    level: float = math.inf
    stamp: float = field(default_factory=time.monotonic)
    best_span: float = 0.0  # the largest used part of the limit a rate was read from
    sent: deque[tuple[int, float, float]] = field(default_factory=deque)  # seq, at, cost

    def refill(self, now: float) -> None:
        if self.rate is not None and self.level < self.capacity:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def reserve(self, now: float, cost: float) -> float:
        """Take ``cost``; seconds until it may be sent."""
        self.refill(now)
        if self.rate is None:
            return 0.0
        self.level -= cost
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def observe(self, headers: Any, seq: int, now: float) -> None:
        limit = _number(headers.get(f"x-ratelimit-limit-{self.name}"))
        remaining = _number(headers.get(f"x-ratelimit-remaining-{self.name}"))
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{self.name}"))
        if limit is None or remaining is None:
            return
        if not self.fixed:
            span = limit - remaining
            if reset and span > 0 and span >= self.best_span:
                self.rate, self.best_span = span / reset, span
            self.capacity = limit
        if self.rate is None:
            return
        sent_at = next((at for s, at, _ in self.sent if s == seq), None)
        if sent_at is None:
            return
        after = sum(cost for s, _, cost in self.sent if s > seq)
        level = remaining - after + (now - sent_at) * self.rate
        self.level = min(self.capacity, level)
        self.stamp = now


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RateLimiter:
    """Requests and tokens per minute for every call of one client (thread- and task-safe)."""

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, max_pause: float = 60.0
    ) -> None:
        self.max_pause = max_pause  # a Retry-After pauses everyone at most this long
        self.requests = _Bucket("requests")
        self.tokens = _Bucket("tokens")
        for bucket, per_minute in ((self.requests, rpm), (self.tokens, tpm)):
            if per_minute:
                bucket.rate = per_minute / 60.0
                bucket.fixed = True
                bucket.capacity = bucket.level = max(1.0, bucket.rate)  # one second's worth
        self.paused_until = 0.0
        self.waited_s = 0.0  # total time calls spent waiting here
        self._seq = 0
        self._lock = threading.Lock()

    def reserve(self, tokens: int) -> tuple[int, float]:
        """Reserve one request of ``tokens``; (its number, seconds to wait before sending)."""
        with self._lock:
            now = time.monotonic()
            self._seq += 1
            seq = self._seq
            if self.tokens.capacity is not math.inf:
                tokens = min(tokens, int(self.tokens.capacity))  # one request may always go
            delay = max(
                self.requests.reserve(now, 1),
                self.tokens.reserve(now, tokens),
                self.paused_until - now,
                0.0,
            )
            for bucket, cost in ((self.requests, 1), (self.tokens, tokens)):
                bucket.sent.append((seq, now + delay, cost))
                while bucket.sent and bucket.sent[0][1] < now - HISTORY_S:
                    bucket.sent.popleft()
            self.waited_s += delay
            return seq, delay

    def observe(self, seq: int, status: int, headers: Any, retry_after: float | None) -> None:
        with self._lock:
            now = time.monotonic()
            self.requests.observe(headers, seq, now)
            self.tokens.observe(headers, seq, now)
            told = any(k.lower().startswith("x-ratelimit-remaining-") for k in headers)
            if status == 429 and retry_after is not None and not told:
                # no headers to pace by: everyone waits, not only the call that was refused;
                # as long as the retry layer would wait at most (an odd value: not at all)
                pause = min(max(retry_after, 0.0), self.max_pause)
                if math.isfinite(retry_after):
                    self.paused_until = max(self.paused_until, now + pause)


def _retry_after(headers: Any) -> float | None:
    if ms := headers.get("retry-after-ms"):
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    return _number(headers.get("retry-after"))


class AsyncRateLimitedTransport(httpx2.AsyncBaseTransport):
    def __init__(self, limiter: RateLimiter, inner: httpx2.AsyncBaseTransport) -> None:
        self.limiter = limiter
        self.inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        seq, delay = self.limiter.reserve(estimate_tokens(await request.aread()))
        if delay:
            await asyncio.sleep(delay)
        response = await self.inner.handle_async_request(request)
        headers = response.headers
        self.limiter.observe(seq, response.status_code, headers, _retry_after(headers))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
