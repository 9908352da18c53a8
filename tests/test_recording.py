"""Record/replay at the HTTP boundary against a real loopback server."""

import asyncio
import json

import pytest
from caseextract.errors import ReplayMiss
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.recording import RecordingStore
from caseextract.schema import CaseReport
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

from helpers import CRAFTED_SEED_ANSWER

FAKE_KEY = "sk-test-caseextract-SECRET-0123456789"
MESSAGES = [
    {"role": "system", "content": "system prompt v1"},
    {"role": "user", "content": "An 87-year-old female patient had back pain."},
]


def settings(base_url, **kw):
    return ModelSettings(
        model=kw.pop("model", "crafted-model"),
        base_url=base_url,
        api_key=FAKE_KEY,
        timeout=5,
        http_retries=0,
        reasks=1,
        **kw,
    )


def crafted_server():
    return FakeOpenAIServer(
        default=Reply(
            body=crafted_tool_completion(CRAFTED_SEED_ANSWER),
            headers={"x-secret-header": "do-not-store", "openai-processing-ms": "12"},
        )
    )


def test_round_trip_record_then_replay_offline(tmp_path):
    with crafted_server() as server:
        base = server.base_url
        store = RecordingStore(tmp_path / "rec", "record")
        recorded = ModelClient(settings(base), store).extract(MESSAGES, CaseReport)
    assert store.recorded == 1
    # the server is stopped: replay must not touch the network
    replay = RecordingStore(tmp_path / "rec", "replay")
    replayed = ModelClient(settings(base), replay).extract(MESSAGES, CaseReport)
    assert replayed.value == recorded.value
    assert replay.hits == 1 and replay.forwarded == 0
    data = json.loads(next((tmp_path / "rec").glob("*.json")).read_text())
    assert data["provenance"]["model"] == "crafted-model"
    assert data["provenance"]["server"].startswith("127.0.0.1:")
    assert data["provenance"]["recorded_at"] and data["provenance"]["caseextract_version"]
    assert "x-secret-header" not in data["response"]["headers"]
    assert data["response"]["headers"]["openai-processing-ms"] == "12"
    assert "headers" not in data["request"]


@pytest.mark.parametrize(
    ("change", "part"),
    [
        (dict(model="other-model"), "model"),
        (
            dict(messages=[{"role": "system", "content": "system prompt v2"}, MESSAGES[1]]),
            "prompt (system message)",
        ),
        (
            dict(messages=[MESSAGES[0], {"role": "user", "content": "another report"}]),
            "document (user message)",
        ),
        (dict(max_tokens=77), "parameters"),
    ],
)
def test_a_miss_names_what_differs(tmp_path, change, part):
    with crafted_server() as server:
        ModelClient(settings(server.base_url), RecordingStore(tmp_path, "record")).extract(
            MESSAGES, CaseReport
        )
    messages = change.pop("messages", MESSAGES)
    client = ModelClient(
        settings("http://127.0.0.1:9/v1", **change), RecordingStore(tmp_path, "replay")
    )
    with pytest.raises(ReplayMiss) as err:
        client.extract(messages, CaseReport)
    assert part in str(err.value)
    assert "nearest recording differs" in str(err.value)


def test_schema_change_is_named(tmp_path):
    from pydantic import BaseModel

    class Other(BaseModel):
        x: int

    with crafted_server() as server:
        ModelClient(settings(server.base_url), RecordingStore(tmp_path, "record")).extract(
            MESSAGES, CaseReport
        )
    client = ModelClient(settings("http://127.0.0.1:9/v1"), RecordingStore(tmp_path, "replay"))
    with pytest.raises(ReplayMiss, match="schema"):
        client.extract(MESSAGES, Other)


def test_cache_hit_makes_no_network_call(tmp_path):
    with crafted_server() as server:
        store = RecordingStore(tmp_path, "cache")
        client = ModelClient(settings(server.base_url), store)
        client.extract(MESSAGES, CaseReport)
        client.extract(MESSAGES, CaseReport)
        assert len(server.requests) == 1
        assert (store.forwarded, store.hits) == (1, 1)


