"""The CLI end to end, through typer's runner, against a crafted loopback server."""

import json
import subprocess
import sys

import pytest
from caseextract.cli import app
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion
from pypdf import PdfWriter
from typer.testing import CliRunner

from helpers import CRAFTED_SEED_ANSWER

runner = CliRunner()


def text_pdf(text: str) -> bytes:
    """A minimal one-page PDF whose text layer holds ``text`` (built by hand)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


@pytest.fixture
def server():
    with FakeOpenAIServer(default=Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))) as s:
        yield s


@pytest.fixture
def batch(tmp_path, seed_text):
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a-seed.txt").write_text(seed_text, encoding="utf-8")
    (folder / "b-notes.md").write_text("# Case\n\n" + seed_text, encoding="utf-8")
    (folder / "c-empty.txt").write_text("   \n\t\n")
    (folder / "d-binary.txt").write_bytes(bytes(range(256)) * 20)
    (folder / "e-latin1.txt").write_bytes("Patient aged 63, café \u20ac".encode("cp1252"))
    (folder / "f-bad-utf8.txt").write_bytes(b"caf\x81\x8d\x8f\x90\x9d broken")
    (folder / "g-scan.pdf").write_bytes(blank_pdf(tmp_path))
    (folder / "h-text.pdf").write_bytes(text_pdf("An 87-year-old female patient had back pain."))
    return folder


def blank_pdf(tmp_path):
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "blank.pdf"
    writer.write(str(path))
    return path.read_bytes()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_schema_prints_json_schema():
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "CaseReport"
    assert "patients" in schema["properties"]


def test_run_one_report_writes_a_validated_record(server, tmp_path):
    from conftest import SEED

    out = tmp_path / "out.jsonl"
    result = invoke("run", SEED, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert result.exit_code == 0, result.output
    [rec] = records(out)
    assert rec["status"] == "ok"
    assert rec["extraction"]["patients"][0]["age"]["years"] == 87
    for key in ("model", "prompt_version", "schema_version", "attempts", "usage", "latency_s"):
        assert rec[key] is not None, key
    assert rec["grounding"]["stats"]["not_found"] == 0


def test_batch_with_bad_inputs_reports_each_and_keeps_the_rest(server, batch, tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke(
        "run", batch, "--base-url", server.base_url, "-o", out, "--no-progress", "-j", "3"
    )
    assert result.exit_code == 1  # some documents failed
    by_id = {r["document"]["id"]: r for r in records(out)}
    assert set(by_id) == {
        "a-seed",
        "b-notes",
        "c-empty",
        "d-binary",
        "e-latin1",
        "f-bad-utf8",
        "g-scan",
        "h-text",
    }
    ok = {k for k, r in by_id.items() if r["status"] == "ok"}
    assert ok == {"a-seed", "b-notes", "e-latin1", "h-text"}
    reasons = {k: r["error"]["message"] for k, r in by_id.items() if r["status"] != "ok"}
    assert "empty" in reasons["c-empty"]
    assert "binary" in reasons["d-binary"]
    assert "UTF-8" in reasons["f-bad-utf8"]
    assert "no text layer" in reasons["g-scan"]
    assert all(by_id[k]["error"]["kind"] == "input" for k in reasons)
    assert "failed: input" in result.output


def test_unreadable_path_is_a_failed_document(server, tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke(
        "run", tmp_path / "missing.txt", "--base-url", server.base_url, "-o", out, "--no-progress"
    )
    assert result.exit_code == 1
    [rec] = records(out)
    assert rec["error"]["kind"] == "input" and "cannot read" in rec["error"]["message"]


def test_rerun_resumes_and_retries_only_failures(server, batch, tmp_path):
    out = tmp_path / "out.jsonl"
    invoke("run", batch, "--base-url", server.base_url, "-o", out, "--no-progress")
    calls = len(server.requests)
    result = invoke("run", batch, "--base-url", server.base_url, "-o", out, "--no-progress")
    assert len(server.requests) == calls  # nothing extracted twice
    assert "already done (skipped)" in result.output
    ids = [r["document"]["id"] for r in records(out)]
    assert len(ids) == len(set(ids)) == 8  # failures replaced, not duplicated


def test_csv_has_one_row_per_patient(server, tmp_path, seed_text):
    two = json.loads(json.dumps(CRAFTED_SEED_ANSWER))
    two["patients"].append({**two["patients"][0], "label": "Case 2"})
    doc = tmp_path / "two.txt"
    doc.write_text(seed_text)
    with FakeOpenAIServer(default=Reply(body=crafted_tool_completion(two))) as s:
        result = invoke(
            "run",
            doc,
            "--base-url",
            s.base_url,
            "-o",
            tmp_path / "r.jsonl",
            "--format",
            "csv",
            "--no-progress",
        )
    assert result.exit_code == 0, result.output
    import csv

    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [r["patient.label"] for r in rows] == ["Patient", "Case 2"]
    assert rows[0]["patient.age.years"] == "87.0"
    assert rows[0]["patient.interventions"].startswith("vertebroplasty; laminectomy")
    assert rows[0]["patient.findings"] == "no neurologic deficit"


def test_no_key_and_no_server_is_a_clear_error(tmp_path, seed_text):
    (tmp_path / "r.txt").write_text(seed_text)
    result = invoke("run", tmp_path, "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output


def test_python_dash_m_works():
    done = subprocess.run(
        [sys.executable, "-m", "caseextract", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "run" in done.stdout


def test_no_documents_is_a_clear_error(tmp_path):
    result = invoke("run", tmp_path / "empty-folder-*.txt", "-o", tmp_path / "o.jsonl")
    assert result.exit_code == 2 and "no input documents" in result.output
