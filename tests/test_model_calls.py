"""Retry layering against a real HTTP server on 127.0.0.1 answering crafted replies."""

import json
import time

import pytest
from caseextract.errors import (
    ModelRefused,
    NonRetryableError,
    OutputTruncated,
    TransientError,
    ValidationFailed,
)
from caseextract.llm import ModelSettings, escape_control_characters, retry_after
from caseextract.schema import CaseReport
from caseextract.testing import (
    FakeOpenAIServer,
    Reply,
    crafted_error,
    crafted_text_completion,
    crafted_tool_completion,
)

from helpers import CRAFTED_SEED_ANSWER, client_for, crafted_answer

MESSAGES = [{"role": "user", "content": "report"}]
GOOD = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))


def run(script, source=None, **overrides):
    with FakeOpenAIServer(script) as server:
        client = client_for(server.base_url, **overrides)
        try:
            return client.extract(MESSAGES, CaseReport, source_text=source), server
        except Exception as exc:  # noqa: BLE001
            return exc, server


def test_429_with_retry_after_is_retried_and_honoured():
    limited = crafted_error(429, "rate limited", "rate_limit_exceeded", {"retry-after": "1"})
    started = time.monotonic()
    result, server = run([limited, GOOD])
    waited = time.monotonic() - started
    assert len(server.requests) == 2
    assert result.stats.attempts == 1 and result.stats.http_requests == 2
    assert waited >= 0.9  # the server asked for one second; backoff alone is 0.01 s


def test_5xx_is_retried_within_the_bound_then_reported():
    result, server = run([crafted_error(503, "busy")] * 5, http_retries=2)
    assert isinstance(result, TransientError)
    assert len(server.requests) == 3  # 1 + 2 retries, no more
    assert "503" in str(result)


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (crafted_error(401, "bad key"), "credentials"),
        (crafted_error(403, "forbidden"), "credentials"),
        (crafted_error(400, "bad request"), "400"),
        (
            crafted_error(
                400, "This model's maximum context length is 8192 tokens", "context_length_exceeded"
            ),
            "context",
        ),
        (crafted_error(429, "You exceeded your current quota", "insufficient_quota"), "quota"),
        (crafted_error(404, "no such model"), "404"),
    ],
)
def test_never_retried(reply, text):
    result, server = run([reply, GOOD, GOOD])
    assert isinstance(result, NonRetryableError)
    assert text in str(result)
    assert len(server.requests) == 1


def test_schema_invalid_answer_is_reasked_with_the_error_then_reported():
    bad = Reply(body=crafted_tool_completion({"article": {}, "patients": [{"age": 5}]}))
    result, server = run([bad, bad, bad], reasks=1)
    assert isinstance(result, ValidationFailed)
    assert len(server.requests) == 2  # first answer + one re-ask
    reask = server.requests[1]["messages"]
    assert len(reask) > len(server.requests[0]["messages"])
    assert "label" in str(reask[-1])  # the validation error is fed back
    assert result.context["attempts"] == 2
    assert '"patients"' in result.context["last_completion"]


def test_reask_recovers_and_usage_is_counted_once_per_completion():
    bad = Reply(body=crafted_tool_completion("{not json", prompt_tokens=10, completion_tokens=5))
    good = Reply(
        body=crafted_tool_completion(CRAFTED_SEED_ANSWER, prompt_tokens=20, completion_tokens=7)
    )
    result, server = run([bad, good], reasks=2)
    assert result.stats.attempts == 2
    assert (result.stats.prompt_tokens, result.stats.completion_tokens) == (30, 12)


def test_truncated_output_is_reported_not_retried():
    cut = Reply(body=crafted_tool_completion('{"article": {', finish_reason="length"))
    result, server = run([cut, GOOD, GOOD])
    assert isinstance(result, OutputTruncated)
    assert len(server.requests) == 1
    assert result.context["last_completion"] == '{"article": {'  # kept for the user to see


