"""The results file under stress: two writers, damaged lines on resume, full disks,
unencodable strings, modes, owners, links and device nodes (issue 16, points 1–3, 7).

Everything here runs on real files; the CLI cases run ``caseextract run`` (in
process or as a child) against the crafted loopback server.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import caseextract.testing.fault_batch as rel
import pytest
from caseextract.cli import app
from caseextract.errors import OutputBusy, OutputError
from caseextract.records import ResultRecord
from caseextract.store import ResultWriter
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion
from typer.testing import CliRunner

from helpers import records_json

GOOD = Reply(body=crafted_tool_completion(rel.CRAFTED_ANSWER))
CEILING = 90.0  # seconds: only keeps a broken run from hanging the suite


def rec(doc_id: str, status: str = "ok", **extra) -> ResultRecord:
    data = {"document": {"id": doc_id, "sha256": f"h-{doc_id}"}, "status": status, **extra}
    return ResultRecord.from_json(data)


def line(record: ResultRecord | dict) -> bytes:
    data = record.to_json() if isinstance(record, ResultRecord) else record
    return (json.dumps(data, ensure_ascii=False) + "\n").encode()


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def run_args(docs: Path, out: Path, base_url: str, *extra: object) -> list[object]:
    return ["run", docs, "-o", out, "--base-url", base_url, "--model", "crafted-model",
            "--timeout", "10", "--http-retries", "0", "--reasks", "0", "--no-progress",
            *extra]  # fmt: skip


# ---------------------------------------------------------------- 1. two writers


def test_a_second_writer_is_refused_and_the_live_run_keeps_every_record(tmp_path):
    out = tmp_path / "results.jsonl"
    first = ResultWriter(out, resume=False)
    first.write(rec("a"))
    inode = out.stat().st_ino
    with pytest.raises(OutputBusy, match=r"in use by another caseextract run \(pid \d+\)"):
        ResultWriter(out, resume=True)  # a resume would compact: it must not touch the file
    with pytest.raises(OutputBusy):
        ResultWriter(out, resume=False)
    first.write(rec("b"))  # still the file on disk, not a deleted one
    first.close()
    assert out.stat().st_ino == inode
    assert [r["document"]["id"] for r in records_json(out)] == ["a", "b"]
    with ResultWriter(out) as again:  # free once the first run has finished
        assert again.is_done("a", "h-a") and again.is_done("b", "h-b")


def test_a_second_run_on_the_same_output_exits_2_with_one_line(tmp_path):
    docs = tmp_path / "docs"
    rel.make_documents(docs, 2)
    out = tmp_path / "results.jsonl"
    holder = ResultWriter(out, resume=False)  # another run, still writing
    holder.write(rec("live"))
    try:
        with FakeOpenAIServer(default=GOOD) as server:
            result = cli(*run_args(docs, out, server.base_url))
            assert server.requests == []  # refused before anything is paid for
    finally:
        holder.close()
    assert result.exit_code == 2, result.output
    message = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(message) == 1 and "in use by another caseextract run" in message[0]
    assert [r["document"]["id"] for r in records_json(out)] == ["live"]


def test_two_concurrent_runs_lose_nothing(tmp_path):
    """Two children on one output: one runs, the other is refused; all records stay."""
    docs = tmp_path / "docs"
    rel.make_documents(docs, 30)
    out = tmp_path / "results.jsonl"

    gate = threading.Event()  # the first run's later answers wait until the second has tried

    def held(payload: dict, index: int) -> Reply:
        if index >= 2:
            gate.wait(CEILING)
        return GOOD

    with FakeOpenAIServer(held) as server:
        args = run_args(docs, out, server.base_url, "-j", "2", "--timeout", "80")
        cmd = [sys.executable, "-m", "caseextract", *map(str, args)]
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            while len(server.requests) < 3 and first.poll() is None:  # it is mid-batch
                time.sleep(0.02)
            second = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                    timeout=CEILING)  # fmt: skip
        finally:
            gate.set()
        first_out = first.communicate(timeout=CEILING)[0].decode()
    assert first.returncode == 0, first_out
    assert second.returncode == 2 and "in use by another caseextract run" in second.stderr
    ids = [r["document"]["id"] for r in records_json(out)]
    assert sorted(ids) == sorted(p.stem for p in docs.iterdir()) and len(set(ids)) == 30
    assert len(server.requests) == 30  # no document paid for twice


# ---------------------------------------------------------------- 2. resume after damage


def test_resume_drops_a_torn_multibyte_tail(tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_bytes(line(rec("a")) + line(rec("β")) + b'{"document": {"id": "caf'
                    + "é".encode()[:1])  # fmt: skip
    with ResultWriter(out) as writer:
        assert writer.is_done("a", "h-a") and writer.is_done("β", "h-β")
        writer.write(rec("c"))
    assert any("incomplete last line" in n and str(out) in n for n in writer.notes)
    assert [r["document"]["id"] for r in records_json(out)] == ["a", "β", "c"]
    assert out.read_bytes().endswith(b"\n")


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (b'{"document": {"id": "x\xff", "sha256": "h"}, "status": "ok"}\n', "not valid UTF-8"),
        (b'{"document": null, "status": "ok"}\n', "no document"),
        (b'{"document": {"id": "x", "sha256": "h"}, "status": "ok"\n', "not valid JSON"),
        (b"[1, 2]\n", "not a record"),
    ],
)
def test_resume_reports_a_damaged_line_and_keeps_it_aside(tmp_path, bad, says):
    out = tmp_path / "results.jsonl"
    out.write_bytes(line(rec("a")) + bad + line(rec("b")))
    with ResultWriter(out) as writer:
        assert writer.is_done("a", "h-a") and writer.is_done("b", "h-b")
    (note,) = writer.notes
    assert f"{out} line 2" in note and says in note
    assert [r["document"]["id"] for r in records_json(out)] == ["a", "b"]
    kept = out.with_name(out.name + ".damaged")
    assert kept.read_bytes() == bad and str(kept) in note  # nothing lost


def test_the_cli_names_the_damaged_line_and_resumes(tmp_path):
    docs = tmp_path / "docs"
    (doc,) = rel.make_documents(docs, 1)
    out = tmp_path / "results.jsonl"
    out.write_bytes(b'{"document": null}\n' + b"\xce\xb2\xff garbage\n" + b'{"docu\xce')
    with FakeOpenAIServer(default=GOOD) as server:
        result = cli(*run_args(docs, out, server.base_url))
    assert result.exit_code == 0, result.output
    assert f"{out} line 1" in result.output and f"{out} line 2" in result.output
    assert [r["document"]["id"] for r in records_json(out)] == [doc.stem]


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_full_disk_is_a_clear_error_and_leaves_only_whole_lines(tmp_path):
    """The file-size limit makes writes fail the way a full disk does (EFBIG for ENOSPC)."""
    docs = tmp_path / "docs"
    rel.make_documents(docs, 12)
    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(default=GOOD) as server:
        cmd = [sys.executable, "-m", "caseextract",
               *map(str, run_args(docs, out, server.base_url, "-j", "1"))]  # fmt: skip
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
        limited = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CEILING,
                                 preexec_fn=_limit_file_size(20_000))  # fmt: skip
        assert limited.returncode == 2, limited.stderr
        assert "Traceback" not in limited.stderr
        assert f"cannot write results to {out}" in limited.stderr
        data = out.read_bytes()
        assert data.endswith(b"\n") and 0 < data.count(b"\n") < 12  # whole lines only
        again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=CEILING)
    assert again.returncode == 0, again.stderr
    ids = [r["document"]["id"] for r in records_json(out)]
    assert sorted(ids) == sorted(p.stem for p in docs.iterdir())


def test_a_really_full_disk_on_a_tiny_tmpfs(tmp_path):
    """ENOSPC itself, on a 64 kB tmpfs in a private mount namespace (needs root)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private tmpfs")
    docs = tmp_path / "docs"
    rel.make_documents(docs, 30)
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    out = mnt / "results.jsonl"
    with FakeOpenAIServer(default=GOOD) as server:
        run = " ".join(map(str, run_args(docs, out, server.base_url, "-j", "1")))
        script = (f"mount -t tmpfs -o size=64k tmpfs {mnt} || exit 99; "
                  f"{sys.executable} -m caseextract {run}; code=$?; "
                  f"tail -c 1 {out} | od -An -c; exit $code")  # fmt: skip
        env = {**os.environ, "NO_PROXY": "127.0.0.1", "COLUMNS": "200"}
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env,
                              capture_output=True, text=True, timeout=CEILING)  # fmt: skip
    if done.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 2, done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.strip() == "\\n"  # the file ends with a whole line


