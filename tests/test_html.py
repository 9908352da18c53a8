"""Review pages: evidence highlighted in the source; diff against gold; rendered in Chromium."""

import json
import shutil
import subprocess

import pytest
from caseextract.cli import app
from caseextract.review.html import Highlight, highlighted_source
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion
from typer.testing import CliRunner

from conftest import SEED
from helpers import crafted_answer

runner = CliRunner()


def test_overlapping_spans_and_escaping():
    text = "<b>pain</b> & fever"
    html = highlighted_source(
        text, [Highlight(0, 11, "f0", "a", "x"), Highlight(3, 19, "f1", "b", "y")]
    )
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert 'class="a b"' in html  # the overlap carries both layers
    assert html.count('href="#f0"') == 2


@pytest.fixture
def result_file(tmp_path):
    answer = crafted_answer(
        findings=[
            {
                "name": "neurologic deficit",
                "assertion": "absent",
                "evidence": ["The patient could walk with no neurologic deficit."],
            },
            {"name": "fever", "evidence": ["She had a fever of 39 C on arrival."]},
        ]
    )
    with FakeOpenAIServer(default=Reply(body=crafted_tool_completion(answer))) as server:
        out = tmp_path / "r.jsonl"
        result = runner.invoke(
            app,
            [
                "run",
                str(SEED),
                "--base-url",
                server.base_url,
                "-o",
                str(out),
                "--reasks",
                "0",
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
    return out


def test_show_writes_a_page_with_spans_and_ungrounded_facts(result_file, tmp_path):
    page = tmp_path / "evidence.html"
    result = runner.invoke(
        app, ["show", str(result_file), "--source", str(SEED), "--html", str(page)]
    )
    assert result.exit_code == 0, result.output
    html = page.read_text()
    assert "<mark" in html and 'href="#f' in html
    ungrounded = html.split("Flagged facts (1)")[1].split("Grounded facts")[0]
    assert "She had a fever of 39 C on arrival." in ungrounded
    assert "<b>ungrounded</b>" in ungrounded  # the fact's status, beside its reason


def test_diff_against_gold(result_file, tmp_path):
    # the record's document id must be the gold case id
    rec = json.loads(result_file.read_text())
    assert rec["document"]["id"] == "seed-vertebroplasty-cement-leakage"
    page = tmp_path / "diff.html"
    result = runner.invoke(app, ["diff", str(result_file), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "missed" in result.output and "spurious" in result.output
    assert "(ungrounded)" in result.output
    html = page.read_text()
    assert "gold quote" in html and "st-missed" in html


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian package chromium not installed")
def test_pages_render_in_headless_chromium(result_file, tmp_path):
    page = tmp_path / "evidence.html"
    runner.invoke(app, ["show", str(result_file), "--source", str(SEED), "--html", str(page)])
    png = tmp_path / "shot.png"
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,900",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), done.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # a rendered page, not a blank one
