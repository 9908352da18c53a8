"""A misbehaving server cannot hang a run, fill memory, pull documents elsewhere or
leak credentials (issue 16, points 4, 6, 8 and 9), over real HTTP on 127.0.0.1.

Every reply here is crafted. Waits are bounded by ``CEILING`` only to keep a
broken client from hanging the suite; no test asserts a wall-clock figure.
"""

from __future__ import annotations

import asyncio
import json
import math
import random

import caseextract.llm.failures as failures_module
import caseextract.testing.fault_batch as rel
import pytest
from caseextract.cli import app
from caseextract.errors import NonRetryableError, ReplayMiss, TransientError, ValidationFailed
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.failures import MAX_RETRY_AFTER, retry_after_wait
from caseextract.llm.recording import RecordingStore
from caseextract.schema import CaseReport
from caseextract.testing import FakeOpenAIServer, Reply, crafted_error, crafted_tool_completion
from typer.testing import CliRunner

from helpers import records_json

GOOD = Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER))
CEILING = 60.0
MESSAGES = [{"role": "user", "content": "Report rel-0000."}]


def client_for(base_url: str, **overrides) -> ModelClient:
    settings = dict(model="crafted-model", base_url=base_url, timeout=2.0, http_retries=0,
                    reasks=0, backoff_initial=0.01, backoff_max=0.05)  # fmt: skip
    settings.update(overrides)
    return ModelClient(ModelSettings(**settings))


def aextract(client: ModelClient):
    async def go():
        try:
            return await asyncio.wait_for(client.aextract(MESSAGES, CaseReport), CEILING)
        finally:
            await client.aclose()

    return asyncio.run(go())


# ---------------------------------------------------------------- 4. hangs


@pytest.mark.parametrize("after", [3600.0, 86400.0, math.inf, 61.0, 60.0])
def test_retry_after_stays_under_the_cap_after_jitter(after):
    rng_state = random.getstate()
    waits = [retry_after_wait(after) for _ in range(2000)]
    random.setstate(rng_state)
    assert max(waits) <= MAX_RETRY_AFTER
    assert min(waits) >= 0.85 * MAX_RETRY_AFTER  # jitter kept: not all in lockstep
    assert len(set(waits)) > 1


@pytest.mark.parametrize("value", ["nan", "-5", "inf"])
def test_odd_retry_after_values_never_wait_past_the_cap(value, monkeypatch):
    monkeypatch.setattr(failures_module, "MAX_RETRY_AFTER", 0.2)  # our own cap, made small
    script = [crafted_error(429, "slow down", "rate_limit_exceeded", {"retry-after": value}), GOOD]
    with FakeOpenAIServer(script) as server:
        result = aextract(client_for(server.base_url, http_retries=1))
    assert result.stats.http_requests == 2


def test_a_huge_retry_after_waits_at_most_the_cap(monkeypatch):
    monkeypatch.setattr(failures_module, "MAX_RETRY_AFTER", 0.2)
    script = [crafted_error(429, "slow down", "rate_limit_exceeded", {"retry-after": "86400"}),
              GOOD]  # fmt: skip
    with FakeOpenAIServer(script) as server:
        result = aextract(client_for(server.base_url, http_retries=1))
    assert result.stats.http_retries == 1


def test_a_slow_loris_answer_is_cut_at_the_total_deadline():
    """One byte every 0.1 s: each read is quick, the whole answer would take minutes."""
    slow = Reply(body=GOOD.body, trickle=0.1)
    with FakeOpenAIServer(default=slow) as server:
        with pytest.raises(TransientError, match=r"timed out after 1s"):
            aextract(client_for(server.base_url, timeout=1.0))
        with pytest.raises(TransientError, match=r"timed out after 1s"):
            client = client_for(server.base_url, timeout=1.0)
            client.extract(MESSAGES, CaseReport)  # the sync client too


def test_a_never_ending_chunked_answer_is_cut_at_the_size_cap():
    endless = Reply(body=b'{"id": "chatcmpl-crafted", "padding": "' + b"x" * 60_000, endless=True)
    with FakeOpenAIServer(default=endless) as server:
        for sync in (False, True):
            client = client_for(server.base_url, timeout=30, http_retries=2,
                                max_response_bytes=2_000_000)  # fmt: skip
            with pytest.raises(NonRetryableError, match=r"grew past 2,000,000 bytes") as info:
                if sync:
                    client.extract(MESSAGES, CaseReport)
                else:
                    aextract(client)
            assert info.value.kind == "response_too_large"
            assert info.value.context["http_requests"] == 1  # not asked again
    assert len(server.requests) == 2


# ---------------------------------------------------------------- 9. redirects


@pytest.mark.parametrize("status", [301, 307, 308])
def test_a_redirect_to_another_host_is_not_followed(status):
    with FakeOpenAIServer(default=GOOD) as elsewhere:
        other = elsewhere.base_url.replace("127.0.0.1", "localhost")
        moved = Reply(status=status, body={}, headers={"location": f"{other}/chat/completions"})
        with FakeOpenAIServer(default=moved) as server:
            for record_mode in ("off", "record"):
                client = client_for(server.base_url)
                if record_mode == "record":
                    client = ModelClient(client.settings, RecordingStore(
                        __import__("tempfile").mkdtemp(), "record"))  # fmt: skip
                with pytest.raises(NonRetryableError, match="not followed"):
                    aextract(client)
        assert elsewhere.requests == []  # the document never went there


# ---------------------------------------------------------------- 9. tool calls


