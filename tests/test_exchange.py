"""Requests out, answers in: export, crafted answers, import, replay, staleness, provenance.

Every answer here is crafted by the test (from the gold labels or by hand) and
named so; none is a model's output.
"""

import hashlib
import json
import shutil

import pytest
from caseextract.cli import app
from caseextract.evals.gold import FIXTURES, load_gold_set
from caseextract.exchange.export import read_index, request_fingerprint
from caseextract.prompts import PROMPTS_DIR
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion
from typer.testing import CliRunner

from helpers import CRAFTED_SEED_ANSWER

runner = CliRunner()
SEED_ID = "seed-vertebroplasty-cement-leakage"
PSOAS_ID = "ada-51-case-report-psoas-abscess-unusual-etiology-of-gr"
CASES = FIXTURES / "cases"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def flat(result):
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def crafted_gold_answers(folder, ids):
    """Crafted answers: each case answered with its own gold label (not a model's output)."""
    golds = {c.case_id: c for c in load_gold_set()}
    for case_id in ids:
        data = golds[case_id].extraction.model_dump(mode="json")
        (folder / f"{case_id}.answer.json").write_text(json.dumps(data, indent=1))


def export(out, *docs, extra=(), api=None):
    result = invoke("export", *docs, "--out", out, *(("--api", api) if api else ()), *extra)
    assert result.exit_code == 0, result.output
    return result


def do_import(folder, store, *extra):
    return invoke(
        "import",
        folder,
        "--recordings",
        store,
        "--provenance",
        "crafted by the test suite",
        "--answered-by",
        "crafted-gold",
        *extra,
    )


# ------------------------------------------------------------------ export


def test_export_is_byte_for_byte_what_run_sends(tmp_path, seed_text):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a-seed.txt").write_text(seed_text, encoding="utf-8")
    # braces, the fence markers and non-ASCII text must reach the model unchanged
    odd = "Café {{ x }} {% if %} <<<REPORT REPORT>>> naïve — 5 µg\n\n\n" + seed_text
    (docs / "b-odd.txt").write_text(odd, encoding="utf-8")
    out = tmp_path / "requests"
    reply = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))
    with FakeOpenAIServer(default=reply) as server:
        # the server named decides the parameters (max_tokens for a server that is not
        # OpenAI's); nothing is sent to it by export
        export(out, docs, extra=("--model", "crafted-model", "--base-url", server.base_url))
        assert server.requests == []
        index = read_index(out)
        assert [e["id"] for e in index["documents"]] == ["a-seed", "b-odd"]
        result = invoke(
            "run",
            docs,
            "--base-url",
            server.base_url,
            "--model",
            "crafted-model",
            "-o",
            tmp_path / "r.jsonl",
            "--no-progress",
            "-j",
            "1",
            "--reasks",
            "0",
        )
        sent, paths = server.raw_requests, [p["_path"] for p in server.requests]
    assert result.exit_code in (0, 1), result.output
    assert len(sent) == 2
    for entry, raw, path in zip(index["documents"], sent, paths, strict=True):
        assert hashlib.sha256(raw).hexdigest() == entry["body_sha256"]
        assert path == entry["path"] == "/v1/chat/completions"
        body = json.loads((out / entry["request"]).read_text(encoding="utf-8"))
        assert body == json.loads(raw)
        assert request_fingerprint(body) == entry["fingerprint"]
        assert body["tools"] and body["messages"][0]["role"] == "system"
    assert "{{ x }}" in json.loads(sent[1])["messages"][1]["content"]


