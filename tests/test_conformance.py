"""The pipeline's requests against a server that enforces the OpenAI API's documented rules.

``ConformanceServer`` (caseextract.testing) refuses what api.openai.com and Azure
OpenAI refuse, with their error bodies; its answers are crafted. These tests send
the pipeline's real requests (real openai client, real HTTP on 127.0.0.1).
"""

import copy
import datetime as dt
import json

import pytest
from caseextract.cli import app
from caseextract.errors import ConfigError, NonRetryableError
from caseextract.llm import INSTRUCTOR_MODES, STRICT_MODES, ModelClient, ModelSettings, models
from caseextract.tasks import default_task
from caseextract.testing import MODELS, ConformanceServer, check_strict_schema
from pydantic import BaseModel
from typer.testing import CliRunner

from helpers import CRAFTED_SEED_ANSWER

runner = CliRunner()
KEY = "sk-conformance-test-key-0000"
AZURE_KEY = "azure-conformance-key-1111"
API_VERSION = "2024-10-21"
TODAY = dt.date(2026, 12, 7)  # the served models and shutdowns as of this day
# current models (no announced shutdown, or not yet reached) a user picks today
CHECKED = ("gpt-5.4-mini", "gpt-5.6-terra", "gpt-6-sol", "gpt-4o-mini")
DEPLOYMENTS = {
    "gpt-4o-mini": "gpt-4o-mini",
    "prod-reasoner": "gpt-5.4-mini",
    "prod-chat": "gpt-4o-mini",
    "prod-terra": "gpt-5.6-terra",
}


def crafted_answer(_payload):
    """The crafted seed answer plus a finding that leaves its assertion to the default."""
    answer = copy.deepcopy(CRAFTED_SEED_ANSWER)
    pain = {"name": "back pain", "evidence": ["had back pain with acute deterioration"]}
    answer["patients"][0]["findings"].append(pain)
    return answer


@pytest.fixture
def server():
    with ConformanceServer(crafted_answer, deployments=DEPLOYMENTS, today=TODAY) as s:
        yield s


@pytest.fixture
def seed_messages():
    from caseextract.documents import load_document

    from conftest import SEED

    task = default_task()
    return task, task.messages(load_document(SEED))


def assert_conformant(payload, model_family, mode):
    """What the pipeline must never send, whatever the server says."""
    if model_family == "reasoning":
        assert "max_tokens" not in payload, "max_tokens sent to a reasoning model"
        assert "temperature" not in payload, "temperature sent to a reasoning model"
    if payload["_endpoint"] == "responses":
        for name in ("max_tokens", "max_completion_tokens", "reasoning_effort", "messages"):
            assert name not in payload, f"{name} sent to /v1/responses"
        [tool] = payload["tools"]
        assert tool["strict"] is True, "a Responses tool without strict: true"
        assert check_strict_schema(tool["parameters"]) is None
        assert payload["tool_choice"] == {"type": "function", "name": tool["name"]}
        assert payload["prompt_cache_key"].startswith("caseextract-")
        return
    if mode in STRICT_MODES:
        if mode == "tools_strict":
            fn = payload["tools"][0]["function"]
            strict, schema = fn.get("strict"), fn.get("parameters")
        else:
            spec = payload["response_format"]["json_schema"]
            strict, schema = spec.get("strict"), spec.get("schema")
        assert strict is True, f"--mode {mode} sent a schema without strict: true"
        assert check_strict_schema(schema) is None, check_strict_schema(schema)