def _calls(*names: str) -> dict:
    body = crafted_tool_completion(rel.CRAFTED_ANSWER, tool_name=names[0])
    call = body["choices"][0]["message"]["tool_calls"][0]
    body["choices"][0]["message"]["tool_calls"] = [
        {**call, "id": f"call_{i}", "function": {**call["function"], "name": n}}
        for i, n in enumerate(names)
    ]
    return body


@pytest.mark.parametrize(
    ("names", "says"),
    [(("DeleteAllFiles",), "called 'DeleteAllFiles'"), (("CaseReport", "CaseReport"), "2 tool")],
)
def test_a_wrong_tool_or_two_tool_calls_are_rejected(names, says):
    with (
        FakeOpenAIServer(default=Reply(body=_calls(*names))) as server,
        pytest.raises(ValidationFailed, match=says),
    ):
        aextract(client_for(server.base_url))


# ---------------------------------------------------------------- 6. credentials in the URL

PASSWORD = "hunter2-PASSWORD-777"
URL_KEY = "azure-KEY-5551234"


def test_credentials_in_the_base_url_and_an_echoed_key_stay_out_of_results(tmp_path):
    docs = tmp_path / "docs"
    rel.make_documents(docs, 3)
    key = "sk-test-ECHOED-0123456789abcdef"

    def echo(payload: dict, index: int) -> Reply:  # crafted: a server that echoes secrets
        doc = rel.document_key(payload)
        if doc == "rel-0002":
            return crafted_error(404, f"no such model at /v1?api-key={URL_KEY}")
        answer = json.loads(json.dumps(rel.CRAFTED_ANSWER))
        answer["article"]["doi"] = f"10.1/{key}"
        answer["article"]["title"] += f" {PASSWORD}"
        body = crafted_tool_completion(answer, model=f"echo-{URL_KEY}")
        return Reply(body=body)

    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(echo) as server:
        url = server.base_url.replace("//", f"//user:{PASSWORD}@") + f"?api-key={URL_KEY}"
        result = CliRunner(env={"OPENAI_API_KEY": key}).invoke(app, [
            "run", str(docs), "-o", str(out), "--base-url", url, "--model", "crafted-model",
            "--http-retries", "0", "--reasks", "0", "--no-progress",
            "--format", "csv"])  # fmt: skip
        # and a dead server: the connection error names the URL
        dead = CliRunner().invoke(app, [
            "run", str(docs), "-o", str(tmp_path / "dead.jsonl"), "--base-url",
            f"http://user:{PASSWORD}@127.0.0.1:9/v1?api-key={URL_KEY}", "--no-progress",
            "--http-retries", "0"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "cannot connect to http://[redacted]@127.0.0.1:9/v1?api-key=[redacted]" in dead.output
    texts = {"output": result.output, "dead": dead.output}
    texts.update({p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()})
    for name, text in texts.items():
        for secret in (PASSWORD, URL_KEY, key):
            assert secret not in text, (name, secret)
    records = {r["document"]["id"]: r for r in records_json(out)}
    assert "[redacted]" in records["rel-0000"]["extraction"]["article"]["doi"]
    assert "[redacted]" in records["rel-0000"]["model_returned"]


# ---------------------------------------------------------------- 8. misleading errors


def test_a_corrupt_recording_is_named_in_a_replay_error(tmp_path):
    rec = tmp_path / "rec"
    with FakeOpenAIServer(default=GOOD) as server:
        store = RecordingStore(rec, "record")
        ModelClient(client_for(server.base_url).settings, store).extract(MESSAGES, CaseReport)
    (path,) = rec.glob("*.json")
    path.write_text(path.read_text()[:200])  # cut short, as a bad copy would
    replay = ModelClient(ModelSettings(model="crafted-model", base_url="http://127.0.0.1:9/v1",
                                       http_retries=2), RecordingStore(rec, "replay"))  # fmt: skip
    with pytest.raises(ReplayMiss, match="corrupt") as info:
        replay.extract(MESSAGES, CaseReport)
    assert str(path) in str(info.value) and "cannot connect" not in str(info.value)
    assert info.value.context["http_requests"] == 1  # not retried as a network fault


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1/v1", "not a url", "http://"])
def test_a_bad_base_url_is_a_one_line_usage_error(tmp_path, url):
    (tmp_path / "a.txt").write_text("An 87-year-old female patient.")
    result = CliRunner().invoke(app, ["run", str(tmp_path / "a.txt"), "-o",
                                      str(tmp_path / "r.jsonl"), "--base-url", url])  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--base-url" in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# ---------------------------------------------------------------- 9. grounding off the loop


def test_grounding_runs_off_the_event_loop(monkeypatch, seed_text):
    """Grounding a long answer is CPU work: it must not stall other documents' requests."""
    import threading

    import caseextract.grounding as grounding

    from helpers import CRAFTED_SEED_ANSWER

    threads: list[str] = []
    real_ground = grounding.ground

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real_ground(*args, **kwargs)

    monkeypatch.setattr(grounding, "ground", spy)
    answer = json.loads(json.dumps(CRAFTED_SEED_ANSWER))
    answer["patients"][0]["findings"][0]["evidence"] = ["a quote the report does not hold"]
    script = [Reply(body=crafted_tool_completion(answer)),  # ungrounded: asked again
              Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))]  # fmt: skip
    messages = [{"role": "user", "content": seed_text}]

    async def go(client: ModelClient):
        try:
            loop_thread = threading.current_thread().name
            result = await client.aextract(messages, CaseReport, source_text=seed_text)
            return loop_thread, result
        finally:
            await client.aclose()

    with FakeOpenAIServer(script) as server:
        loop_thread, result = asyncio.run(go(client_for(server.base_url, reasks=1, timeout=30)))
    assert result.stats.attempts == 2 and all(f.grounded for f in result.facts)
    assert len(threads) >= 2 and loop_thread not in threads, threads
