"""Batch API: submit, status, collect, cancel against a crafted Batch API on 127.0.0.1.

Every answer is crafted (``CRAFTED_SEED_ANSWER`` and variants), never a model's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from caseextract.batch.collect import collect
from caseextract.batch.submit import BatchJob, Limits, custom_id, state_path, submit, work_dir
from caseextract.batch.submit import cancel as cancel_batches
from caseextract.batch.submit import status as batch_status
from caseextract.documents import load_document
from caseextract.errors import BatchError
from caseextract.exchange.export import capture_requests
from caseextract.llm import ModelSettings
from caseextract.llm.batchapi import BatchAPI
from caseextract.review.ledger import ledger_from_recordings
from caseextract.tasks import default_task
from caseextract.testing import (
    Reply,
    crafted_error,
    crafted_function_call,
    crafted_response,
    crafted_tool_completion,
)
from caseextract.testing.batch_server import BatchPlan, FakeBatchServer

from conftest import ROOT, SEED
from helpers import CRAFTED_SEED_ANSWER, crafted_answer, records_json

TASK = default_task()
INVALID = {"article": {}, "patients": [{"age": 5}]}  # no label; age not an object


def good(body: dict, _cid: str) -> Reply:
    return Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER, model=body["model"]))


def docs(tmp_path: Path, names: str = "abc") -> list[Path]:
    folder = tmp_path / "reports"
    folder.mkdir(exist_ok=True)
    paths = []
    for n in names:
        p = folder / f"{n}.txt"
        p.write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
        paths.append(p)
    return paths


def settings(server: FakeBatchServer, **kw) -> ModelSettings:
    values = dict(model="crafted-model", base_url=server.base_url, reasks=1, http_retries=1)
    values.update(kw)
    return ModelSettings(**values)


def do_submit(server, paths, out, limits=None, **kw):
    s = settings(server, **kw)
    return submit(paths, out, TASK, s, "case_report", None, BatchAPI(s), limits or Limits())


def do_collect(server, out, direct=False):
    return collect(out, TASK, BatchAPI(settings(server)), None, server.base_url, direct)


def records(out: Path) -> list[dict]:
    return list(records_json(out))


def uploaded_lines(server: FakeBatchServer) -> list[dict]:
    return [
        json.loads(line)
        for f in server.files.values()
        if f.purpose == "batch"
        for line in f.data.decode().splitlines()
    ]


def test_submit_sends_the_exact_requests_run_would_send(tmp_path):
    paths = docs(tmp_path)
    with FakeBatchServer(good) as server:
        result = do_submit(server, paths, tmp_path / "results.jsonl")
        assert result.submitted == ["a", "b", "c"] and len(result.batches) == 1
        lines = uploaded_lines(server)
        batch = next(iter(server.batches.values()))
        assert batch.endpoint == "/v1/chat/completions"
        s = settings(server)
    captured = capture_requests(TASK, s, [load_document(p) for p in paths])
    by_id = {line["custom_id"]: line for line in lines}
    for path, req in zip(paths, captured, strict=True):
        doc = load_document(path)
        line = by_id[custom_id(doc.id, doc.sha256, 1)]
        assert doc.sha256[:16] in line["custom_id"] and line["custom_id"].startswith(doc.id)
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert line["body"] == req.body
    state = json.loads(state_path(tmp_path / "results.jsonl").read_text())
    assert state["batches"][0]["id"] == batch.id
    assert "api_key" not in json.dumps(state)


def test_collect_validates_grounds_and_writes_records_once(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        server.run_all()
        result = do_collect(server, out)
        assert (result.ok, result.failed) == (3, 0)
        recs = records(out)
        assert [r["status"] for r in recs] == ["ok"] * 3
        g = recs[0]["grounding"]["stats"]
        assert g["facts"] > 0 and g["ungrounded_facts"] == 0
        assert recs[0]["batch"]["usage"] == {"prompt_tokens": 100, "completion_tokens": 50}
        paid = server.lines_answered
        # rerunning every command: nothing sent, nothing written twice
        again = do_collect(server, out)
        assert (again.ok, again.failed, again.followups) == (0, 0, [])
        assert do_submit(server, docs(tmp_path), out).submitted == []
        assert server.lines_answered == paid and len(server.batches) == 1
    assert len(records(out)) == 3
    exchanges = list((work_dir(out) / "exchanges").glob("*.json"))
    assert len(exchanges) == 3  # the recording store holds the batch answers
    assert json.loads(exchanges[0].read_text())["provenance"]["kind"] == "batch answer"
    spent = ledger_from_recordings(work_dir(out) / "exchanges")["crafted-model"]
    assert (spent.calls, spent.batch_prompt_tokens, spent.prompt_tokens) == (3, 300, 300)


def responses_good(body: dict, _cid: str) -> Reply:
    """A crafted Responses answer (a function call) for a /v1/responses line."""
    call = crafted_function_call(CRAFTED_SEED_ANSWER)
    return Reply(body=crafted_response([call], model=body["model"]))


def test_responses_lines_submit_and_collect_like_run(tmp_path):
    """gpt-5.6-terra refuses function tools on Chat Completions: its lines go to the
    Batch API as /v1/responses lines (a batch of that endpoint), collected as run would."""
    out = tmp_path / "results.jsonl"
    paths = docs(tmp_path, "ab")
    kw = dict(model="gpt-5.6-terra", api="responses")
    with FakeBatchServer(responses_good) as server:
        result = do_submit(server, paths, out, **kw)
        assert result.submitted == ["a", "b"]
        [batch] = server.batches.values()
        assert batch.endpoint == "/v1/responses"
        lines = uploaded_lines(server)
        assert {line["url"] for line in lines} == {"/v1/responses"}
        captured = capture_requests(TASK, settings(server, **kw), [load_document(paths[0])])
        assert lines[0]["body"] == captured[0].body and "input" in lines[0]["body"]
        server.run_all()
        done = collect(out, TASK, BatchAPI(settings(server, **kw)), None, server.base_url, False)
        assert (done.ok, done.failed) == (2, 0)
    recs = records(out)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert recs[0]["api"] == "responses"
    assert recs[0]["batch"]["usage"] == {"prompt_tokens": 100, "completion_tokens": 50}


def test_files_split_at_the_request_and_size_limits(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        result = do_submit(server, docs(tmp_path, "abcde"), out, Limits(max_requests=2))
        assert [b["requests"] for b in result.batches] == [2, 2, 1]
        one = result.batches[0]["bytes"] // 2
        out2 = tmp_path / "other.jsonl"
        result = do_submit(server, docs(tmp_path, "abcde"), out2, Limits(max_bytes=one + 10))
        assert [b["requests"] for b in result.batches] == [1] * 5
        server.run_all()
        assert do_collect(server, out).ok == 5


def test_the_crafted_server_refuses_two_models_in_one_file(tmp_path):
    with FakeBatchServer(good) as server:
        api = BatchAPI(settings(server))
        lines = [
            {"custom_id": f"x{i}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": m, "messages": []}}
            for i, m in enumerate(["m1", "m2"])
        ]  # fmt: skip
        fid = api.upload("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode())
        batch = api.create(fid, {})
        assert api.retrieve(batch["id"])["status"] == "failed"
        assert server.batches[batch["id"]].errors[0]["code"] == "mismatched_model"


def test_status_walks_through_the_documented_states(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        api = BatchAPI(settings(server))
        seen = [batch_status(out, api)[0]["status"] for _ in range(3)]
        assert seen == ["in_progress", "finalizing", "completed"]
        assert batch_status(out, api)[0]["request_counts"]["completed"] == 3


def test_a_line_that_failed_in_the_batch_goes_to_a_follow_up(tmp_path):
    out = tmp_path / "results.jsonl"
    first = {"n": 0}

    def flaky(body: dict, cid: str) -> Reply:
        if cid.startswith("b.") and first["n"] == 0:
            first["n"] += 1
            return crafted_error(500, "The server had an error (crafted)")
        if cid.startswith("c."):
            return crafted_error(400, "Invalid 'messages' (crafted)")
        return good(body, cid)

    with FakeBatchServer(flaky) as server:
        do_submit(server, docs(tmp_path), out)
        server.run_all()
        r = do_collect(server, out)
        assert (r.ok, r.failed, r.resent, len(r.followups)) == (1, 1, 1, 1)
        failed = next(x for x in records(out) if x["status"] == "failed")
        assert failed["document"]["id"] == "c" and failed["error"]["kind"] == "not_retryable"
        server.run_all()
        r = do_collect(server, out)
        assert (r.ok, r.failed) == (1, 0)
        rec_b = next(x for x in records(out) if x["document"]["id"] == "b")
        assert len(rec_b["batch"]["batches"]) == 2


def test_lost_lines_stop_after_the_retry_count(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good, BatchPlan(fail_validation="crafted_outage")) as server:
        do_submit(server, docs(tmp_path, "a"), out, http_retries=1)
        server.run_all()
        assert do_collect(server, out).resent == 1  # one more try
        server.run_all()
        r = do_collect(server, out)
        assert (r.failed, r.followups) == (1, [])
        assert records(out)[0]["error"]["kind"] == "transient"
        assert "crafted_outage" in records(out)[0]["error"]["message"]


def test_an_invalid_answer_is_re_asked_in_a_follow_up_batch(tmp_path):
    out = tmp_path / "results.jsonl"

    def reask(body: dict, cid: str) -> Reply:
        answer = INVALID if len(body["messages"]) == 2 else CRAFTED_SEED_ANSWER
        return Reply(body=crafted_tool_completion(answer, model=body["model"]))

    with FakeBatchServer(reask) as server:
        do_submit(server, docs(tmp_path, "a"), out)
        server.run_all()
        r = do_collect(server, out)
        assert (r.ok, r.reasks, len(r.followups)) == (0, 1, 1)
        assert records(out) == []
        follow = [x for x in uploaded_lines(server) if x["custom_id"].endswith(".2")]
        messages = follow[0]["body"]["messages"]
        assert len(messages) > 2 and messages[2]["role"] == "assistant"
        assert "validation" in json.dumps(messages[3:]).lower()
        server.run_all()
        r = do_collect(server, out)
        assert r.ok == 1
        rec = records(out)[0]
        assert rec["attempts"] == 2 and rec["usage"]["prompt_tokens"] == 200
        assert rec["batch"]["requests"][-1].endswith(".2")


def test_an_ungrounded_answer_is_re_asked_directly_with_direct(tmp_path):
    out = tmp_path / "results.jsonl"
    fabricated = crafted_answer(findings=[{"name": "fever", "evidence": ["fever of 41 C"]}])

    def respond(body: dict, cid: str) -> Reply:
        answer = fabricated if len(body["messages"]) == 2 else CRAFTED_SEED_ANSWER
        return Reply(body=crafted_tool_completion(answer, model=body["model"]))

    with FakeBatchServer(respond) as server:
        do_submit(server, docs(tmp_path, "a"), out)
        server.run_all()
        r = do_collect(server, out, direct=True)
        assert (r.ok, r.reasks, r.direct, r.followups) == (1, 1, 1, [])
        assert server.direct_calls == 1
        rec = records(out)[0]
        assert rec["grounding"]["stats"]["ungrounded_facts"] == 0
        # the batch part of the usage is the first answer only
        assert rec["batch"]["usage"]["prompt_tokens"] == 100
        assert rec["usage"]["prompt_tokens"] == 200


def test_expired_batch_resubmits_what_is_missing(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good, BatchPlan(expire_after=1)) as server:
        do_submit(server, docs(tmp_path), out, http_retries=0)
        server.run_all()
        assert next(iter(server.batches.values())).status == "expired"
        server.plan = BatchPlan()
        r = do_collect(server, out)
        assert (r.ok, r.resent) == (1, 2)
        assert [b["requests"] for b in r.followups] == [2]
        server.run_all()
        assert do_collect(server, out).ok == 2
        assert server.lines_answered == 3  # nothing paid twice
    assert sorted(x["document"]["id"] for x in records(out)) == ["a", "b", "c"]


def test_cancel_keeps_what_was_answered_and_submit_sends_the_rest(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good, BatchPlan(lines_per_step=1)) as server:
        server.auto_advance = False  # the test moves the batch itself
        do_submit(server, docs(tmp_path), out)
        (batch_id,) = server.batches
        server.advance(batch_id)  # validating → in_progress
        server.advance(batch_id)  # one line answered
        api = BatchAPI(settings(server))
        assert cancel_batches(out, api) == [batch_id]
        assert server.batches[batch_id].status == "cancelling"
        server.run_all()
        assert server.batches[batch_id].status == "cancelled"
        r = do_collect(server, out)
        assert (r.ok, r.resent, r.followups) == (1, 0, [])  # cancelled: not sent on
        again = do_submit(server, docs(tmp_path), out)
        assert len(again.submitted) == 2
        server.auto_advance = True
        server.run_all()
        assert do_collect(server, out).ok == 2
        assert server.lines_answered == 3


def test_submit_adopts_a_batch_created_before_a_kill(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        job = BatchJob.load(out)
        job.batches[0]["id"] = None  # as if killed before the state was written
        job.save()
        do_submit(server, docs(tmp_path), out)
        assert len(server.batches) == 1
        assert BatchJob.load(out).batches[0]["id"] == next(iter(server.batches))


def test_state_from_other_settings_is_refused(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        with pytest.raises(BatchError, match="settings"):
            do_submit(server, docs(tmp_path), out, reasks=0)


ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def cli(args: list[str], cwd: Path, base_url: str) -> subprocess.Popen:
    env = {**ENV, "OPENAI_BASE_URL": base_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        ["caseextract", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def test_killed_during_submit_then_collected_by_another_process(tmp_path):
    docs(tmp_path)
    args = ["batch", "submit", "reports", "-o", "out/results.jsonl", "--model", "crafted-model"]
    with FakeBatchServer(good) as server:
        server.create_delay = 30.0
        proc = cli(args, tmp_path, server.base_url)
        deadline = time.monotonic() + 60
        while not server.batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.batches, proc.communicate(timeout=5)
        os.killpg(proc.pid, signal.SIGKILL)  # the batch exists; its id was never saved
        proc.wait(timeout=10)
        server.create_delay = 0.0
        done = cli(args, tmp_path, server.base_url)
        assert done.wait(timeout=120) == 0, done.communicate()
        assert len(server.batches) == 1  # adopted, not created (paid) twice
        server.run_all()
        status = cli(["batch", "status", "-o", "out/results.jsonl"], tmp_path, server.base_url)
        _, err = status.communicate(timeout=120)
        assert "completed" in err
        collected = cli(["batch", "collect", "-o", "out/results.jsonl"], tmp_path,
                        server.base_url)  # fmt: skip
        _, err = collected.communicate(timeout=120)
        assert collected.returncode == 0, err
        assert "3 extracted" in err
    assert [r["status"] for r in records(tmp_path / "out" / "results.jsonl")] == ["ok"] * 3


def test_collect_refuses_a_prompt_set_changed_since_submit(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path, "a"), out)
        job = BatchJob.load(out)
        job.data["prompt_version"] = "an-older-version"
        job.save()
        server.run_all()
        with pytest.raises(BatchError, match="prompt set changed"):
            do_collect(server, out)
        assert server.lines_answered == 1 and len(server.batches) == 1


def test_the_crafted_server_keeps_the_documented_rules(tmp_path):
    import openai

    with FakeBatchServer(good) as server:
        client = openai.OpenAI(api_key="crafted", base_url=server.base_url, max_retries=0)
        line = {"custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "m", "messages": []}}  # fmt: skip
        data = (json.dumps(line) + "\n").encode()
        f = client.files.create(file=("in.jsonl", data), purpose="batch")
        assert client.files.retrieve(f.id).bytes == len(data)
        assert client.files.content(f.id).content == data
        with pytest.raises(openai.BadRequestError):
            client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                  completion_window="1h")  # fmt: skip
        other = client.files.create(file=("in.jsonl", data), purpose="assistants")
        with pytest.raises(openai.BadRequestError):
            client.batches.create(input_file_id=other.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")  # fmt: skip
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")  # fmt: skip
        assert batch.status == "validating"
        assert [b.id for b in client.batches.list()] == [batch.id]
        server.run_all()
        with pytest.raises(openai.ConflictError):  # only an active batch can be cancelled
            client.batches.cancel(batch.id)


def test_an_unreadable_input_is_named_and_the_others_go_on(tmp_path):
    paths = docs(tmp_path, "ab")
    empty = tmp_path / "reports" / "empty.txt"
    empty.write_text("   ")
    with FakeBatchServer(good) as server:
        result = do_submit(server, [*paths, empty], tmp_path / "results.jsonl")
    assert result.submitted == ["a", "b"]
    assert result.refused and result.refused[0][0] == str(empty)


def _damage_output(server: FakeBatchServer, damage) -> None:
    """Rewrite each finished batch's output file the way a crafted provider fault would."""
    for b in server.batches.values():
        f = server.files[b.output_file_id]
        f.data = damage(f.data.splitlines(keepends=True))


