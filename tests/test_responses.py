"""The Responses API path: answers counted, refused and cut as the API reports them;
the strict-schema limits; prompt caching and its price. Answers here are crafted."""

import datetime as dt
import json

import pytest
from caseextract.errors import ModelRefused, OutputTruncated
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.recording import RecordingStore
from caseextract.review.ledger import ledger_from_results, load_prices
from caseextract.testing import (
    ConformanceServer,
    FakeOpenAIServer,
    Reply,
    check_strict_schema,
    crafted_function_call,
    crafted_refusal_item,
    crafted_response,
)
from pydantic import BaseModel

KEY = "sk-responses-test-key"
MESSAGES = [{"role": "system", "content": "Extract."}, {"role": "user", "content": "Item a."}]


class Item(BaseModel):
    name: str
    note: str | None = None
    kind: str = "x"


def settings_for(monkeypatch, url, **kw):
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    kw.setdefault("model", "gpt-5.6-terra")
    return ModelSettings(api_key=KEY, reasks=kw.pop("reasks", 0), http_retries=0, timeout=10, **kw)


def test_a_strict_answer_keeps_pydantic_defaults_and_counts_usage(monkeypatch):
    # crafted: a strict answer carries null for 'kind', which has a default
    body = crafted_response(
        [crafted_function_call({"name": "a", "note": None, "kind": None}, "Item")]
    )
    body["usage"]["input_tokens_details"] = {"cached_tokens": 1024, "cache_write_tokens": 256}
    body["usage"]["output_tokens_details"] = {"reasoning_tokens": 30}
    with FakeOpenAIServer(default=Reply(body=body)) as s:
        ext = ModelClient(settings_for(monkeypatch, s.base_url)).extract(MESSAGES, Item)
    assert ext.value == Item(name="a")
    stats = ext.stats
    assert (stats.prompt_tokens, stats.completion_tokens) == (100, 50)
    assert (stats.cached_tokens, stats.cache_write_tokens, stats.reasoning_tokens) == (
        1024,
        256,
        30,
    )
    [payload] = s.requests
    assert payload["_path"] == "/v1/responses"
    assert payload["input"] == MESSAGES and "messages" not in payload
    assert payload["tools"][0]["strict"] is True and "text" not in payload


def test_incomplete_at_max_output_tokens_is_reported_as_truncated(monkeypatch):
    # crafted: the answer cut at the budget, most of it spent reasoning
    body = crafted_response(
        [crafted_function_call('{"name": ', "Item")], incomplete="max_output_tokens"
    )
    body["usage"]["output_tokens_details"] = {"reasoning_tokens": 30000}
    with FakeOpenAIServer(default=Reply(body=body)) as s:
        client = ModelClient(settings_for(monkeypatch, s.base_url, reasks=2))
        with pytest.raises(OutputTruncated) as info:
            client.extract(MESSAGES, Item)
    assert len(s.requests) == 1, "a truncated answer is never re-asked"
    assert info.value.kind == "truncated"
    assert "max_output_tokens=32768" in str(info.value) and "30,000" in str(info.value)


def test_a_refusal_item_is_reported_as_refused(monkeypatch):
    body = crafted_response([crafted_refusal_item("I can't help with that.")])
    with FakeOpenAIServer(default=Reply(body=body)) as s:
        client = ModelClient(settings_for(monkeypatch, s.base_url, reasks=2))
        with pytest.raises(ModelRefused, match="can't help"):
            client.extract(MESSAGES, Item)
    assert len(s.requests) == 1


def test_an_invalid_answer_is_re_asked_with_the_error_fed_back(monkeypatch):
    bad = crafted_response([crafted_function_call({"name": 5}, "Item")])
    good = crafted_response([crafted_function_call({"name": "a"}, "Item")])
    with FakeOpenAIServer([Reply(body=bad), Reply(body=good)]) as s:
        ext = ModelClient(settings_for(monkeypatch, s.base_url, reasks=1)).extract(MESSAGES, Item)
    assert ext.value.name == "a" and ext.stats.attempts == 2
    first, second = s.requests
    assert len(second["input"]) == len(first["input"]) + 1
    assert "Validation Error" in second["input"][-1]["content"]
    # the cache key is the prompt's and the schema's: the re-ask shares it
    assert first["prompt_cache_key"] == second["prompt_cache_key"]


