"""Inputs that are not ordinary text files (issue 16, points 5 and 9): devices, links
to devices, FIFOs, unbounded streams, UTF-8 with one bad byte, hostile file names."""

from __future__ import annotations

import os
import subprocess
import sys

import caseextract.testing.fault_batch as rel
import pytest
from caseextract.documents import load_document
from caseextract.errors import InputError
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

from helpers import records_json

GOOD = Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER))
CEILING = 90.0


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file (character device)"),
        (lambda p: p.symlink_to("/dev/urandom"), "not a regular file (character device)"),
        (lambda p: os.mkfifo(p), "not a regular file (FIFO)"),
    ],
)
def test_special_files_are_refused_at_once(tmp_path, make, says):
    path = tmp_path / "x.txt"
    make(path)
    with pytest.raises(
        InputError, match=r"x\.txt: " + says.replace("(", r"\(").replace(")", r"\)")
    ):
        load_document(path)


def test_a_batch_with_a_fifo_and_device_links_finishes(tmp_path):
    docs = tmp_path / "docs"
    (good,) = rel.make_documents(docs, 1)
    os.mkfifo(docs / "fifo.txt")
    (docs / "zero.txt").symlink_to("/dev/zero")
    out = tmp_path / "results.jsonl"
    inputs = [str(docs / "fifo.txt"), str(docs / "zero.txt"), "/dev/urandom", str(good)]
    with FakeOpenAIServer(default=GOOD) as server:
        cmd = [sys.executable, "-m", "caseextract", "run", *inputs, "-o", str(out),
               "--base-url", server.base_url, "--model", "crafted-model",
               "--no-progress"]  # fmt: skip
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CEILING)
    assert done.returncode == 1, done.stderr
    records = {r["document"]["path"]: r for r in records_json(out)}
    assert records[str(good)]["status"] == "ok"
    for name in (str(docs / "fifo.txt"), str(docs / "zero.txt"), "/dev/urandom"):
        assert records[name]["error"]["kind"] == "input"
        assert "not a regular file" in records[name]["error"]["message"]


def test_utf8_with_one_bad_byte_is_read_as_utf8_and_says_so(tmp_path):
    path = tmp_path / "one-bad-byte.txt"
    text = "Café patient, 87 years old; β-blocker given; temperature 38 °C.\n" * 20
    data = text.encode("utf-8")
    path.write_bytes(data[:100] + b"\xff" + data[100:])
    doc = load_document(path)
    assert doc.encoding == "utf-8" and doc.decode_errors == 1
    assert "β-blocker" in doc.text and "\ufffd" in doc.text and "Ã" not in doc.text
    # a real Windows-1252 file stays Windows-1252
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("Patient aged 63, café €, 38 °C".encode("cp1252"))
    doc = load_document(legacy)
    assert (doc.encoding, doc.decode_errors, doc.text) == (
        "cp1252",
        0,
        "Patient aged 63, café €, 38 °C",
    )


def test_the_record_says_how_the_document_was_decoded(tmp_path):
    from caseextract.cli import app
    from typer.testing import CliRunner

    docs = tmp_path / "docs"
    docs.mkdir()
    body = rel.DOC_TEMPLATE.format(doc_id="rel-0000").encode() + "β café\n".encode()
    (docs / "bad.txt").write_bytes(body[:30] + b"\xfe" + body[30:])
    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(default=GOOD) as server:
        result = CliRunner().invoke(app, ["run", str(docs), "-o", str(out), "--base-url",
                                          server.base_url, "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = records_json(out)
    assert record["document"]["encoding"] == "utf-8"
    assert record["document"]["decode_errors"] == 1


def test_terminal_escapes_in_file_names_are_printed_escaped(tmp_path):
    from caseextract.cli import app
    from typer.testing import CliRunner

    docs = tmp_path / "docs"
    docs.mkdir()
    name = "evil\x1b]0;pwned\x07\x1b[2J"
    (docs / f"{name}.txt").write_text("")  # empty: a failed document, named in the summary
    with FakeOpenAIServer(default=GOOD) as server:
        result = CliRunner().invoke(app, ["run", str(docs), "-o", str(tmp_path / "r.jsonl"),
                                          "--base-url", server.base_url])  # fmt: skip
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J" in result.output
