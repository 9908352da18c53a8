"""Token ledger and cost: tokens from results and recordings; prices only from the user."""

import json

import pytest
from caseextract.cli import app
from caseextract.evals.gold import FIXTURES
from caseextract.review.ledger import (
    Price,
    ledger_from_recordings,
    ledger_from_results,
    load_prices,
)
from typer.testing import CliRunner

runner = CliRunner()
RECORDED = FIXTURES / "recordings" / "gemma-3-270m"


def test_recordings_ledger_counts_every_exchange():
    rows = ledger_from_recordings(RECORDED)
    files = [p for p in RECORDED.glob("*.json") if p.name != "manifest.json"]
    assert sum(r.calls for r in rows.values()) == len(files)
    spent = 0
    for p in files:
        usage = (json.loads(p.read_text())["response"]["body"] or {}).get("usage") or {}
        spent += usage.get("completion_tokens") or 0
    assert sum(r.completion_tokens for r in rows.values()) == spent


def test_results_ledger_includes_reasks(tmp_path):
    path = tmp_path / "r.jsonl"
    records = [
        {
            "model_returned": "m",
            "attempts": 3,
            "usage": {"prompt_tokens": 30, "completion_tokens": 9},
        },
        {"model": "m", "attempts": 1, "usage": {"prompt_tokens": 10, "completion_tokens": 2}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    row = ledger_from_results([path])["m"]
    assert (row.documents, row.calls, row.prompt_tokens, row.completion_tokens) == (2, 4, 40, 11)


def test_prices_come_only_from_the_users_table(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."m"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n')
    assert load_prices(prices)["m"] == Price(2.0, 8.0, "USD")
    assert Price(2.0, 8.0).cost(1_000_000, 500_000) == 6.0
    path = tmp_path / "r.jsonl"
    path.write_text(
        json.dumps(
            {
                "model": "m",
                "attempts": 1,
                "usage": {"prompt_tokens": 500000, "completion_tokens": 0},
            }
        )
        + "\n"
    )
    result = runner.invoke(app, ["cost", str(path), "--prices", str(prices)])
    assert result.exit_code == 0 and "1.0000 USD" in result.output
    result = runner.invoke(app, ["cost", str(path)])
    assert "no price given" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.m]\ninput_per_million = 'x'\n")
    result = runner.invoke(app, ["cost", str(path), "--prices", str(bad)])
    assert result.exit_code == 2 and "prices" in result.output


def test_cached_input_is_priced_separately_when_the_table_says_so(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."m"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n'
        "cached_input_per_million = 0.5\n"
        '[models."n"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n'
    )
    table = load_prices(prices)
    assert table["m"].cached_input_per_million == 0.5
    # 1M prompt tokens of which 600k cached: 400k × 2.0 + 600k × 0.5 = 1.1; no cached price: 2.0
    assert table["m"].cost(1_000_000, 0, 600_000) == pytest.approx(1.1)
    assert table["n"].cost(1_000_000, 0, 600_000) == pytest.approx(2.0)
    path = tmp_path / "r.jsonl"
    usage = {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 100_000,
        "cached_tokens": 600_000,
        "reasoning_tokens": 40_000,
    }
    lines = [
        {"model": "m", "attempts": 1, "usage": usage},
        {"model": "n", "attempts": 1, "usage": usage},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    row = ledger_from_results([path])["m"]
    assert (row.cached_tokens, row.reasoning_tokens) == (600_000, 40_000)
    result = runner.invoke(app, ["cost", str(path), "--prices", str(prices)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "1.9000 USD" in result.output  # m: 1.1 + 100k × 8.0 / 1M
    assert "2.8000 USD" in result.output  # n: cached tokens at the input rate
    assert "m: 600,000 of the prompt tokens read from the cache (priced as cached input)" in (
        result.output
    )
    assert "n: 600,000 of the prompt tokens read from the cache (priced as input)" in result.output
    assert "40,000 of the completion tokens spent on reasoning" in result.output


def test_recordings_ledger_reads_cached_and_reasoning_tokens(tmp_path):
    usage = {
        "prompt_tokens": 5000,
        "completion_tokens": 900,
        "prompt_tokens_details": {"cached_tokens": 3968},
        "completion_tokens_details": {"reasoning_tokens": 512},
    }
    exchange = {"provenance": {"model": "gpt-5-mini"}, "response": {"body": {"usage": usage}}}
    (tmp_path / "a.json").write_text(json.dumps(exchange))
    row = ledger_from_recordings(tmp_path)["gpt-5-mini"]
    assert (row.cached_tokens, row.reasoning_tokens) == (3968, 512)


def test_batch_tokens_use_the_tables_batch_prices(tmp_path, monkeypatch):
    from caseextract.cli.app import out

    monkeypatch.setattr(out, "_width", 200)  # the table in full
    path = tmp_path / "r.jsonl"
    record = {
        "model": "m",
        "attempts": 2,
        "usage": {"prompt_tokens": 2_000, "completion_tokens": 1_000},
        "batch": {"usage": {"prompt_tokens": 1_000, "completion_tokens": 1_000}},
    }
    path.write_text(json.dumps(record) + "\n")
    row = ledger_from_results([path])["m"]
    assert (row.batch_prompt_tokens, row.batch_completion_tokens) == (1_000, 1_000)
    prices = tmp_path / "prices.toml"
    base = '[models."m"]\ninput_per_million = 2.0\noutput_per_million = 8.0\n'
    prices.write_text(base)
    result = runner.invoke(app, ["cost", str(path), "--prices", str(prices)])
    assert "no batch price" in result.output  # never a guessed discount
    prices.write_text(base + "batch_input_per_million = 1.0\nbatch_output_per_million = 4.0\n")
    result = runner.invoke(app, ["cost", str(path), "--prices", str(prices)])
    assert "0.0070 USD" in result.output  # 2 direct + 1 + 4 batch
    prices.write_text(base + "batch_factor = 0.5\n")
    assert load_prices(prices)["m"].batch_input_per_million == 1.0
    result = runner.invoke(app, ["cost", str(path), "--prices", str(prices)])
    assert "0.0070 USD" in result.output


def test_recordings_are_read_as_typed_exchanges_by_the_one_reader(tmp_path):
    """The ledger reads recording files through ``recording.read_exchanges`` only: a file
    without the store's diagnostic ``parts`` counts its document all the same."""
    import shutil

    from caseextract.llm.recording import read_exchanges

    folder = tmp_path / "rec"
    shutil.copytree(RECORDED, folder)
    exchanges = list(read_exchanges(folder))
    assert len(exchanges) == len([p for p in folder.glob("*.json") if p.name != "manifest.json"])
    first = exchanges[0]
    raw = json.loads(first.path.read_text())
    assert first.request_body == raw["request"]["body"]
    assert first.response_body == raw["response"]["body"]
    assert first.usage.completion_tokens == raw["response"]["body"]["usage"]["completion_tokens"]
    assert first.model == raw["provenance"]["model"] and not first.batch
    before = ledger_from_recordings(folder)
    for path in folder.glob("*.json"):
        data = json.loads(path.read_text())
        data.pop("parts", None)
        path.write_text(json.dumps(data))
    assert ledger_from_recordings(folder) == before
    assert sum(r.documents for r in before.values()) == len(exchanges)  # one report each


def test_a_corrupt_recording_is_named_by_the_cost_command(tmp_path):
    import shutil

    folder = tmp_path / "rec"
    shutil.copytree(RECORDED, folder)
    victim = sorted(p for p in folder.glob("*.json") if p.name != "manifest.json")[0]
    victim.write_text("{cut off")
    result = runner.invoke(app, ["cost", "--recordings", str(folder)])
    assert result.exit_code == 2
    assert victim.name in result.output and "corrupt" in result.output