@pytest.mark.parametrize(
    "fault",
    ["torn last line", "bad byte", "array line", "object custom_id"],
)
def test_a_malformed_output_line_is_named_set_aside_and_sent_again(tmp_path, fault):
    out = tmp_path / "results.jsonl"

    def damage(lines: list[bytes]) -> bytes:
        lines = sorted(lines, key=lambda x: json.loads(x)["custom_id"])  # a, b, c
        if fault == "torn last line":
            lines[2] = lines[2][: len(lines[2]) // 2]
        elif fault == "bad byte":
            lines[2] = lines[2][:40] + b"\xff" + lines[2][40:]
        elif fault == "array line":
            lines[2] = b"[" + lines[2].rstrip(b"\n") + b"]\n"
        else:
            item = json.loads(lines[2])
            item["custom_id"] = {"id": item["custom_id"]}
            lines[2] = (json.dumps(item) + "\n").encode()
        return b"".join(lines)

    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out, http_retries=1)
        server.run_all()
        _damage_output(server, damage)
        r = do_collect(server, out)
        assert (r.ok, r.failed, r.resent, len(r.followups)) == (2, 0, 1, 1)
        (note,) = r.notes
        assert ".output.jsonl line 3" in note, note
        folder = work_dir(out)
        assert len(list(folder.glob("*.damaged.jsonl"))) == 1
        server.run_all()
        r = do_collect(server, out)  # the request sent again is collected
        assert (r.ok, r.failed) == (1, 0)
    assert sorted(x["document"]["id"] for x in records(out)) == ["a", "b", "c"]


