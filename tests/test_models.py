"""Model knowledge as data (caseextract.llm.models) and the rules params reads from it."""

import datetime as dt

import pytest
from caseextract.cli import app
from caseextract.errors import ConfigError
from caseextract.llm import ModelSettings
from caseextract.llm.models import (
    DEFAULT_MODEL,
    FAMILIES,
    SHUTDOWNS,
    family_of,
    shutdown_notice,
)
from caseextract.llm.params import resolve
from typer.testing import CliRunner


def test_every_family_row_cites_its_source_and_takes_only_known_efforts():
    from caseextract.llm.models import ALL_EFFORTS

    for row in FAMILIES:
        assert row.source.strip(), row.name
        assert set(row.efforts) <= set(ALL_EFFORTS), row.name
        assert row.chat_tools in ("always", "without_effort", "effort_none", "never")
        assert row.budget < row.max_output or row.kind == "chat"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-6-sol", "gpt-6"),
        ("gpt-6.1-terra", "gpt-6"),
        ("gpt-6-astra", "gpt-6-astra"),
        ("gpt-6.2-astra", "gpt-6-astra"),
        ("gpt-5.6-terra", "gpt-5.6"),
        ("openai/gpt-5.6-luna", "gpt-5.6"),
        ("gpt-5.4-mini", "gpt-5.2-5.5"),
        ("gpt-5.5-2026-04-23", "gpt-5.2-5.5"),
        ("gpt-5.1", "gpt-5.1"),
        ("gpt-5-mini", "gpt-5"),
        ("o4-mini", "o-series"),
        ("gpt-4.1-mini", "gpt-4.1"),
        ("gpt-4o-mini", "gpt-4o"),
    ],
)
def test_family_rows_by_name(name, family):
    assert family_of(name).name == family


def test_gpt6_is_a_reasoning_family_with_its_budget():
    p = resolve("gpt-6-sol", None, api="auto")
    assert (p.family, p.budget, p.temperature, p.api) == ("reasoning", 32768, None, "responses")


def test_announced_shutdowns_come_from_the_sdk_and_the_default_has_none():
    assert SHUTDOWNS["gpt-5-mini"] == SHUTDOWNS["o3"] == "2026-12-11"
    assert SHUTDOWNS["gpt-4o-mini"] == SHUTDOWNS["gpt-4.1"] == "2027-01-14"
    assert SHUTDOWNS["o4-mini"] == "2026-10-23"
    assert DEFAULT_MODEL not in SHUTDOWNS
    assert ModelSettings().model == DEFAULT_MODEL
    assert shutdown_notice(DEFAULT_MODEL) is None


def test_shutdown_notice_is_one_line_naming_the_date():
    before = shutdown_notice("gpt-5-mini", dt.date(2026, 12, 7))
    assert "gpt-5-mini shuts down on 2026-12-11" in before and "\n" not in before
    after = shutdown_notice("o4-mini", dt.date(2026, 12, 7))
    assert "was shut down on 2026-10-23" in after


@pytest.mark.parametrize(
    ("model", "effort", "allowed"),
    [
        ("gpt-5.4-mini", "minimal", "none, low, medium, high, xhigh"),
        ("gpt-5.4-mini", "max", "none, low, medium, high, xhigh"),
        ("gpt-6-astra", "none", "low, medium, high, xhigh, max"),
        ("o4-mini", "xhigh", "low, medium, high"),
        ("gpt-5-mini", "none", "minimal, low, medium, high"),
    ],
)
def test_an_effort_outside_the_family_set_is_refused_naming_the_set(model, effort, allowed):
    with pytest.raises(ConfigError, match=f"takes {allowed}$"):
        ModelSettings(model=model, reasoning_effort=effort)