def openai_settings(monkeypatch, server, model, mode, **extra):
    """Settings for the OpenAI API itself (no base URL); the openai client is pointed
    at the loopback server through its own OPENAI_BASE_URL variable."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return ModelSettings(
        model=model,
        api_key=KEY,
        instructor_mode=mode,
        reasks=0,
        http_retries=0,
        timeout=10,
        **extra,
    )


def assert_seed_answer(ext):
    assert ext.value.patients[0].age.years == 87
    # a strict answer carries every property (null when absent): defaults still apply
    absent, pain = ext.value.patients[0].findings
    assert (absent.assertion, pain.assertion) == ("absent", "present")
    assert ext.value.patients[0].interventions[0].urgency is None
    assert all(f.grounded for f in ext.facts)


@pytest.mark.parametrize("mode", list(INSTRUCTOR_MODES))
@pytest.mark.parametrize("model", CHECKED)
def test_openai_api_requests_pass_in_every_mode(monkeypatch, server, seed_messages, model, mode):
    task, messages = seed_messages
    client = ModelClient(openai_settings(monkeypatch, server, model, mode))
    ext = client.extract(messages, task.response_model, source_text=messages[1]["content"])
    assert server.refused == []
    [payload] = server.requests
    # --api auto: the tool modes on /v1/responses, the JSON modes on Chat Completions
    if mode in ("tools", "tools_strict"):
        assert payload["_path"] == "/v1/responses"
        assert payload["max_output_tokens"] == (32768 if model != "gpt-4o-mini" else 8192)
    else:
        assert payload["_path"] == "/v1/chat/completions"
        assert "max_completion_tokens" in payload and "max_tokens" not in payload
    assert_conformant(payload, MODELS[model].family, mode)
    assert_seed_answer(ext)
    assert ext.stats.model == model
    if MODELS[model].family == "reasoning":
        assert ext.stats.reasoning_tokens == ConformanceServer.REASONING_TOKENS


@pytest.mark.parametrize("mode", ["tools", "tools_strict"])
@pytest.mark.parametrize(
    ("model", "effort"), [("gpt-5.4-mini", None), ("gpt-5.6-terra", "none"), ("gpt-6-sol", "none")]
)
def test_chat_completions_tool_requests_pass_with_the_effort_each_family_needs(
    monkeypatch, server, seed_messages, model, effort, mode
):
    task, messages = seed_messages
    settings = openai_settings(
        monkeypatch, server, model, mode, api="chat", reasoning_effort=effort
    )
    ext = ModelClient(settings).extract(messages, task.response_model)
    assert server.refused == []
    [payload] = server.requests
    assert payload["_path"] == "/v1/chat/completions"
    assert payload.get("reasoning_effort") == effort
    assert_conformant(payload, "reasoning", mode)
    assert ext.value.patients[0].age.years == 87


class Item(BaseModel):
    name: str
    note: str | None = None


def item_answer(_payload):
    return {"name": "a"}


def test_function_tools_never_reach_chat_completions_for_a_model_that_refuses_them(monkeypatch):
    """Every served model, every effort it takes (and none sent), both APIs, both tool
    modes: the request is refused up front, or the server (which enforces the rule with
    the API's own error body) accepts it. A tools-with-effort 400 fails this test."""
    messages = [{"role": "user", "content": "Name one item."}]
    sent = up_front = 0
    with ConformanceServer(item_answer, today=TODAY) as s:
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        for model, spec in MODELS.items():
            if models.shutdown_date(model) and models.shutdown_date(model) <= TODAY.isoformat():
                continue  # retired: 404 (test_a_retired_model_answers_404_model_not_found)
            for effort in (None, *spec.efforts):
                for api in ("auto", "chat"):
                    for mode in ("tools", "tools_strict"):
                        try:
                            settings = ModelSettings(
                                model=model,
                                api_key=KEY,
                                api=api,
                                instructor_mode=mode,
                                reasoning_effort=effort,
                                reasks=0,
                                http_retries=0,
                            )
                        except ConfigError as exc:
                            assert "--api responses" in str(exc)
                            up_front += 1
                            continue
                        client = ModelClient(settings)
                        client.extract(messages, Item)
                        client.close()
                        sent += 1
        tools_refusals = [r for r in s.refused if "Function tools" in r["error"]["message"]]
        assert tools_refusals == []
        assert s.refused == []
    assert sent > 50 and up_front > 10


@pytest.mark.parametrize("mode", list(INSTRUCTOR_MODES))
def test_azure_v1_deployment_requests_pass_in_every_mode(server, seed_messages, mode):
    """The v1 base URL (https://NAME.openai.azure.com/openai/v1/, no api-version): the
    path tells it is Azure, so --api auto picks Responses for the tool modes."""
    task, messages = seed_messages
    settings = ModelSettings(
        model="prod-terra",
        base_url=server.azure_v1,
        api_key=AZURE_KEY,
        instructor_mode=mode,
        reasks=0,
        http_retries=0,
        timeout=10,
    )
    ModelClient(settings).extract(messages, task.response_model)
    assert server.refused == []
    [payload] = server.requests
    api = "responses" if mode in ("tools", "tools_strict") else "chat"
    assert settings.api == api
    suffix = "responses" if api == "responses" else "chat/completions"
    assert payload["_path"] == f"/openai/v1/{suffix}"
    assert_conformant(payload, "reasoning", mode)


@pytest.mark.parametrize("mode", list(INSTRUCTOR_MODES))
@pytest.mark.parametrize("deployment", ["gpt-4o-mini", "prod-reasoner", "prod-chat"])
def test_azure_deployment_requests_pass_in_every_mode(server, seed_messages, deployment, mode):
    task, messages = seed_messages
    settings = ModelSettings(
        model=deployment,
        api_key=AZURE_KEY,
        azure_endpoint=server.endpoint,
        api_version=API_VERSION,
        instructor_mode=mode,
        reasks=0,
        http_retries=0,
        timeout=10,
    )
    assert settings.api == "chat"  # the dated path: Responses on Azure needs the v1 API
    client = ModelClient(settings)
    client.extract(messages, task.response_model)
    assert server.refused == []
    [payload] = server.requests
    path = f"/openai/deployments/{deployment}/chat/completions?api-version={API_VERSION}"
    assert payload["_path"] == path
    headers = {k.lower(): v for k, v in payload["_headers"].items()}
    assert headers["api-key"] == AZURE_KEY
    # "prod-reasoner" says nothing of its model: the defaults every model accepts
    assert_conformant(payload, MODELS[DEPLOYMENTS[deployment]].family, mode)
    assert "max_completion_tokens" in payload


def refused(monkeypatch, server, seed_messages, model, mode="tools", response_model=None, **kw):
    kw.setdefault("api", "chat")
    task, messages = seed_messages
    client = ModelClient(openai_settings(monkeypatch, server, model, mode, **kw))
    with pytest.raises(NonRetryableError) as info:
        client.extract(messages, response_model or task.response_model)
    assert len(server.requests) == 1, "a refused request is never retried"
    message = str(info.value)
    assert "\n" not in message
    return server.refused[-1]["error"], message


def test_max_tokens_to_a_reasoning_model_is_refused_with_the_api_error(
    monkeypatch, server, seed_messages
):
    # told (wrongly) that gpt-5-mini is a chat model behind a plain server
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    err, message = refused(
        monkeypatch,
        server,
        seed_messages,
        "gpt-5-mini",
        model_family="chat",
        token_param="max_tokens",
    )
    assert (err["code"], err["param"]) == ("unsupported_parameter", "max_tokens")
    assert "Use 'max_completion_tokens' instead" in err["message"]
    assert "--token-param max_completion_tokens" in message


def test_temperature_to_a_reasoning_model_is_refused(monkeypatch, server, seed_messages):
    err, message = refused(monkeypatch, server, seed_messages, "gpt-5.4-mini", model_family="chat")
    assert (err["code"], err["param"]) == ("unsupported_value", "temperature")
    assert "Only the default (1) value is supported" in err["message"]
    assert "--model-family reasoning" in message


def test_reasoning_effort_to_a_chat_model_is_refused(server, seed_messages):
    # the name of a chat model is refused up front (test_params); a deployment
    # whose name says nothing is sent, and the API's refusal is explained
    task, messages = seed_messages
    settings = ModelSettings(
        model="prod-chat",
        api_key=AZURE_KEY,
        azure_endpoint=server.endpoint,
        api_version=API_VERSION,
        reasoning_effort="high",
        reasks=0,
        http_retries=0,
    )
    with pytest.raises(NonRetryableError, match="drop --reasoning-effort") as info:
        ModelClient(settings).extract(messages, task.response_model)
    assert "\n" not in str(info.value)
    err = server.refused[-1]["error"]
    assert (err["code"], err["param"]) == ("unsupported_parameter", "reasoning_effort")


@pytest.mark.parametrize("api", ["auto", "chat"])
def test_reasoning_effort_passes_through_on_both_endpoints(monkeypatch, server, seed_messages, api):
    task, messages = seed_messages
    settings = openai_settings(
        monkeypatch,
        server,
        "gpt-5.4-mini",
        "json_schema" if api == "chat" else "tools",
        reasoning_effort="xhigh",
        api=api,
    )
    ModelClient(settings).extract(messages, task.response_model)
    [payload] = server.requests
    if api == "chat":
        assert payload["reasoning_effort"] == "xhigh"
    else:
        assert payload["reasoning"] == {"effort": "xhigh"}


def test_an_effort_outside_the_set_sent_anyway_gets_the_api_refusal(server, seed_messages):
    # a deployment whose name says nothing: the family's set is the server's to enforce
    err, message = refused_azure(server, seed_messages, "prod-terra", reasoning_effort="minimal")
    assert err["code"] == "unsupported_value" and "'minimal'" in err["message"]
    assert "Supported values are: 'none', 'low'" in err["message"]
    assert "change --reasoning-effort" in message


def refused_azure(server, seed_messages, deployment, mode="json_schema", **kw):
    task, messages = seed_messages
    settings = ModelSettings(
        model=deployment,
        api_key=AZURE_KEY,
        azure_endpoint=server.endpoint,
        api_version=API_VERSION,
        instructor_mode=mode,
        reasks=0,
        http_retries=0,
        **kw,
    )
    with pytest.raises(NonRetryableError) as info:
        ModelClient(settings).extract(messages, task.response_model)
    assert len(server.requests) == 1, "a refused request is never retried"
    assert "\n" not in str(info.value)
    return server.refused[-1]["error"], str(info.value)


@pytest.mark.parametrize("effort", [None, "low"])
def test_tools_with_effort_on_chat_completions_get_the_exact_error_and_what_to_change(
    server, seed_messages, effort
):
    """A deployment name says nothing of its model: the request is sent, and refused as
    the API refuses it (GEMISIS/leviath#333, BerriAI/litellm#34569)."""
    err, message = refused_azure(
        server, seed_messages, "prod-terra", "tools", reasoning_effort=effort
    )
    assert err == {
        "message": "Function tools with reasoning_effort are not supported for gpt-5.6-terra in "
        "/v1/chat/completions. To use function tools, use /v1/responses or set "
        "reasoning_effort to 'none'.",
        "type": "invalid_request_error",
        "param": "reasoning_effort",
        "code": None,
    }
    assert "openai/v1/ --api responses, or --reasoning-effort none" in message


def test_gpt54_with_an_effort_gets_its_own_error_body(monkeypatch, server, seed_messages):
    # the family rule is refused up front by name; forced past it through --model-family,
    # the server answers as the API does (pipecat-ai/pipecat#4043)
    with ConformanceServer(item_answer, today=TODAY, deployments={"d": "gpt-5.4"}) as s:
        settings = ModelSettings(
            model="d",
            api_key=AZURE_KEY,
            azure_endpoint=s.endpoint,
            api_version=API_VERSION,
            reasoning_effort="high",
            reasks=0,
            http_retries=0,
        )
        with pytest.raises(NonRetryableError, match="--api responses"):
            ModelClient(settings).extract([{"role": "user", "content": "x"}], Item)
        assert s.refused[-1]["error"]["message"] == (
            "Function tools with reasoning_effort are not supported for gpt-5.4 in "
            "/v1/chat/completions. Please use /v1/responses instead."
        )


@pytest.mark.parametrize("model", ["o4-mini", "o3-mini"])
def test_a_retired_model_answers_404_model_not_found(monkeypatch, server, seed_messages, model):
    err, message = refused(monkeypatch, server, seed_messages, model, mode="json_schema")
    assert err["code"] == "model_not_found" and "has been deprecated" in err["message"]
    assert "shut down on 2026-10-23" in message and "--model gpt-5.4-mini" in message


def test_a_budget_above_the_models_limit_is_refused(monkeypatch, server, seed_messages):
    err, message = refused(monkeypatch, server, seed_messages, "gpt-4o-mini", max_tokens=32768)
    assert err["code"] == "invalid_value" and "at most 16384" in err["message"]
    assert "lower it" in message


class Tally(BaseModel):
    """A response model with a map: no strict form exists for it."""

    counts: dict[str, int]


@pytest.mark.parametrize(
    ("mode", "code"),
    [("tools_strict", "invalid_function_parameters"), ("json_schema", "invalid_json_schema")],
)
def test_a_schema_outside_the_strict_subset_is_refused(
    monkeypatch, server, seed_messages, mode, code
):
    err, message = refused(monkeypatch, server, seed_messages, "gpt-4o-mini", mode, Tally)
    assert err["code"] == code
    assert "'additionalProperties' is required to be supplied and to be false" in err["message"]
    assert "try --mode tools" in message


def test_azure_rules_unknown_deployment_and_missing_api_version(server, seed_messages):
    task, messages = seed_messages
    settings = ModelSettings(
        model="nope",
        api_key=AZURE_KEY,
        azure_endpoint=server.endpoint,
        api_version=API_VERSION,
        reasks=0,
        http_retries=0,
    )
    with pytest.raises(NonRetryableError, match="no Azure deployment 'nope'"):
        ModelClient(settings).extract(messages, task.response_model)
    assert server.refused[-1]["error"]["code"] == "DeploymentNotFound"
    # a request without api-version (a deployment URL used as a plain base URL)
    plain = ModelSettings(
        model="gpt-4o-mini",
        api_key=AZURE_KEY,
        base_url=f"{server.endpoint}/openai/deployments/gpt-4o-mini",
        reasks=0,
        http_retries=0,
    )
    with pytest.raises(NonRetryableError, match="404"):
        ModelClient(plain).extract(messages, task.response_model)
    assert server.refused[-1] == {"error": {"code": "404", "message": "Resource not found"}}


# ------------------------------------------------------------------ through the CLI


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def two_reports(tmp_path, seed_text):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.txt").write_text(seed_text)
    (folder / "b.txt").write_text(seed_text + "\n\nA second, different report text.\n")
    return folder


def test_two_documents_share_a_byte_identical_cacheable_prefix(server, two_reports, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ("run", two_reports, "--base-url", server.base_url, "--model", "gpt-5-mini")
    result = invoke(*args, "--mode", "tools_strict", "-j", "1", "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    first, second = server.requests
    assert first["messages"][1] != second["messages"][1]  # the documents differ
    prefix = [json.dumps(r["tools"]) + json.dumps(r["messages"][0]) for r in (first, second)]
    assert prefix[0] == prefix[1]
    recs = read(out)
    cached = [r["usage"]["cached_tokens"] for r in recs]
    assert cached[0] == 0 and cached[1] > 1024  # the second hit the (crafted) cache
    assert all(r["usage"]["reasoning_tokens"] == ConformanceServer.REASONING_TOKENS for r in recs)
    assert "of which cached prompt / reasoning" in result.output
    assert f"{cached[1]:,} / {2 * ConformanceServer.REASONING_TOKENS:,}" in result.output


def test_cli_refusal_is_one_not_retryable_line_saying_what_to_change(server, two_reports, tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke(
        "run",
        two_reports / "a.txt",
        "--base-url",
        server.base_url,
        "--model",
        "gpt-5-mini",
        "--model-family",
        "chat",
        "-o",
        out,
        "--no-progress",
    )
    assert result.exit_code == 1
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("✗")]
    assert "[not_retryable]" in line and "--token-param max_completion_tokens" in line
    [rec] = read(out)
    assert rec["error"]["kind"] == "not_retryable"


def test_cli_azure_from_environment_keeps_the_key_secret(server, two_reports, tmp_path):
    out = tmp_path / "out.jsonl"
    env = {
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_OPENAI_ENDPOINT": server.endpoint,
        "OPENAI_API_VERSION": API_VERSION,
    }
    result = invoke(
        "run",
        two_reports / "a.txt",
        "--model",
        "prod-reasoner",
        "--mode",
        "json_schema",
        "-o",
        out,
        "--no-progress",
        env=env,
    )
    assert result.exit_code == 0, result.output
    [payload] = server.requests
    assert payload["_path"].startswith("/openai/deployments/prod-reasoner/chat/completions")
    assert AZURE_KEY not in result.output and AZURE_KEY not in out.read_text()
    # a wrong deployment fails in one line, and the key still never shows
    result = invoke(
        "run",
        two_reports / "b.txt",
        "--model",
        "missing",
        "-o",
        out,
        "--no-progress",
        "-v",
        env=env,
    )
    assert result.exit_code == 1
    assert "no Azure deployment 'missing'" in result.output
    assert AZURE_KEY not in result.output and AZURE_KEY not in out.read_text()


def test_truncation_names_the_budget_and_the_reasoning_spent():
    from caseextract.errors import OutputTruncated
    from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

    # crafted: a reasoning model that spent most of its budget thinking, then was cut
    body = crafted_tool_completion('{"article": {', finish_reason="length")
    body["usage"]["completion_tokens_details"] = {"reasoning_tokens": 30000}
    with FakeOpenAIServer(default=Reply(body=body)) as s:
        settings = ModelSettings(model="gpt-5-mini", base_url=s.base_url, reasks=0, http_retries=0)
        task = default_task()
        with pytest.raises(OutputTruncated) as info:
            ModelClient(settings).extract([{"role": "user", "content": "x"}], task.response_model)
    message = str(info.value)
    assert "max_completion_tokens=32768" in message
    assert "30,000 of it spent on reasoning" in message and "--reasoning-effort" in message


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("mode", ["TOOLS_STRICT", "JSON_SCHEMA"])
def test_instructor_alone_sends_no_strict_schema(mode):
    """Why caseextract rewrites strict requests: instructor 1.17 on its own, captured.

    If a later instructor sends strict schemas itself, this fails and the rewrite
    in caseextract.llm.strict can be reconsidered.
    """
    import instructor
    import openai
    from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

    answer = crafted_tool_completion({"name": "a"}, tool_name="Item")
    answer["choices"][0]["message"]["content"] = json.dumps({"name": "a"})
    with FakeOpenAIServer(default=Reply(body=answer)) as s:
        raw = openai.OpenAI(api_key="no-key-needed", base_url=s.base_url, max_retries=0)
        client = instructor.from_openai(raw, mode=getattr(instructor.Mode, mode))
        client.chat.completions.create(
            model="gpt-4o-mini", response_model=Item, messages=[{"role": "user", "content": "x"}]
        )
    [payload] = s.requests
    if mode == "TOOLS_STRICT":
        fn = payload["tools"][0]["function"]
        strict, schema = fn.get("strict"), fn["parameters"]
    else:
        spec = payload["response_format"]["json_schema"]
        strict, schema = spec.get("strict"), spec["schema"]
    assert strict is not True
    assert check_strict_schema(schema) is not None


def test_azure_exchanges_record_and_replay_without_the_key(server, seed_messages, tmp_path):
    from caseextract.llm.recording import RecordingStore

    task, messages = seed_messages
    common = dict(
        model="prod-reasoner",
        azure_endpoint=server.endpoint,
        api_version=API_VERSION,
        instructor_mode="tools_strict",
    )
    settings = ModelSettings(api_key=AZURE_KEY, **common)
    ModelClient(settings, RecordingStore(tmp_path, "record")).extract(messages, task.response_model)
    [saved] = tmp_path.glob("*.json")
    assert AZURE_KEY not in saved.read_text()
    assert json.loads(saved.read_text())["request"]["path"] == (
        "/openai/deployments/prod-reasoner/chat/completions"
    )
    server.stop()  # replay needs neither the server nor the key
    replayed = ModelClient(ModelSettings(**common), RecordingStore(tmp_path, "replay"))
    ext = replayed.extract(messages, task.response_model)
    assert ext.stats.reasoning_tokens == ConformanceServer.REASONING_TOKENS