def test_two_collects_on_one_output_the_second_is_refused(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        server.run_all()
        from caseextract.errors import OutputBusy
        from caseextract.store import OutputLock

        lock = OutputLock(out)  # as a first collect (or run) holding the output
        try:
            for step in (
                lambda: do_collect(server, out),
                lambda: do_submit(server, docs(tmp_path), out),
                lambda: batch_status(out, BatchAPI(settings(server))),
                lambda: cancel_batches(out, BatchAPI(settings(server))),
            ):
                with pytest.raises(OutputBusy, match="in use"):
                    step()
            assert records(out) == []
        finally:
            lock.release()
        assert do_collect(server, out).ok == 3


def test_two_collect_processes_write_each_document_once(tmp_path):
    docs(tmp_path, "abcdefgh")
    args = ["batch", "submit", "reports", "-o", "results.jsonl", "--model", "crafted-model"]
    with FakeBatchServer(good) as server:
        assert cli(args, tmp_path, server.base_url).wait(timeout=120) == 0
        server.run_all()
        both = [
            cli(["batch", "collect", "-o", "results.jsonl"], tmp_path, server.base_url)
            for _ in range(2)
        ]
        codes = sorted(p.wait(timeout=180) for p in both)
        errs = [p.communicate()[1] for p in both]
    ids = [x["document"]["id"] for x in records(tmp_path / "results.jsonl")]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 8, errs
    assert codes in ([0, 0], [0, 2]), errs  # a second process refused while the first runs
    if codes == [0, 2]:
        assert any("in use" in e for e in errs)


def test_downloaded_files_are_redacted_duplicates_named_other_models_warned(tmp_path):
    out = tmp_path / "results.jsonl"
    key = "sk-crafted-echoed-key-0123456789"

    def echo(body: dict, cid: str) -> Reply:
        # crafted: a provider that echoes the key, and answers c with another model
        model = "other-model" if cid.startswith("c.") else body["model"]
        reply = crafted_tool_completion(CRAFTED_SEED_ANSWER, model=model)
        reply["system_fingerprint"] = f"echo {key}"
        return Reply(body=reply)

    def duplicate(lines: list[bytes]) -> bytes:
        lines = sorted(lines, key=lambda x: json.loads(x)["custom_id"])
        second = json.loads(lines[0])
        second["response"]["body"]["choices"] = []  # the later line would fail the document
        return b"".join([*lines, (json.dumps(second) + "\n").encode()])

    with FakeBatchServer(echo) as server:
        s = settings(server, api_key=key)
        submit(docs(tmp_path), out, TASK, s, "case_report", None, BatchAPI(s), Limits())
        server.run_all()
        _damage_output(server, duplicate)
        r = collect(out, TASK, BatchAPI(s), key, server.base_url)
        assert (r.ok, r.failed) == (3, 0)
    assert not any(key in p.read_text() for p in work_dir(out).rglob("*.jsonl"))
    assert any("[redacted]" in p.read_text() for p in work_dir(out).glob("*.output.jsonl"))
    assert any("a second line for a." in n for n in r.notes), r.notes
    assert any("'other-model'" in n and n.startswith("c.") for n in r.notes), r.notes
    by_id = {x["document"]["id"]: x for x in records(out)}
    assert "other-model" in by_id["c"]["batch"]["warnings"][0]
    assert "warnings" not in by_id["a"]["batch"]


def test_an_output_file_over_the_limit_stops_with_one_line(tmp_path):
    out = tmp_path / "results.jsonl"
    with FakeBatchServer(good) as server:
        do_submit(server, docs(tmp_path), out)
        server.run_all()
        limits = Limits(max_output_bytes=1000)
        with pytest.raises(BatchError, match="larger than the 1,000-byte limit"):
            collect(out, TASK, BatchAPI(settings(server)), None, server.base_url, False, limits)
        assert do_collect(server, out).ok == 3  # nothing was taken from the refused file


def test_an_endless_output_line_is_read_past_not_held(tmp_path):
    from caseextract.batch.collect import output_line
    from caseextract.store import scan

    path = tmp_path / "out.jsonl"
    good_line = json.dumps({"custom_id": "a.1", "response": None}) + "\n"
    path.write_bytes(good_line.encode() + b'{"custom_id": "' + b"x" * 5_000_000 + b'"}\n'
                     + good_line.encode())  # fmt: skip
    seen = [(n, len(raw), problem) for n, raw, _item, problem in scan(path, output_line, 1000)]
    assert seen == [(1, len(good_line), ""), (2, 1000, "longer than 1,000 bytes"),
                    (3, len(good_line), "")]  # fmt: skip