def test_refusal_is_reported():
    refusal = Reply(body=crafted_text_completion(None, refusal="I can't help with that."))
    result, server = run([refusal, GOOD])
    assert isinstance(result, ModelRefused)
    assert len(server.requests) == 1


def test_timeout_is_transient_and_bounded():
    slow = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER), delay=1.5)
    result, server = run([slow, slow, slow], timeout=0.3, http_retries=1)
    assert isinstance(result, TransientError)
    assert "timed out" in str(result)
    assert len(server.requests) == 2


def test_connection_reset_mid_body_is_retried():
    reset = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER), reset=True)
    result, server = run([reset, GOOD])
    assert result.stats.http_requests == 2
    assert result.value.patients[0].label == "Patient"


def test_fabricated_quote_is_reasked_with_the_quote_named(seed_text):
    fabricated = crafted_answer(
        findings=[{"name": "fever", "evidence": ["The patient had a high fever of 39 C."]}]
    )
    result, server = run(
        [Reply(body=crafted_tool_completion(fabricated)), GOOD], source=seed_text, reasks=2
    )
    assert result.stats.attempts == 2
    feedback = str(server.requests[1]["messages"][-1])
    assert "The patient had a high fever of 39 C." in feedback
    assert all(f.grounded for f in result.facts)


def test_ungrounded_after_the_budget_is_kept_and_flagged(seed_text):
    fabricated = crafted_answer(
        findings=[{"name": "fever", "evidence": ["The patient had a high fever of 39 C."]}]
    )
    reply = Reply(body=crafted_tool_completion(fabricated))
    result, server = run([reply, reply, reply], source=seed_text, reasks=1)
    assert len(server.requests) == 2
    flagged = [f for f in result.facts if not f.grounded]
    assert [f.path for f in flagged] == ["patients[0].findings[0]"]
    assert result.value.patients[0].findings[0].name == "fever"  # kept, not dropped


def test_retry_after_parsing():
    class R:
        def __init__(self, headers):
            self.headers = headers

    class E(Exception):
        def __init__(self, headers):
            self.response = R(headers)

    assert retry_after(E({"retry-after": "3"})) == 3
    assert retry_after(E({"retry-after-ms": "250"})) == 0.25
    assert retry_after(E({})) is None
    assert retry_after(E({"retry-after": "soon"})) is None  # unreadable: our own backoff
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    assert 3 <= retry_after(E({"retry-after": when})) <= 6


def test_settings_never_show_the_key():
    settings = ModelSettings(api_key="sk-test-SECRET-123456", base_url="http://127.0.0.1:1/v1")
    assert "SECRET" not in repr(settings)
    assert "api_key" not in settings.public()


def test_a_200_whose_body_is_not_json_is_retried_at_the_http_layer():
    broken = Reply(body=b'{"id": "chatcmpl-crafted", "choices": [{"ind')
    result, server = run([broken, GOOD])
    assert result.stats.http_requests == 2 and result.stats.attempts == 1
    result, server = run([broken] * 4, http_retries=2)
    assert isinstance(result, TransientError) and "not a chat completion" in str(result)
    assert len(server.requests) == 3


def test_raw_control_characters_inside_json_strings_are_escaped_not_reasked(seed_text):
    # crafted: what llama.cpp's grammar lets through — a raw newline and tab inside a string
    answer = crafted_answer(label="Pat\nient\t")
    raw = json.dumps(answer).replace("Pat\\nient\\t", "Pat\nient\t")
    assert "\n" in raw
    result, server = run([Reply(body=crafted_tool_completion(raw)), GOOD], reasks=0)
    assert len(server.requests) == 1
    assert result.value.patients[0].label == "Pat\nient\t"
    assert result.stats.json_repairs == 1


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"a": "x\ny"}', '{"a": "x\\ny"}'),
        ('{"a": "q\\"\x01"}', '{"a": "q\\"\\u0001"}'),
        ('{\n "a": "\\\\"\n}', '{\n "a": "\\\\"\n}'),  # whitespace outside strings stays
    ],
)
def test_escape_control_characters(raw, expected):
    assert escape_control_characters(raw) == expected
    json.loads(expected)