def test_efforts_in_the_set_pass():
    assert ModelSettings(model="gpt-5.6-terra", reasoning_effort="max").reasoning_effort == "max"
    assert ModelSettings(model="gpt-6-sol", reasoning_effort="none").reasoning_effort == "none"


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gpt-5.6-terra", None),  # its default effort applies: refused
        ("gpt-5.6-terra", "low"),
        ("gpt-6-sol", None),
        ("gpt-6-astra", "low"),  # takes no 'none': never on Chat Completions
        ("gpt-5.4-mini", "high"),
    ],
)
def test_function_tools_never_reach_chat_completions_for_a_model_that_refuses_them(model, effort):
    with pytest.raises(ConfigError, match="--api responses"):
        ModelSettings(model=model, api="chat", instructor_mode="tools", reasoning_effort=effort)
    # the JSON modes carry no function tools: accepted there
    ModelSettings(model=model, api="chat", instructor_mode="json_schema", reasoning_effort=effort)


@pytest.mark.parametrize(
    ("model", "effort"),
    [("gpt-5.6-terra", "none"), ("gpt-6-sol", "none"), ("gpt-5.4-mini", None), ("o3", "low")],
)
def test_function_tools_on_chat_completions_where_the_family_takes_them(model, effort):
    s = ModelSettings(model=model, api="chat", reasoning_effort=effort)
    assert s.api == "chat"


def test_api_auto_per_endpoint_and_mode():
    assert ModelSettings(model="gpt-5.6-terra").api == "responses"
    azure_v1 = "https://res.openai.azure.com/openai/v1/"
    assert ModelSettings(model="dep", base_url=azure_v1, api_key="k").api == "responses"
    local = ModelSettings(model="gemma", base_url="http://127.0.0.1:8080/v1")
    assert local.api == "chat"
    assert ModelSettings(model="gpt-5.6-terra", instructor_mode="json_schema").api == "chat"
    dated = ModelSettings(model="dep", azure_endpoint="https://r.openai.azure.com", api_version="v")
    assert dated.api == "chat"
    with pytest.raises(ConfigError, match="openai/v1/"):
        ModelSettings(
            model="dep",
            azure_endpoint="https://r.openai.azure.com",
            api_version="v",
            api="responses",
        )
    with pytest.raises(ConfigError, match="--mode tools"):
        ModelSettings(model="gpt-5.6-terra", instructor_mode="json", api="responses")


def test_settings_written_before_the_responses_path_replay_on_chat_completions():
    old = {"model": "gpt-5.4-mini", "mode": "tools", "max_tokens": 100}
    assert ModelSettings.from_public(old).api == "chat"


def test_cli_warns_once_for_a_leaving_model_and_refuses_a_bad_effort(tmp_path, seed_text):
    runner = CliRunner()
    doc = tmp_path / "a.txt"
    doc.write_text(seed_text)
    out = tmp_path / "x"
    result = runner.invoke(app, ["export", str(doc), "--model", "gpt-5-mini", "--out", str(out)])
    assert result.exit_code == 0, result.output
    [line] = [ln for ln in result.output.splitlines() if "shuts down" in ln]
    assert "2026-12-11" in line
    result = runner.invoke(
        app,
        [
            "export",
            str(doc),
            "--model",
            "gpt-5.4-mini",
            "--reasoning-effort",
            "max",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code != 0
    assert "takes none, low, medium, high, xhigh" in result.output


def test_the_family_budget_takes_at_most_half_a_declared_context_window():
    from caseextract.cli.options import ModelOptions

    common = dict(timeout=1.0, http_retries=0, reasks=0)
    auto = ModelOptions(model="gpt-5.4-mini").settings(**common, context_window=16384)
    assert auto.max_tokens == 8192  # 32,768 by family would leave no room for the report
    assert ModelOptions(model="gpt-5.4-mini").settings(**common).max_tokens == 32768
    given = ModelOptions(model="gpt-5.4-mini", max_tokens=12000)
    assert given.settings(**common, context_window=16384).max_tokens == 12000
