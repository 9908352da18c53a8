"""What a newcomer trips on: option checks, folders, messages — all through the CLI.

Model answers come from crafted servers on 127.0.0.1 (named crafted)."""

import io
import json
import re
import zipfile

import pytest
from caseextract.cli import app
from caseextract.testing import FakeOpenAIServer, Reply, crafted_error, crafted_tool_completion
from test_cli import text_pdf
from typer.testing import CliRunner

from conftest import ROOT, SEED
from helpers import CRAFTED_SEED_ANSWER

runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture
def server():
    with FakeOpenAIServer(default=Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))) as s:
        yield s


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- 5. options are checked


@pytest.mark.parametrize(
    ("option", "text"),
    [
        (["-j", "0"], "-j/--concurrency must be more than 0"),
        (["-j", "-3"], "-j/--concurrency must be more than 0"),
        (["--max-tokens", "-5"], "--max-tokens must be 0 or more"),
        (["--timeout", "0"], "--timeout must be more than 0"),
        (["--timeout", "-1"], "--timeout must be more than 0"),
        (["--http-retries", "-1"], "--http-retries must be 0 or more"),
        (["--reasks", "-2"], "--reasks must be 0 or more"),
    ],
)
def test_bad_numbers_are_one_line_usage_errors_and_nothing_is_sent(server, tmp_path, option, text):
    result = invoke("run", SEED, "--base-url", server.base_url, "-o", tmp_path / "o.jsonl", *option)
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {text}, not {option[1]}"
    assert server.requests == [] and not (tmp_path / "o.jsonl").exists()


def test_eval_checks_its_numbers_too(tmp_path):
    result = invoke("eval", "--max-tokens", "-5", "--out", tmp_path)
    assert result.exit_code == 2 and result.output.strip().startswith("error: --max-tokens")


# ---------------------------------------------------------------- 6. folders


