"""`caseextract check` against the conformance server (the API's rules, cited there):
one small request with the user's settings; answers are crafted."""

import datetime as dt
import json

import pytest
from caseextract.cli import app
from caseextract.llm.preflight import CHECK_BUDGET
from caseextract.testing import ConformanceServer
from typer.testing import CliRunner

runner = CliRunner()
KEY = "sk-check-test-key-2222"


def crafted(_payload):
    return {"age_years": 72, "finding": "fever", "evidence": ["developed fever"]}


@pytest.fixture
def server():
    deployments = {"prod-terra": "gpt-5.6-terra"}
    with ConformanceServer(crafted, today=dt.date(2026, 12, 7), deployments=deployments) as s:
        yield s


def invoke(*args):
    env = {"OPENAI_API_KEY": KEY}
    return runner.invoke(app, ["check", *map(str, args)], env=env, catch_exceptions=False)


def test_check_reports_api_parameters_model_schema_and_cache(server):
    args = ("--base-url", server.base_url, "--api", "responses", "--model", "gpt-5.6-terra")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    [payload] = server.requests
    assert payload["_path"] == "/v1/responses" and payload["max_output_tokens"] == CHECK_BUDGET
    out = first.output
    assert "API: /v1/responses" in out and "mode: tools" in out
    assert '"max_output_tokens": 640' in out and "prompt_cache_key" in out
    assert "model named by the server: gpt-5.6-terra" in out
    assert "schema: enforced by the server (strict)" in out
    assert "ok: the server accepts these settings" in out
    tokens = [ln for ln in out.splitlines() if ln.startswith("tokens:")][0]
    spent = sum(int(x.replace(",", "")) for x in tokens.split(";")[0].split() if x[0].isdigit())
    assert spent < 1000
    assert KEY not in out


def test_a_json_mode_on_chat_completions_says_the_schema_is_not_enforced(server):
    args = ("--base-url", server.base_url, "--model", "gpt-5.4-mini", "--mode", "json")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "API: /v1/chat/completions" in result.output
    assert "not enforced by the server" in result.output


def test_a_refused_request_exits_1_with_one_line_of_advice(server):
    # a deployment name says nothing of its model: sent, and refused as the API refuses
    args = ("--base-url", server.azure_v1, "--model", "prod-terra", "--api", "chat")
    result = invoke(*args)
    assert result.exit_code == 1
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("refused")]
    assert "[not_retryable]" in line and "use --api responses, or --reasoning-effort none" in line
    assert len(server.requests) == 1  # one request, never retried
    assert server.refused[-1]["error"]["param"] == "reasoning_effort"


def test_settings_refused_up_front_send_nothing(server):
    args = ("--base-url", server.base_url, "--model", "gpt-6-astra", "--reasoning-effort", "none")
    result = invoke(*args)
    assert result.exit_code == 2
    assert "takes low, medium, high, xhigh, max" in result.output
    assert server.requests == []


def test_a_retired_model_is_named_with_its_date(server):
    result = invoke("--base-url", server.base_url, "--model", "o4-mini", "--api", "chat")
    assert result.exit_code == 1
    assert "was shut down on 2026-10-23" in result.output  # the warning, before sending
    assert "the server has no model 'o4-mini'" in result.output


@pytest.mark.local
def test_check_against_the_local_llama_cpp_server():
    """The bundled model behind llama.cpp's server (the `local` extra)."""
    from caseextract.llm.local import LocalServer

    server = LocalServer(None, 4096)
    server.start()
    try:
        result = runner.invoke(
            app,
            ["check", "--base-url", server.base_url, "--model", server.alias],
            catch_exceptions=False,
        )
    finally:
        server.stop()
    assert result.exit_code == 0, result.output
    assert "API: /v1/chat/completions" in result.output
    print(json.dumps(result.output))
