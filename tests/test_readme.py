"""Every `caseextract` command in the README runs as written.

Commands that need a model server run against a crafted OpenAI-compatible server
on 127.0.0.1 (through OPENAI_BASE_URL, or on the port the README names); commands
for the real local model are covered by the `local` tests; install and test
commands are what CI runs.
"""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

from conftest import ROOT
from helpers import CRAFTED_SEED_ANSWER

README = (ROOT / "README.md").read_text(encoding="utf-8")
OUTPUTS = [
    "results.jsonl",
    "results.csv",
    "cement.jsonl",
    "local.jsonl",
    "eval-out",
    "cement-evidence.html",
    "cement-eval",
]
# Crafted: the cement-leakage answer a good model would give on the seed report.
CRAFTED_CEMENT_ANSWER = {
    "age": {"raw": "87-year-old", "evidence": ["An 87-year-old female patient"]},
    "procedures": [
        {
            "name": "vertebroplasty",
            "levels": ["L1"],
            "evidence": ["Vertebroplasty for L1 was performed"],
        }
    ],
    "leaks": [
        {
            "site": "epidural",
            "levels": ["T12 to L2"],
            "symptomatic": True,
            "evidence": ["cement leaked into the epidural and intrathecal spaces"],
        }
    ],
    "consequences": [],
}


def crafted_reply(payload: dict, index: int) -> Reply:
    """Crafted: the answer for whichever task the request's tool is."""
    tools = payload.get("tools") or [{}]
    name = tools[0].get("function", {}).get("name", "CaseReport")
    answer = CRAFTED_CEMENT_ANSWER if name == "CementLeakage" else CRAFTED_SEED_ANSWER
    return Reply(body=crafted_tool_completion(answer, tool_name=name))


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


# the console script lives beside the interpreter running the tests
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if "caseextract " in line and "--local" not in line]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture(scope="module")
def clean_outputs():
    yield
    import shutil

    for name in OUTPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def test_the_readme_has_commands():
    assert any(c.startswith("caseextract eval") for c in commands())
    assert any("caseextract run" in c for c in commands())


@pytest.mark.parametrize("command", commands())
def test_readme_command_runs(command, clean_outputs, tmp_path):  # noqa: C901
    assert "../shared/" not in command, "README commands must run from a fresh clone"
    if "eval-out/" in command and not (ROOT / "eval-out" / "report.json").exists():
        subprocess.run(
            ["bash", "-c", "caseextract eval"], cwd=ROOT, env=ENV, capture_output=True, check=True
        )
    if "recordings/my-model" in command or "eval --live --record" in command:
        pytest.skip("re-recording the gold set is shown, not run (it needs your server)")
    env = dict(ENV)
    port = 0
    m = re.search(r"--base-url http://127\.0\.0\.1:(\d+)/v1", command)
    if m:
        port = int(m.group(1))
        if not port_free(port):
            pytest.skip(f"port {port} is busy here")
        (tmp_path / "reports").mkdir()
    server = FakeOpenAIServer(crafted_reply)
    server.start() if not port else server.start_on(port)
    try:
        env["OPENAI_BASE_URL"] = server.base_url
        cwd = tmp_path if m else ROOT
        if m:
            (tmp_path / "reports" / "a.txt").write_text("An 87-year-old female patient.")
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        server.stop()
    ok = done.returncode == 0
    if "--min-f1" in command:  # a bar the bundled 270M model may not clear: exit 1 by design
        ok = ok or (done.returncode == 1 and "below threshold" in done.stderr)
    assert ok, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_bring_your_own_task_walkthrough_runs_as_written(clean_outputs):
    """Every line of the section, in order (python lines included), from the checkout."""
    blocks = re.findall(r"```bash\n(.*?)```", section("Bring your own task"), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines() if line.strip()]
    assert any(line.startswith("caseextract diff") for line in lines)
    assert any(line.startswith("caseextract eval --gold") for line in lines)
    with FakeOpenAIServer(crafted_reply) as server:
        env = {**ENV, "OPENAI_BASE_URL": server.base_url}
        for line in lines:
            done = subprocess.run(
                ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{line}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            if line.startswith("caseextract diff"):
                # the crafted answer has 3 of the 6 gold items: F1 = 2·3 / (6 + 3)
                assert "F1 0.667" in done.stdout and "missed leaks" in done.stdout
            if "agreement" in line:
                assert "| **all** | 7 | 7 | 1.00 | 1.00 |" in done.stdout
    assert (ROOT / "cement-evidence.html").exists()