def docx_bytes() -> bytes:
    """A minimal real .docx (a zip holding word/document.xml)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document><w:body>An 87-year-old</w:body></w:document>")
    return buf.getvalue()


def test_unsupported_files_are_listed_and_a_word_file_says_how_to_convert(server, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a.txt").write_text(SEED.read_text())
    (folder / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    (folder / "letter.docx").write_bytes(docx_bytes())
    (folder / "table.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "o.jsonl"
    result = invoke("run", folder, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "skipped 3 file(s)" in result.output
    for name in ("scan.jpg", "letter.docx", "table.csv"):
        assert name in result.output
    assert "Word file" in result.output and "pandoc" in result.output
    # a .docx given by name is a failed document that says what it is, not "binary file"
    word = folder / "letter.docx"
    result = invoke("run", word, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 1
    failed = [r for r in records(out) if r["status"] == "failed"]
    assert len(failed) == 1 and "a Word file" in failed[0]["error"]["message"]
    assert "binary" not in failed[0]["error"]["message"]


def test_same_stem_in_two_folders_gets_two_ids_and_show_finds_each(server, tmp_path):
    folder = tmp_path / "reports"
    for sub in ("2023", "2024"):
        (folder / sub).mkdir(parents=True)
    seed = SEED.read_text()
    (folder / "2023" / "case.txt").write_text(seed)
    (folder / "2024" / "case.txt").write_text(seed + "\nAddendum: seen again in 2024.\n")
    (folder / "case.md").write_text("# Case\n\n" + seed)  # the same stem at the top
    (folder / "case.txt").write_text(seed + "\nA third version.\n")
    out = tmp_path / "o.jsonl"
    result = invoke("run", folder, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    ids = sorted(r["document"]["id"] for r in records(out))
    assert ids == sorted(
        ["2023/case", "2024/case", f"{folder.as_posix()}/case.md", f"{folder.as_posix()}/case.txt"]
    )
    # the same command again: ids are stable, nothing is extracted twice
    calls = len(server.requests)
    result = invoke("run", folder, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 0 and len(server.requests) == calls
    html = tmp_path / "e.html"
    result = invoke("show", out, "--source", folder / "2024" / "case.txt", "--html", html)
    assert result.exit_code == 0, result.output
    assert "seen again in 2024" in html.read_text()
    source = folder / "2023" / "case.txt"
    result = invoke("show", out, "--source", source, "--doc", "2023/case", "--html", html)
    assert result.exit_code == 0, result.output


def test_an_edited_document_replaces_its_stale_record(server, tmp_path):
    doc = tmp_path / "case.txt"
    doc.write_text(SEED.read_text())
    out = tmp_path / "o.jsonl"
    args = ["--base-url", server.base_url, "-o", out, "--no-progress"]
    assert invoke("run", doc, *args).exit_code == 0
    first = records(out)[0]["document"]["sha256"]
    doc.write_text(SEED.read_text() + "\nCorrected: the leak reached L2.\n")
    assert invoke("run", doc, *args).exit_code == 0
    kept = records(out)
    assert len(kept) == 1 and kept[0]["document"]["sha256"] != first
    assert len(server.requests) == 2


def test_a_stale_record_left_by_a_killed_run_goes_at_the_next_resume(server, tmp_path):
    doc = tmp_path / "case.txt"
    doc.write_text(SEED.read_text())
    out = tmp_path / "o.jsonl"
    args = ["--base-url", server.base_url, "-o", out, "--no-progress"]
    assert invoke("run", doc, *args).exit_code == 0
    stale = out.read_text()
    newer = json.loads(stale)
    newer["document"]["sha256"] = "0" * 64  # as if a killed run had appended a newer one
    out.write_text(stale + json.dumps(newer) + "\n")
    assert invoke("run", tmp_path / "nothing-*.txt", *args).exit_code == 2  # no documents
    invoke("run", doc, *args)
    shas = [r["document"]["sha256"] for r in records(out)]
    assert len(shas) == len(set(r["document"]["id"] for r in records(out))) == 1


# ---------------------------------------------------------------- 7. messages


def test_no_key_and_no_server_mentions_local(tmp_path):
    result = invoke("run", SEED, "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output and "--local" in result.output


def test_an_unknown_prompt_set_says_it_does_not_exist_and_lists_the_sets(tmp_path):
    result = invoke("run", SEED, "--prompt-set", "nope", "--base-url", "http://127.0.0.1:9/v1")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "'nope' does not exist" in line and "case_report, cement_leakage" in line
    assert "missing" not in line and "\n" not in line


def test_help_has_no_type_tags_and_says_what_j_and_v_do():
    for command in ("run", "eval", "diff", "show", "cost", "schema"):
        result = invoke(command, "--help", env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert not re.search(r"<(list\[\w+\]|str|int|float|path|bool)>", result.output), command
    text = invoke("run", "--help", env={"COLUMNS": "200"}).output
    assert "Documents extracted at a time" in text
    assert "a counter: -v info, -vv debug" in text
    assert "--case" in invoke("diff", "--help", env={"COLUMNS": "200"}).output


def test_scorecard_headers_are_whole_at_80_columns(tmp_path):
    result = invoke("eval", "--out", tmp_path, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    header = result.output.split("ALL (micro)")[0]
    assert "…" not in header
    for word in ("scope", "F1", "strict", "omit", "spur", "hall"):
        assert word in header
    assert "omission rate" in result.output  # the caption says what the short ones mean
    assert max(len(line) for line in result.output.splitlines()) <= 80


def test_cost_names_every_model_and_a_price_file_that_lacks_one(tmp_path):
    rec = ROOT / "fixtures" / "recordings" / "gemma-3-270m"
    result = invoke("cost", "--recordings", rec, env={"COLUMNS": "120"})
    assert result.exit_code == 0
    rows = [line for line in result.output.splitlines() if line.startswith("│")]
    assert rows and not any(line.split("│")[1].strip() == "?" for line in rows)
    assert "no price given" in result.output
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models."some-other-model"]\ninput_per_million = 1\noutput_per_million = 2\n'
    )
    result = invoke("cost", "--recordings", rec, "--prices", prices, env={"COLUMNS": "120"})
    assert "no price given" not in result.output and "not in prices.toml" in result.output


def test_a_pdf_repaired_by_pypdf_leaves_no_warning_line(server, tmp_path):
    """pypdf logs "WARNING pypdf._reader: incorrect startxref pointer" and reads on."""
    data = text_pdf("An 87-year-old female patient had back pain.")
    pdf = tmp_path / "h.pdf"
    pdf.write_bytes(re.sub(rb"startxref\n\d+", b"startxref\n7", data))  # a wrong pointer
    out = tmp_path / "o.jsonl"
    args = ["run", pdf, "--base-url", server.base_url, "-o", out, "--no-progress"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "pypdf" not in result.output and "WARNING" not in result.output
    assert "startxref" in invoke(*args, "--no-resume", "-vv").output  # still there when asked


def test_a_400_says_the_servers_words_without_the_raw_error_dict(tmp_path):
    reply = crafted_error(400, "Invalid value for 'tool_choice': tool 'X' not found")
    with FakeOpenAIServer(default=reply) as bad:
        out = tmp_path / "o.jsonl"
        result = invoke("run", SEED, "--base-url", bad.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 1
    message = records(out)[0]["error"]["message"]
    assert message == "HTTP 400: Invalid value for 'tool_choice': tool 'X' not found"
    assert "{'error'" not in result.output and "Error code" not in result.output