def test_fingerprint_ignores_parameters_but_not_what_the_model_reads(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    export(a, CASES / f"{SEED_ID}.txt")
    export(b, CASES / f"{SEED_ID}.txt", extra=("--model", "other", "--max-tokens", "100"))
    ea, eb = read_index(a)["documents"][0], read_index(b)["documents"][0]
    assert ea["fingerprint"] == eb["fingerprint"]
    assert ea["body_sha256"] != eb["body_sha256"]
    c = tmp_path / "c"
    export(c, CASES / f"{SEED_ID}.txt", extra=("--mode", "json_schema"))
    assert read_index(c)["documents"][0]["fingerprint"] != ea["fingerprint"]


def test_brief_holds_instructions_report_schema_and_how_to_answer(tmp_path, seed_text):
    out = tmp_path / "requests"
    export(out, CASES / f"{SEED_ID}.txt", api="chat")
    entry = read_index(out)["documents"][0]
    body = json.loads((out / entry["request"]).read_text(encoding="utf-8"))
    brief = (out / entry["brief"]).read_text(encoding="utf-8")
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    assert system in brief and user in brief
    schema = body["tools"][0]["function"]["parameters"]
    assert json.dumps(schema, indent=2, ensure_ascii=False) in brief
    assert "ONE JSON object: the arguments of the tool `CaseReport`" in brief
    assert f"Save it as {SEED_ID}.answer.json" in brief


@pytest.mark.parametrize("model", ["gpt-5.6-terra", "gpt-6-sol", "gpt-5.4-mini"])
def test_export_for_current_models_writes_responses_requests_the_api_accepts(tmp_path, model):
    """What `caseextract export … --model gpt-5.6-terra` writes: a /v1/responses request
    (a strict function tool, max_output_tokens, a prompt_cache_key), which the
    conformance server (the API's rules, cited) accepts as it is."""
    import datetime as dt

    import httpx2
    from caseextract.testing import ConformanceServer

    out = tmp_path / "requests"
    export(out, CASES / f"{SEED_ID}.txt", extra=("--model", model))
    entry = read_index(out)["documents"][0]
    body = json.loads((out / entry["request"]).read_text(encoding="utf-8"))
    assert "input" in body and "messages" not in body and "reasoning_effort" not in body
    assert body["tools"][0]["strict"] is True and body["max_output_tokens"] == 32768
    brief = (out / entry["brief"]).read_text(encoding="utf-8")
    assert body["input"][1]["content"] in brief and "tool `CaseReport`" in brief
    with ConformanceServer(lambda _p: {}, today=dt.date(2026, 12, 7)) as s:
        headers = {"Authorization": "Bearer sk-test"}
        answer = httpx2.post(f"{s.base_url}/responses", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert s.refused == []


def test_export_of_nothing_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("export", tmp_path / "empty", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "no input documents" in flat(result)
    result = invoke("export", tmp_path / "none.txt", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "none.txt: cannot" in flat(result)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ round trip


def test_round_trip_export_crafted_answers_import_eval_replays(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt", CASES / f"{PSOAS_ID}.txt")
    crafted_gold_answers(out, [SEED_ID, PSOAS_ID])
    result = do_import(out, store)
    assert result.exit_code == 0, result.output
    assert "imported 2 answer(s)" in flat(result)

    eval_out = tmp_path / "eval"
    result = invoke(
        "eval", "--recordings", store, "--out", eval_out, "--case", SEED_ID, "--case", PSOAS_ID
    )
    assert result.exit_code == 0, result.output
    report = json.loads((eval_out / "report.json").read_text())
    assert report["extracted"] == report["cases"] == 2
    assert all(c["status"] == "ok" and not c["error"] for c in report["per_case"])
    assert report["micro"]["f1"] == 1.0  # the crafted answers are the gold labels
    assert report["info"]["recorded"]["provenance"] == "crafted by the test suite"
    assert report["micro"]["f1_cited"] == 1.0 and "f1_cited" in report["families"]["findings"]
    card = (eval_out / "scorecard.md").read_text()
    assert "| F1 | F1 cited | F1 strict |" in card
    assert "answers: imported answers by crafted-gold, not API recordings" in card
    assert "imported answers by crafted-gold, not API recordings" in flat(result)

    # run replays the same store unchanged, with run's own defaults
    result = invoke(
        "run",
        CASES / f"{SEED_ID}.txt",
        "--record-mode",
        "replay",
        "--recordings",
        store,
        "-o",
        tmp_path / "r.jsonl",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert record["status"] == "ok" and record["attempts"] == 1
    assert record["model_returned"] == "crafted-gold"
    assert record["usage"]["total_tokens"] == 0  # not measured


def test_imported_exchanges_say_what_they_are(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt", CASES / f"{PSOAS_ID}.txt")
    crafted_gold_answers(out, [SEED_ID])  # PSOAS left unanswered
    result = do_import(out, store)
    assert result.exit_code == 0, result.output
    assert f"not answered: {PSOAS_ID}" in flat(result)
    files = [p for p in store.glob("*.json") if p.name != "manifest.json"]
    assert len(files) == 1
    data = json.loads(files[0].read_text())
    prov = data["provenance"]
    assert prov["kind"] == "imported answer: not an API recording"
    assert prov["statement"] == "crafted by the test suite"
    assert prov["answered_by"] == "crafted-gold" and prov["imported_at"]
    answer = (out / f"{SEED_ID}.answer.json").read_text()
    assert prov["answer_sha256"] == hashlib.sha256(answer.encode()).hexdigest()
    assert prov["answer_file"] == f"{SEED_ID}.answer.json"
    assert "not measured" in prov["usage"]
    assert "server" not in prov and "recorded_at" not in prov  # never posing as an API call
    body = data["response"]["body"]
    assert "usage" not in body
    # the default model goes to /v1/responses: the answer is a Responses function call
    [call] = body["output"]
    assert call["type"] == "function_call" and body["object"] == "response"
    assert call["name"] == "CaseReport" and json.loads(call["arguments"]) == json.loads(answer)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["imported"] is True and manifest["provenance"] == "crafted by the test suite"
    assert manifest["reasks"] == 0 and manifest["imported_on"]
    assert "not" in manifest["kind"] and "server" not in manifest
    assert manifest["answers"][SEED_ID]["answer_sha256"] == prov["answer_sha256"]


def test_import_model_override_replays_under_that_name(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt")
    crafted_gold_answers(out, [SEED_ID])
    assert do_import(out, store, "--model", "reference-reader").exit_code == 0
    assert json.loads((store / "manifest.json").read_text())["model"] == "reference-reader"
    result = invoke("eval", "--recordings", store, "--out", tmp_path / "e", "--case", SEED_ID)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["info"]["model"] == "reference-reader" and report["extracted"] == 1


# ------------------------------------------------------------------ staleness


def test_prompt_change_makes_answers_stale_on_import_and_on_re_export(tmp_path):
    prompts = tmp_path / "my_prompts"
    shutil.copytree(PROMPTS_DIR / "case_report", prompts)
    out, store = tmp_path / "requests", tmp_path / "store"
    docs = (CASES / f"{SEED_ID}.txt", CASES / f"{PSOAS_ID}.txt")
    export(out, *docs, extra=("--prompt-set", prompts))
    crafted_gold_answers(out, [SEED_ID, PSOAS_ID])
    system = prompts / "system.j2"
    system.write_text(system.read_text() + "- A new rule.\n")

    result = do_import(out, store)
    assert result.exit_code == 1
    text = flat(result)
    assert SEED_ID in text and PSOAS_ID in text and "prompt or schema changed" in text
    assert not store.exists()  # nothing written

    result = export(out, *docs, extra=("--prompt-set", prompts))
    assert "stale answers" in flat(result) and SEED_ID in flat(result)
    assert do_import(out, store).exit_code == 1  # still stale: the answers predate the change

    # answered afresh after the new export (here: crafted again, with a changed byte)
    for case_id in (SEED_ID, PSOAS_ID):
        path = out / f"{case_id}.answer.json"
        path.write_text(path.read_text() + "\n")
    result = do_import(out, store)
    assert result.exit_code == 0, result.output


def test_changed_document_is_stale_and_skip_stale_imports_the_rest(tmp_path, seed_text):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text(seed_text, encoding="utf-8")
    (docs / "b.txt").write_text(seed_text + "\nAddendum.", encoding="utf-8")
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, docs)
    for name in ("a", "b"):
        (out / f"{name}.answer.json").write_text(json.dumps(CRAFTED_SEED_ANSWER))
    (docs / "b.txt").write_text(seed_text + "\nAnother addendum.", encoding="utf-8")

    result = do_import(out, store)
    assert result.exit_code == 1
    assert "b (the document changed)" in flat(result) and "a (" not in flat(result)

    result = do_import(out, store, "--skip-stale")
    assert result.exit_code == 0, result.output
    assert "imported 1 answer(s)" in flat(result) and "stale" in flat(result)
    assert list(json.loads((store / "manifest.json").read_text())["answers"]) == ["a"]


# ------------------------------------------------------------------ bad input


def test_unreadable_answer_is_named_and_nothing_is_written(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt", CASES / f"{PSOAS_ID}.txt")
    crafted_gold_answers(out, [SEED_ID])
    (out / f"{PSOAS_ID}.answer.json").write_text('{"article": {"title": "cut off')
    result = do_import(out, store)
    assert result.exit_code == 2
    assert f"{PSOAS_ID}.answer.json: not readable JSON" in flat(result)
    assert not store.exists()
    (out / f"{PSOAS_ID}.answer.json").write_text("[]")
    result = do_import(out, store)
    assert result.exit_code == 2 and "one JSON object" in flat(result)


def test_import_needs_a_provenance_and_keeps_server_recordings_apart(tmp_path):
    out = tmp_path / "requests"
    export(out, CASES / f"{SEED_ID}.txt")
    crafted_gold_answers(out, [SEED_ID])
    result = invoke("import", out, "--recordings", tmp_path / "s", "--provenance", " ")
    assert result.exit_code == 2 and "--provenance is required" in flat(result)
    recorded = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recordings" / "gemma-3-270m", recorded)
    result = do_import(out, recorded)
    assert result.exit_code == 2 and "recordings of a server" in flat(result)


def test_answer_that_fails_the_schema_is_imported_and_flagged(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt")
    (out / f"{SEED_ID}.answer.json").write_text(json.dumps({"patients": [{"age": 5}]}))
    result = do_import(out, store)
    assert result.exit_code == 0, result.output
    assert "do not validate" in flat(result) and SEED_ID in flat(result)


def test_import_without_an_export_is_a_clear_error(tmp_path):
    result = do_import(tmp_path, tmp_path / "store")
    assert result.exit_code == 2 and "export the requests first" in flat(result)
    index = {"format": "caseextract-requests/1", "documents": [{"id": "a"}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    result = do_import(tmp_path, tmp_path / "store")
    assert result.exit_code == 2 and "document 1 lacks sha256, source" in flat(result)


def test_json_schema_mode_round_trip_through_run(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt", extra=("--mode", "json_schema"))
    body = json.loads((out / f"{SEED_ID}.request.json").read_text())
    assert "tools" not in body and body["response_format"]["type"] == "json_schema"
    brief = (out / f"{SEED_ID}.brief.txt").read_text()
    assert json.dumps(body["response_format"]["json_schema"]["schema"], indent=2) in brief
    crafted_gold_answers(out, [SEED_ID])
    assert do_import(out, store).exit_code == 0
    recorded = next(p for p in store.glob("*.json") if p.name != "manifest.json")
    message = json.loads(recorded.read_text())["response"]["body"]["choices"][0]["message"]
    assert "tool_calls" not in message and json.loads(message["content"])["patients"]
    result = invoke(
        "run", CASES / f"{SEED_ID}.txt", "--mode", "json_schema", "--record-mode", "replay",
        "--recordings", store, "-o", tmp_path / "r.jsonl", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_answer_found_without_its_export_is_stale(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    out.mkdir()
    crafted_gold_answers(out, [SEED_ID])  # written before any export: for what request?
    result = export(out, CASES / f"{SEED_ID}.txt")
    assert "stale answers" in flat(result) and SEED_ID in flat(result)
    assert read_index(out)["documents"][0]["answer_seen"]["for"] == "unknown"
    assert do_import(out, store).exit_code == 1
    crafted_gold_answers(out, [SEED_ID])  # the same answer again: still unknown
    assert do_import(out, store).exit_code == 1


def test_check_counts_quotes_not_in_the_document_and_writes_nothing(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt")
    answer = json.loads(json.dumps(CRAFTED_SEED_ANSWER))  # crafted, with one invented quote
    answer["patients"][0]["findings"][0]["evidence"] = ["a sentence that is not in the report"]
    (out / f"{SEED_ID}.answer.json").write_text(json.dumps(answer))
    result = do_import(out, store, "--check")
    assert result.exit_code == 0, result.output
    assert f"{SEED_ID}: 7 facts, 1 with a quote not in the document" in flat(result)  # title too
    assert "checked 1 answer(s); nothing written" in flat(result)
    assert not store.exists()
    assert do_import(out, store).exit_code == 0
    manifest = json.loads((store / "manifest.json").read_text())
    assert (
        "ONE JSON object: the arguments of the tool `CaseReport`" in manifest["brief_instruction"]
    )


def test_a_key_in_the_provenance_is_redacted_and_cost_counts_no_tokens(tmp_path):
    out, store = tmp_path / "requests", tmp_path / "store"
    export(out, CASES / f"{SEED_ID}.txt")
    crafted_gold_answers(out, [SEED_ID])
    key = "sk-crafted0123456789abcdef"
    result = invoke(
        "import", out, "--recordings", store, "--provenance", f"by hand, key {key}",
        "--answered-by", "crafted-gold",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for path in store.glob("*.json"):
        assert key not in path.read_text(), path.name
    result = invoke("cost", "--recordings", store)
    row = next(line for line in result.output.splitlines() if "crafted-gold" in line)
    assert [c.strip() for c in row.split("│")[1:6]] == ["crafted-gold", "1", "1", "0", "0"]


STORES = sorted(p.parent for p in (FIXTURES / "recordings").glob("*/manifest.json"))
GOLD_OF_TASK = {
    "caseextract.schema:CaseReport": FIXTURES / "gold",
    "caseextract.tasks:CementLeakage": FIXTURES / "gold-cement",
}


@pytest.mark.parametrize("store", STORES, ids=lambda p: p.name)
def test_every_shipped_store_replays_without_a_miss(store, tmp_path):
    """Any store under fixtures/recordings (recorded or imported) replays in full."""
    manifest = json.loads((store / "manifest.json").read_text())
    task = manifest.get("task") or {}
    gold = GOLD_OF_TASK.get(task.get("schema", "caseextract.schema:CaseReport"))
    documents = {a.get("document", k) for k, a in (manifest.get("answers") or {}).items()}
    extra = []
    if manifest.get("passes"):  # one answer per pass, for some of the gold cases
        extra = ["--passes", manifest["passes"], *[f"--case={d}" for d in sorted(documents)]]
    result = invoke("eval", "--recordings", store, "--out", tmp_path, "--gold", gold, *extra)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert all("no recording" not in (c["error"] or "") for c in report["per_case"])
    assert all(c["status"] != "failed" for c in report["per_case"]) or not manifest.get("imported")
    if manifest.get("imported"):  # answers written elsewhere say so, everywhere
        assert manifest["provenance"] and manifest["kind"].endswith("not an API recording")
        assert documents == {c["case_id"] for c in report["per_case"]}
        for path in store.glob("*.json"):
            if path.name != "manifest.json":
                data = json.loads(path.read_text())
                assert data["provenance"]["kind"] == manifest["kind"]
                assert "usage" not in data["response"]["body"]