# ---------------------------------------------------------------- 3. unencodable strings


def test_lone_surrogates_are_escaped_not_fatal(tmp_path):
    out = tmp_path / "results.jsonl"
    with ResultWriter(out, resume=False) as writer:
        writer.write(rec("caf\udce9", model_returned="\udc80-model"))
        writer.write(rec("next"))
    records = list(records_json(out))
    assert [r["document"]["id"] for r in records] == ["caf\\udce9", "next"]
    assert records[0]["model_returned"] == "\\udc80-model" and records[0]["status"] == "ok"
    out.read_bytes().decode("utf-8")  # strict UTF-8 throughout


def test_a_record_that_cannot_be_written_fails_that_document_only(tmp_path):
    out = tmp_path / "results.jsonl"
    with ResultWriter(out, resume=False) as writer:
        writer.write(rec("bad", extraction={"odd": object()}))  # not serialisable
        writer.write(rec("good"))
    bad, good = records_json(out)
    assert bad["status"] == "failed" and bad["error"]["kind"] == "output"
    assert "could not be written" in bad["error"]["message"]
    assert good["status"] == "ok" and not writer.is_done("bad", "h-bad")


def test_a_non_utf8_file_name_and_a_surrogate_model_name_do_not_stop_the_batch(tmp_path):
    docs = tmp_path / "docs"
    (plain,) = rel.make_documents(docs, 1)
    raw_name = os.path.join(os.fsencode(docs), b"caf\xe9-report.txt")
    with open(raw_name, "wb") as fh:
        fh.write(rel.DOC_TEMPLATE.format(doc_id="rel-0001").encode())
    body = json.dumps(crafted_tool_completion(rel.CRAFTED_ANSWER)).replace(
        '"crafted-model"', '"crafted-\\udc80"'
    )  # crafted: a server naming its model with a lone surrogate escape
    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(default=Reply(body=body.encode())) as server:
        result = cli(*run_args(docs, out, server.base_url))
    assert result.exit_code == 0, result.output
    records = {r["document"]["id"]: r for r in records_json(out)}
    assert set(records) == {plain.stem, "caf\\udce9-report"}
    assert {r["model_returned"] for r in records.values()} == {"crafted-\\udc80"}
    assert "extracted" in result.output  # the summary was printed