def test_prompt_cache_key_is_stable_per_prompt_and_schema(monkeypatch):
    with ConformanceServer(lambda _p: {"name": "a"}, today=dt.date(2026, 12, 7)) as s:
        client = ModelClient(settings_for(monkeypatch, s.base_url))
        client.extract(MESSAGES, Item)
        client.extract([MESSAGES[0], {"role": "user", "content": "Another document."}], Item)
        client.extract([{"role": "system", "content": "A new prompt."}, MESSAGES[1]], Item)
    keys = [r["prompt_cache_key"] for r in s.requests]
    assert keys[0] == keys[1] != keys[2]


def test_responses_exchanges_record_and_replay_and_old_chat_recordings_still_do(
    monkeypatch, tmp_path
):
    with ConformanceServer(lambda _p: {"name": "a"}, today=dt.date(2026, 12, 7)) as s:
        settings = settings_for(monkeypatch, s.base_url)
        ModelClient(settings, RecordingStore(tmp_path, "record")).extract(MESSAGES, Item)
    [saved] = tmp_path.glob("*.json")
    data = json.loads(saved.read_text())
    assert data["request"]["path"] == "/v1/responses" and KEY not in saved.read_text()
    replayed = ModelClient(
        ModelSettings(model="gpt-5.6-terra", reasks=0), RecordingStore(tmp_path, "replay")
    ).extract(MESSAGES, Item)
    assert replayed.value.name == "a"


def _schema(props, depth=1):
    node = {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
    }
    for _ in range(depth - 1):
        node = {
            "type": "object",
            "properties": {"x": node},
            "required": ["x"],
            "additionalProperties": False,
        }
    return node


def test_strict_schema_limits_from_the_structured_outputs_guide():
    assert check_strict_schema(_schema({"a": {"type": "string"}}, depth=10)) is None
    assert "nesting exceeds 10" in check_strict_schema(_schema({"a": {"type": "string"}}, 12))
    many = {f"p{i}": {"type": "string"} for i in range(5001)}
    assert "more than 5000 properties" in check_strict_schema(_schema(many))
    enum = {"type": "string", "enum": [f"v{i}" for i in range(1001)]}
    assert "1,001 enum values" in check_strict_schema(_schema({"a": enum}))
    wide = {"type": "string", "enum": [f"{i:03d}" + "x" * 60 for i in range(251)]}
    assert "for an enum of more than 250 values" in check_strict_schema(_schema({"a": wide}))
    small = {"type": "string", "enum": [f"{i:03d}" + "x" * 50 for i in range(250)]}
    assert check_strict_schema(_schema({"a": small})) is None  # 250 values: no 15,000 limit
    long_names = {("n" * 999) + f"{i:03d}": {"type": "string"} for i in range(121)}
    assert "exceeds the limit of 120,000" in check_strict_schema(_schema(long_names))


def test_cost_prices_cached_and_cache_write_tokens(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."m"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n'
        "cached_input_per_million = 0.5\ncache_write_per_million = 2.5\n"
    )
    price = load_prices(prices)["m"]
    # 1M prompt: 600k cached (0.5), 100k written (2.5), 300k plain (2.0) = 0.3+0.25+0.6
    assert price.cost(1_000_000, 0, 600_000, cache_write_tokens=100_000) == pytest.approx(1.15)
    line = {
        "document": {"id": "d", "sha256": "s"},
        "status": "ok",
        "model": "m",
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "cache_write_tokens": 7},
    }
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(line) + "\n")
    assert ledger_from_results([path])["m"].cache_write_tokens == 7