def test_async_path_records_and_replays(tmp_path):
    async def go(store, base):
        client = ModelClient(settings(base), store)
        try:
            return await client.aextract(MESSAGES, CaseReport)
        finally:
            await client.aclose()

    with crafted_server() as server:
        base = server.base_url
        first = asyncio.run(go(RecordingStore(tmp_path, "record"), base))
    again = asyncio.run(go(RecordingStore(tmp_path, "replay"), base))
    assert first.value == again.value


def test_reasks_replay_deterministically(tmp_path):
    bad = Reply(body=crafted_tool_completion({"article": {}, "patients": [{"age": 3}]}))
    good = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))
    with FakeOpenAIServer([bad, good]) as server:
        store = RecordingStore(tmp_path, "record")
        first = ModelClient(settings(server.base_url), store).extract(MESSAGES, CaseReport)
    assert first.stats.attempts == 2 and store.recorded == 2
    replay = RecordingStore(tmp_path, "replay")
    again = ModelClient(settings("http://127.0.0.1:9/v1"), replay).extract(MESSAGES, CaseReport)
    assert again.stats.attempts == 2 and replay.hits == 2
    assert again.value == first.value


def test_key_is_nowhere_on_disk(tmp_path):
    with crafted_server() as server:
        store = RecordingStore(tmp_path / "rec", "record")
        ModelClient(settings(server.base_url), store).extract(MESSAGES, CaseReport)
        assert f"Bearer {FAKE_KEY}" in server.request_headers[0].get("authorization", "")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written
    for path in written:
        assert FAKE_KEY not in path.read_text(encoding="utf-8", errors="replace"), path


def test_final_refusals_are_recorded_and_passing_faults_are_not(tmp_path):
    from caseextract.errors import NonRetryableError, TransientError
    from caseextract.testing import crafted_error

    too_long = crafted_error(400, "maximum context length exceeded", "context_length_exceeded")
    with FakeOpenAIServer([too_long, crafted_error(503, "busy")]) as server:
        store = RecordingStore(tmp_path, "record")
        client = ModelClient(settings(server.base_url), store)
        with pytest.raises(NonRetryableError):
            client.extract(MESSAGES, CaseReport)
        other = [MESSAGES[0], {"role": "user", "content": "another report"}]
        with pytest.raises(TransientError):
            client.extract(other, CaseReport)
    assert store.recorded == 1
    replay = ModelClient(settings("http://127.0.0.1:9/v1"), RecordingStore(tmp_path, "replay"))
    with pytest.raises(NonRetryableError, match="context"):
        replay.extract(MESSAGES, CaseReport)


@pytest.mark.parametrize("hostile", ["link to /dev/zero", "sparse 1 GiB file"])
def test_a_huge_or_endless_recording_is_named_not_read(tmp_path, hostile):
    import os

    from caseextract.cli import app
    from typer.testing import CliRunner

    with crafted_server() as server:
        ModelClient(settings(server.base_url), RecordingStore(tmp_path, "record")).extract(
            MESSAGES, CaseReport
        )
    bad = tmp_path / "0000-hostile.json"
    if hostile == "link to /dev/zero":
        os.symlink("/dev/zero", bad)
    else:
        with bad.open("wb") as fh:  # sparse: nothing is written to disk
            fh.truncate(1 << 30)
    client = ModelClient(
        settings("http://127.0.0.1:9/v1", model="other-model"), RecordingStore(tmp_path, "replay")
    )
    with pytest.raises(ReplayMiss) as err:  # a miss, explained from the readable recordings
        client.extract(MESSAGES, CaseReport)
    assert "nearest recording differs" in str(err.value) and "model" in str(err.value)
    result = CliRunner().invoke(app, ["cost", "--recordings", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert bad.name in " ".join(result.output.split())
