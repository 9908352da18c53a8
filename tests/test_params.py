"""Request parameters per model family and endpoint, and the strict-schema transform."""

import json

import pytest
from caseextract.errors import ConfigError
from caseextract.llm import ModelSettings, wire_model
from caseextract.llm.params import endpoint_kind, model_family, resolve
from caseextract.llm.strict import apply_strict, drop_added_nulls, strict_schema
from caseextract.schema import CaseReport
from caseextract.testing import check_strict_schema
from pydantic import BaseModel, Field


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-5-mini", "reasoning"),
        ("gpt-5", "reasoning"),
        ("gpt-5.1", "reasoning"),
        ("gpt-5.2-2025-12-11", "reasoning"),
        ("o1", "reasoning"),
        ("o3-mini", "reasoning"),
        ("o4-mini-2025-04-16", "reasoning"),
        ("openai/o3", "reasoning"),
        ("ft:gpt-4o-mini-2024-07-18:org::abc", "chat"),
        ("gpt-4o-mini", "chat"),
        ("gpt-4.1", "chat"),
        ("gpt-35-turbo", "chat"),
        ("gemma-3-270m", "unknown"),
        ("prod-chat", "unknown"),
        ("ollama-o1ish", "unknown"),
    ],
)
def test_family_from_the_model_name(name, family):
    assert model_family(name) == family


def test_family_override_for_a_deployment_name():
    assert model_family("prod-chat", "reasoning") == "reasoning"
    with pytest.raises(ConfigError):
        model_family("x", "thinking")


@pytest.mark.parametrize(
    ("base_url", "azure", "kind"),
    [
        (None, None, "openai"),
        ("https://api.openai.com/v1", None, "openai"),
        ("https://res.openai.azure.com/openai", None, "azure"),
        (None, "https://res.openai.azure.com", "azure"),
        ("http://127.0.0.1:8080/v1", None, "compatible"),
    ],
)
def test_endpoint_kind(base_url, azure, kind):
    assert endpoint_kind(base_url, azure) == kind


def test_openai_gets_max_completion_tokens_and_reasoning_models_no_temperature():
    chat = resolve("gpt-4o-mini", None)
    assert (chat.token_param, chat.budget, chat.temperature) == ("max_completion_tokens", 8192, 0.0)
    reasoning = resolve("gpt-5-mini", None, reasoning_effort="low")
    assert reasoning.token_param == "max_completion_tokens"
    assert reasoning.budget == 32768  # room for reasoning tokens
    assert reasoning.temperature is None
    sent = reasoning.apply({"model": "gpt-5-mini", "max_tokens": 5, "temperature": 0.0})
    assert "max_tokens" not in sent and "temperature" not in sent
    assert sent["max_completion_tokens"] == 32768 and sent["reasoning_effort"] == "low"


def test_other_servers_keep_max_tokens_and_temperature():
    local = resolve("gemma-3-270m", "http://127.0.0.1:8080/v1")
    assert (local.token_param, local.temperature) == ("max_tokens", 0.0)
    assert local.apply({}) == {"max_tokens": 8192, "temperature": 0.0}
    # a reasoning model behind a proxy still gets the parameter it accepts
    assert resolve("o4-mini", "http://127.0.0.1:9/v1").token_param == "max_completion_tokens"
    # a flag decides for servers the rule cannot know
    forced = resolve("my-model", "http://127.0.0.1:9/v1", token_param="max_completion_tokens")
    assert forced.token_param == "max_completion_tokens"


def test_unknown_family_on_openai_or_azure_gets_the_default_temperature():
    assert resolve("prod-chat", None, "https://r.openai.azure.com").temperature is None
    assert resolve("prod-chat", None, "https://r.openai.azure.com", family="chat").temperature == 0


