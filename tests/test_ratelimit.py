"""Rate limits as a budget: client-side RPM/TPM, server headers, 429s within a time budget.

The servers are crafted (127.0.0.1); the limits they announce are crafted too.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from caseextract.cli import app
from caseextract.errors import TransientError
from caseextract.llm.ratelimit import RateLimiter, estimate_tokens, parse_duration
from caseextract.testing import FakeOpenAIServer, Reply, crafted_error, crafted_tool_completion
from typer.testing import CliRunner

from helpers import CRAFTED_SEED_ANSWER, client_for

GOOD = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))
MESSAGES = [{"role": "user", "content": "An 87-year-old female patient."}]


class Arrivals:
    """A responder that notes when each request arrived."""

    def __init__(self, reply: Reply = GOOD) -> None:
        self.times: list[float] = []
        self.reply = reply

    def __call__(self, payload: dict, index: int) -> Reply:
        self.times.append(time.monotonic())
        return self.reply


async def _many(client, n: int) -> list:
    async def one():
        return await client.aextract(MESSAGES, _model())

    try:
        return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    finally:
        await client.aclose()


def _model():
    from caseextract.tasks import default_task

    return default_task().response_model


def test_durations_and_token_estimates():
    assert parse_duration("6m0s") == 360.0
    assert parse_duration("1s") == 1.0 and parse_duration("20ms") == 0.02
    assert parse_duration("1h2m3.5s") == 3723.5 and parse_duration("2.5") == 2.5
    assert parse_duration("soon") is None and parse_duration(None) is None
    body = json.dumps({"messages": "x" * 4000, "max_tokens": 500}).encode()
    assert estimate_tokens(body) == -(-len(body) // 4) + 500
    assert estimate_tokens(b'{"max_completion_tokens": 7}') == 7 + 7


def test_rpm_spaces_requests_on_the_client():
    arrivals = Arrivals()
    with FakeOpenAIServer(arrivals) as server:
        client = client_for(server.base_url, rpm=120)  # 2 a second, 2 at once
        results = asyncio.run(_many(client, 6))
    assert not [r for r in results if isinstance(r, Exception)]
    span = max(arrivals.times) - min(arrivals.times)
    assert span >= 1.8, span  # 4 of the 6 wait their turn: 0.5 s apart
    assert client.limiter.waited_s > 0


def test_tpm_spaces_requests_by_their_estimated_tokens():
    arrivals = Arrivals()
    with FakeOpenAIServer(arrivals) as server:
        first = client_for(server.base_url)
        asyncio.run(_many(first, 1))
        cost = first.limiter.tokens.sent[-1][2]  # the estimate of one request
        client = client_for(server.base_url, tpm=cost * 60)  # one request a second
        arrivals.times.clear()
        asyncio.run(_many(client, 3))
    span = max(arrivals.times) - min(arrivals.times)
    assert span >= 1.8, span


def test_the_servers_headers_set_the_pace():
    headers = {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "500ms",  # crafted: 2 per half second, all used
    }
    arrivals = Arrivals(Reply(body=GOOD.body, headers=headers))
    with FakeOpenAIServer(arrivals) as server:
        client = client_for(server.base_url)

        async def sequential():
            try:
                for _ in range(4):
                    await client.aextract(MESSAGES, _model())
            finally:
                await client.aclose()

        asyncio.run(sequential())
    gaps = [b - a for a, b in zip(arrivals.times, arrivals.times[1:], strict=False)]
    assert min(gaps) >= 0.2, gaps  # ~0.25 s each: the rate read from the headers
    assert client.limiter.requests.rate == pytest.approx(4.0)


def test_a_429_pauses_every_call_of_the_client():
    limiter = RateLimiter()
    seq, delay = limiter.reserve(10)
    assert delay == 0
    limiter.observe(seq, 429, {}, retry_after=1.0)
    _, delay = limiter.reserve(10)
    assert 0.9 <= delay <= 1.0


def test_429s_do_not_spend_the_retry_count():
    limited = crafted_error(429, "Rate limit reached (crafted)", "rate_limit_exceeded",
                            {"retry-after": "0"})  # fmt: skip
    with FakeOpenAIServer([limited] * 6, default=GOOD) as server:
        client = client_for(server.base_url, http_retries=1)
        (result,) = asyncio.run(_many(client, 1))
        assert not isinstance(result, Exception), result
        assert len(server.requests) == 7
        assert result.stats.http_retries == 6


def test_429s_fail_once_the_time_budget_is_spent():
    limited = crafted_error(429, "Rate limit reached (crafted)", "rate_limit_exceeded",
                            {"retry-after": "0"})  # fmt: skip
    with FakeOpenAIServer(default=limited) as server:
        client = client_for(server.base_url, http_retries=1, rate_limit_wait=0.3)
        started = time.monotonic()
        (result,) = asyncio.run(_many(client, 1))
        elapsed = time.monotonic() - started
    assert isinstance(result, TransientError)
    assert "--rate-limit-wait" in str(result)
    assert len(server.requests) > 2 and elapsed >= 0.3


def test_other_faults_still_spend_the_retry_count():
    with FakeOpenAIServer(default=crafted_error(503, "overloaded (crafted)")) as server:
        client = client_for(server.base_url, http_retries=2)
        (result,) = asyncio.run(_many(client, 1))
    assert isinstance(result, TransientError) and len(server.requests) == 3


def test_run_rejects_a_limit_of_zero(tmp_path):
    doc = tmp_path / "a.txt"
    doc.write_text("An 87-year-old female patient.")
    result = CliRunner().invoke(
        app, ["run", str(doc), "-o", str(tmp_path / "r.jsonl"), "--rpm", "0",
              "--base-url", "http://127.0.0.1:9/v1"],
    )  # fmt: skip
    assert result.exit_code == 2 and "--rpm" in result.output


def test_a_429_with_rate_limit_headers_leaves_the_pace_to_them():
    limiter = RateLimiter()
    seq, _ = limiter.reserve(10)
    headers = {"x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "0",
               "x-ratelimit-reset-requests": "1s"}  # fmt: skip
    limiter.observe(seq, 429, headers, retry_after=5.0)
    _, delay = limiter.reserve(10)
    assert delay < 1.0  # paced at the server's 10 a second, not paused for 5 s


def test_the_sync_client_keeps_the_same_budget():
    arrivals = Arrivals()
    with FakeOpenAIServer(arrivals) as server:
        client = client_for(server.base_url, rpm=120)
        for _ in range(4):
            client.extract(MESSAGES, _model())
        client.close()
    assert max(arrivals.times) - min(arrivals.times) >= 0.8
