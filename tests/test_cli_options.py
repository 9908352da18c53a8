"""The model options are declared once and mean the same in run, eval and export."""

from dataclasses import fields

import pytest
import typer
from caseextract.cli import app
from caseextract.cli.options import ModelOptions, local_model, local_preflight, model_options

SHARED = [f.name for f in fields(ModelOptions)]


def _params(command: str) -> dict:
    group = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.name}


@pytest.mark.parametrize("command", ["run", "eval", "export"])
def test_each_command_takes_every_shared_option_as_declared_once(command):
    params = _params(command)
    reference = _params("run")
    for name in SHARED:
        assert name in params, f"{command} lacks --{name.replace('_', '-')}"
        ours, theirs = params[name], reference[name]
        assert (ours.opts, ours.help, ours.default, ours.envvar) == (  # type: ignore[attr-defined]
            theirs.opts,
            theirs.help,  # type: ignore[attr-defined]
            theirs.default,
            theirs.envvar,
        )
    assert "options" not in params


def test_the_options_become_settings_by_keyword():
    options = ModelOptions(
        model="gpt-5-mini", base_url="http://127.0.0.1:9/v1", instructor_mode="json", max_tokens=0
    )
    settings = options.settings(timeout=7.0, http_retries=1, reasks=4, rpm=30.0)
    assert (settings.model, settings.base_url, settings.instructor_mode) == (
        "gpt-5-mini",
        "http://127.0.0.1:9/v1",
        "json",
    )
    assert (settings.timeout, settings.http_retries, settings.reasks, settings.rpm) == (
        7.0,
        1,
        4,
        30.0,
    )
    assert settings.max_tokens is None  # 0 = the server's default


def test_a_command_without_the_options_parameter_is_refused():
    def command(model: str = "x") -> None: ...

    with pytest.raises(TypeError, match="options"):
        model_options(command)


def test_without_local_there_is_no_server_and_no_preflight():
    with local_model(False, None, 2048) as server:
        assert server is None
        assert local_preflight(server, ModelOptions().settings(
            timeout=1.0, http_retries=0, reasks=0)) is None  # fmt: skip


def test_the_three_modes_have_their_own_names_and_files_keep_theirs(tmp_path):
    import inspect

    from caseextract.evals.runner import evaluate
    from caseextract.llm import ModelSettings
    from caseextract.llm.recording import RecordingStore

    settings = ModelSettings(instructor_mode="json_schema", base_url="http://127.0.0.1:9/v1")
    public = settings.public()
    assert public["mode"] == "json_schema" and "instructor_mode" not in public  # as written
    assert ModelSettings.from_public(public) == settings
    assert RecordingStore(tmp_path, "cache").record_mode == "cache"
    assert "record_mode" in inspect.signature(evaluate).parameters
    assert "mode" not in {f.name for f in fields(ModelSettings)}