# ---------------------------------------------------------------- 7. the output path


def test_resume_keeps_mode_and_owner(tmp_path):
    out = tmp_path / "results.jsonl"
    out.write_bytes(line(rec("a")) + line(rec("f", status="failed")))
    os.chmod(out, 0o600)
    owner = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    os.chown(out, *owner)
    ResultWriter(out).close()
    st = out.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and (st.st_uid, st.st_gid) == owner
    assert [r["document"]["id"] for r in records_json(out)] == ["a"]  # it was compacted
    ResultWriter(out, resume=False).close()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_bytes() == b""


def test_a_symlinked_output_is_followed_and_stays_a_link(tmp_path):
    target = tmp_path / "store" / "real.jsonl"
    target.parent.mkdir()
    target.write_bytes(line(rec("a")) + line(rec("f", status="failed")))
    link = tmp_path / "results.jsonl"
    link.symlink_to(target)
    with ResultWriter(link) as writer:
        writer.write(rec("b"))
    assert link.is_symlink() and link.resolve() == target
    assert [r["document"]["id"] for r in records_json(target)] == ["a", "b"]


def test_non_regular_outputs_are_refused(tmp_path):
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    outputs = [fifo]
    if os.geteuid() == 0:  # a character device of our own (a copy of /dev/null's numbers)
        dev = tmp_path / "null.jsonl"
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        outputs.append(dev)
    for path in outputs:
        for resume in (True, False):
            kind = stat.S_IFMT(path.lstat().st_mode)
            with pytest.raises(OutputError, match="not a regular file"):
                ResultWriter(path, resume=resume)
            assert stat.S_IFMT(path.lstat().st_mode) == kind  # left as it was
    link = tmp_path / "to-fifo.jsonl"
    link.symlink_to(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        ResultWriter(link)


# ---------------------------------------------------------------- 9. memory on resume


def test_resume_streams_the_file_instead_of_holding_it(tmp_path):
    out = tmp_path / "results.jsonl"
    padding = "x" * 20_000
    with out.open("wb") as fh:
        for i in range(400):  # about 8 MB
            fh.write(line(rec(f"d{i}", extraction={"text": padding})))
    tracemalloc.start()
    try:
        with ResultWriter(out) as writer:
            assert writer.is_done("d399", "h-d399")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak  # a few lines at a time, not the 8 MB file