def test_settings_refuse_what_cannot_work():
    with pytest.raises(ConfigError, match="max_completion_tokens"):
        ModelSettings(model="gpt-5-mini", token_param="max_tokens")
    with pytest.raises(ConfigError, match="reasoning effort"):
        ModelSettings(model="gpt-5-mini", reasoning_effort="extreme")
    with pytest.raises(ConfigError, match="drop --reasoning-effort"):
        ModelSettings(model="gpt-4o-mini", reasoning_effort="low")
    with pytest.raises(ConfigError, match="api-version"):
        ModelSettings(model="d", azure_endpoint="https://r.openai.azure.com")
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        _ = ModelSettings(model="d", azure_endpoint="https://r", api_version="2024-10-21").key


def test_settings_resolve_once_and_say_what_they_send():
    s = ModelSettings(model="o4-mini")
    assert (s.max_tokens, s.temperature, s.token_param) == (32768, None, "max_completion_tokens")
    assert ModelSettings(model="gpt-4o-mini", max_tokens=None).max_tokens is None
    assert ModelSettings(model="gpt-4o-mini", max_tokens=2000).max_tokens == 2000


# ------------------------------------------------------------------ strict schemas


def case_report_schema():
    return wire_model(CaseReport).openai_schema["parameters"]


def test_case_report_schema_is_refused_as_is_and_accepted_transformed():
    original = case_report_schema()
    assert check_strict_schema(original) is not None
    strict = strict_schema(original)
    assert check_strict_schema(strict) is None
    # every keyword outside the conservative subset is gone, descriptions stay
    text = json.dumps(strict)
    for word in ('"default"', '"minLength"', '"minItems"', '"title": "Finding"'):
        assert word not in text, word
    finding = strict["$defs"]["Finding"]
    assert finding["required"] == list(finding["properties"])
    assert finding["additionalProperties"] is False
    assert "negates" in finding["properties"]["assertion"]["description"]
    # an optional enum with a default became nullable, its ref inlined
    assert finding["properties"]["assertion"]["type"] == ["string", "null"]
    assert None in finding["properties"]["assertion"]["enum"]
    assert strict_schema(original) == strict  # deterministic: a stable cacheable prefix


class Item(BaseModel):
    name: str
    note: str | None = None
    kind: str = "x"
    tags: list[str] = Field(default_factory=list)


class WithMap(BaseModel):
    counts: dict[str, int]


def test_optional_values_are_nullable_and_lists_stay_lists():
    s = strict_schema(Item.model_json_schema())
    assert s["required"] == ["name", "note", "kind", "tags"]
    assert s["properties"]["kind"]["type"] == ["string", "null"]
    assert s["properties"]["tags"]["type"] == "array"
    assert s["properties"]["name"]["type"] == "string"


def test_added_nulls_are_dropped_so_pydantic_applies_defaults():
    answer = {"name": "a", "note": None, "kind": None, "tags": []}
    drop_added_nulls(answer, Item.model_json_schema())
    assert answer == {"name": "a", "note": None, "tags": []}
    assert Item.model_validate(answer).kind == "x"


def test_a_map_is_left_for_the_server_to_refuse():
    s = strict_schema(WithMap.model_json_schema())
    assert s["properties"]["counts"]["additionalProperties"] == {"type": "integer"}
    assert "additionalProperties" in check_strict_schema(s)


def test_apply_strict_marks_tools_and_response_format_strict():
    params = Item.model_json_schema()
    tools = [{"type": "function", "function": {"name": "Item", "parameters": params}}]
    sent, _ = apply_strict({"tools": tools})
    fn = sent["tools"][0]["function"]
    assert fn["strict"] is True and check_strict_schema(fn["parameters"]) is None
    assert tools[0]["function"]["parameters"] is params  # the caller's request is untouched
    fmt = {"type": "json_schema", "json_schema": {"name": "Item", "schema": params}}
    sent, _ = apply_strict({"response_format": fmt})
    spec = sent["response_format"]["json_schema"]
    assert spec["strict"] is True and check_strict_schema(spec["schema"]) is None
