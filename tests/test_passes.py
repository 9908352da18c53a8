"""Multi-pass extraction (plan, fill, chunks, splits, merge, resume) against crafted servers.

Every answer here is crafted: ``CraftedPasses`` cuts each pass's answer out of one
complete crafted answer (or a hand-made gold label), by the fields and the range
of the report each request asks for.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from caseextract.errors import InputError
from caseextract.grounding import Aligner
from caseextract.llm.recording import RecordingStore
from caseextract.pipeline.passes.chunks import chunk_ranges, halves
from caseextract.pipeline.passes.merge import Merger, duplicate, merge_all
from caseextract.pipeline.passes.multipass import PassConfig, prompt_overhead
from caseextract.pipeline.passes.units import Shape, Unit
from caseextract.pipeline.runner import Runner
from caseextract.prompts import load_prompt_set
from caseextract.records import ResultRecord
from caseextract.review.ledger import ledger_from_results
from caseextract.schema import CaseReport
from caseextract.store import ResultWriter, read_records
from caseextract.tasks import CementLeakage, default_task
from caseextract.testing import CraftedPasses, FakeOpenAIServer, crafted_error

from conftest import ROOT, SEED
from helpers import CRAFTED_SEED_ANSWER, client_for

WORDS = [
    "headache", "nausea", "vomiting", "dizziness", "fatigue", "fever", "cough", "rash",
    "itching", "swelling", "numbness", "tremor", "insomnia", "anxiety", "palpitations",
    "dyspnea", "constipation", "diarrhea", "hoarseness", "blurred vision",
]  # fmt: skip
FILLER = "The notes of that day record nothing else of interest for this review. "
TITLE = "Three long cases: a crafted series for tests"


def crafted_series(cases: int = 3, per_case: int = 8, filler: int = 3) -> tuple[str, dict]:
    """A crafted case series and its complete crafted answer (quotes from the text)."""
    parts = [f"{TITLE}\n\n"]
    answer: dict[str, Any] = {
        "article": {"title": TITLE, "evidence": [TITLE]},
        "patients": [],
        "figures": [],
    }
    for k in range(1, cases + 1):
        intro = f"Case {k}. A {40 + k}-year-old woman was admitted."
        parts.append(intro + "\n\n")
        findings = []
        for j in range(per_case):
            word = WORDS[(k * 7 + j) % len(WORDS)]
            sentence = f"In case {k}, on day {j + 1} she reported {word} (item {k}.{j + 1})."
            parts.append(sentence + " " + FILLER * filler + "\n\n")
            findings.append({"name": word, "evidence": [sentence]})
        answer["patients"].append(
            {
                "label": f"Case {k}",
                "age": {"raw": f"{40 + k}-year-old", "evidence": [intro]},
                "findings": findings,
            }
        )
    caption = "Figure 1. Timeline of the three cases."
    parts.append(caption + "\n")
    answer["figures"].append({"label": "Fig. 1", "shows": "timeline", "evidence": [caption]})
    return "".join(parts), answer


def run_one(
    path: Path,
    base_url: str,
    out: Path,
    passes: PassConfig | None,
    task: Any = None,
    store: RecordingStore | None = None,
    **settings: Any,
) -> ResultRecord:
    client = client_for(base_url, **{"http_retries": 0, "reasks": 0, **settings})
    if store is not None:
        client = type(client)(client.settings, store)
    with ResultWriter(out, resume=True) as writer:
        runner = Runner(task or default_task(), client, writer, 2, passes=passes)
        asyncio.run(runner.run([path]))
    records = list(read_records(out))
    return records[-1]


def names(record: ResultRecord) -> list[list[str]]:
    patients = (record.extraction or {})["patients"]
    return [[f["name"] for f in p.get("findings", [])] for p in patients]


def expected_names(answer: dict) -> list[list[str]]:
    return [[f["name"] for f in p["findings"]] for p in answer["patients"]]


def spans_point_into(record: ResultRecord, text: str) -> int:
    """How many quotes of the record's grounding index ``text`` exactly; asserts all do."""
    n = 0
    for fact in record.grounding.facts:
        for q in fact["quotes"]:
            assert text[q["start"] : q["end"]] == q["quote"], q
            n += 1
    return n


@pytest.fixture
def series(tmp_path: Path) -> tuple[Path, str, dict]:
    text, answer = crafted_series()
    path = tmp_path / "series.txt"
    path.write_text(text, encoding="utf-8")
    return path, text, answer


# ----------------------------------------------------------------- response models


def test_shape_finds_the_unit_list_and_builds_pass_models():
    shape = Shape.of(CaseReport)
    assert (shape.unit_field, shape.plan_fields, shape.document_fields) == (
        "patients",
        ("article",),
        ("figures",),
    )
    assert "label" not in shape.item_fields and "findings" in shape.item_fields
    plan = shape.plan_model()
    entry = plan.model_json_schema()["$defs"]["PatientEntry"]
    assert set(entry["properties"]) == {"label", "evidence"}
    assert plan.model_validate({"patients": []}).article is None  # optional in a pass
    unit = Unit("item", shape.item_fields, 0, "Case 1")
    first, second = unit.split_fields()
    assert shape.unit_model(unit).__name__ == "Patient"
    assert list(shape.unit_model(first).model_fields) == list(first.fields)
    assert first.fields + second.fields == shape.item_fields
    long_group = Unit("item", shape.item_fields[:-1], 0, "Case 1")  # not all: a long name
    assert len(shape.unit_model(long_group).__name__) == 64


def test_a_model_without_a_unit_list_is_split_by_families():
    shape = Shape.of(CementLeakage)
    assert shape.unit_field is None and shape.plan_fields == ()
    assert shape.document_fields == ("age", "procedures", "leaks", "consequences")


def test_pass_templates_leave_the_single_pass_version_alone(tmp_path):
    ps = load_prompt_set("case_report")
    assert ps.version == "43615ef9f6e1"  # the shipped recordings were made with it
    assert ps.passes_version != ps.version
    own = tmp_path / "mine"
    own.mkdir()
    for name in ("system.j2", "user.j2"):
        (own / name).write_text((ROOT / "prompts" / "cement_leakage" / name).read_text())
    mine = load_prompt_set(own)  # no passes/ folder: the shared templates
    text = mine.render_pass("passes/fill.j2", schema_name="X", label=None, fields=["a"], part=None)
    assert "Fill only these fields: a." in text


# ----------------------------------------------------------------- chunks and merge


def test_chunks_cover_the_text_with_overlaps():
    text, _ = crafted_series(cases=3, per_case=10)
    ranges = chunk_ranges(text, 3000, 600)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)
    for (s1, e1), (s2, _) in zip(ranges, ranges[1:], strict=False):
        assert e1 - s1 <= 3000 and s2 < e1 and s2 > s1  # overlapping, advancing
    a, b = halves(0, 3000, text, 300)
    assert a[0] == 0 and b[1] == 3000 and b[0] < a[1]


def test_overlapping_duplicates_merge_and_distinct_facts_stay():
    text = "Alpha said: she had a fever of 39 C. Later: no cough at all. Then: fever again."
    merger = Merger(Aligner(text))
    a = merger.annotate({"findings": [{"name": "fever", "evidence": ["fever of 39 C"]}]}, 0, 1)
    b = merger.annotate(
        {"findings": [{"name": "Fever", "evidence": ["a fever of 39", "fever of 39 C."]}]}, 5, 2
    )
    c = merger.annotate({"findings": [{"name": "cough", "evidence": ["no cough"]}]}, 20, 3)
    merged = merge_all([a, b, c])
    assert [f["name"] for f in merged["findings"]] == ["fever", "cough"]
    assert len(merged["findings"][0]["evidence"]) == 3  # quotes united
    same_pass = merger.annotate(
        {"findings": [{"name": "fever", "evidence": ["fever of 39"]}] * 2}, 0, 4
    )
    assert not duplicate(same_pass["findings"][0], same_pass["findings"][1])
    # same name, quotes apart, a field that disagrees: two facts
    x = merger.annotate(
        {"f": [{"name": "fever", "detail": "high", "evidence": ["fever of"]}]}, 0, 5
    )
    y = merger.annotate(
        {"f": [{"name": "fever", "detail": "mild", "evidence": ["fever again"]}]}, 0, 6
    )
    assert len(merge_all([x, y])["f"]) == 2


# ----------------------------------------------------------------- the pipeline


def test_multi_pass_plans_then_fills_one_call_per_patient(series, tmp_path):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)])
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", PassConfig(strategy="multi"))
    assert record.ok, record.error
    kinds = [r.kind for r in crafted.seen]
    assert kinds == ["plan", "fill", "fill", "fill", "fill"]  # 3 patients + figures
    assert sorted(r.label or "" for r in crafted.seen[1:]) == ["", "Case 1", "Case 2", "Case 3"]
    assert [p.unit for p in record.passes][:2] == ["plan:article+patients", record.passes[1].unit]
    assert names(record) == expected_names(answer)
    assert record.extraction["figures"][0]["label"] == "Fig. 1"
    assert record.attempts == 5 == sum(p.attempts for p in record.passes)
    assert record.usage.prompt_tokens == sum(p.usage.prompt_tokens for p in record.passes)
    assert record.prompt_version == load_prompt_set().passes_version
    assert spans_point_into(record, text) == 3 * 9 + 2 + 1  # and the title, a value


def test_same_answer_single_and_multi_for_the_seed(tmp_path):
    text = SEED.read_text(encoding="utf-8")
    crafted = CraftedPasses([(text, CRAFTED_SEED_ANSWER)])
    with FakeOpenAIServer(crafted) as server:
        single = run_one(SEED, server.base_url, tmp_path / "s.jsonl", PassConfig(strategy="single"))
        multi = run_one(SEED, server.base_url, tmp_path / "m.jsonl", PassConfig(strategy="multi"))
    assert single.ok and multi.ok and single.passes is None
    assert multi.extraction == single.extraction
    assert multi.grounding.facts == single.grounding.facts


def test_a_truncated_answer_recovers_by_splitting(series, tmp_path):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)], budget=120)  # tokens per crafted answer
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", PassConfig(strategy="multi"))
    assert record.ok, record.error
    statuses = [p.status for p in record.passes]
    assert "split" in statuses and statuses.count("ok") > 5
    split = next(p for p in record.passes if p.status == "split")
    assert split.error.kind == "truncated"
    # finer units: by families first, then by halves of the text
    units = [p.unit for p in record.passes]
    assert any(u.startswith("item[0]:age+sex") and "findings" not in u for u in units)
    assert any("@" in u and u.startswith("item[") for u in units)
    assert names(record) == expected_names(answer)  # nothing lost, nothing twice
    assert any(r.truncated for r in crafted.seen)
    spans_point_into(record, text)


def test_a_unit_that_cannot_be_split_further_fails_with_its_reason(tmp_path):
    text = SEED.read_text(encoding="utf-8")
    crafted = CraftedPasses([(text, CRAFTED_SEED_ANSWER)], budget=3)
    with FakeOpenAIServer(crafted) as server:
        record = run_one(SEED, server.base_url, tmp_path / "r.jsonl", PassConfig(strategy="multi"))
    assert not record.ok
    assert record.error.kind == "truncated"
    assert record.error.message.startswith("pass plan:")
    assert "cannot be split further" in record.error.message
    assert record.passes[-1].status == "failed" or "failed" in [p.status for p in record.passes]
    assert record.attempts == len(crafted.seen)  # every pass is counted


def test_splitting_stops_at_the_pass_budget(series, tmp_path):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)], budget=120)
    cfg = PassConfig(strategy="multi", max_passes=8)
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", cfg)
    assert record.error.kind == "truncated"
    assert "--max-passes 8 is spent" in record.error.message
    assert len(crafted.seen) <= 8 and record.attempts == len(crafted.seen)
    three = PassConfig("multi", max_passes=3)
    with FakeOpenAIServer(crafted) as server:
        few = run_one(path, server.base_url, tmp_path / "f.jsonl", three)
    assert few.error.kind == "config" and "needs 5 passes" in few.error.message


def test_long_document_is_read_in_overlapping_chunks_and_duplicates_merge(series, tmp_path):
    path, text, answer = series
    task = default_task()
    max_tokens = 1000
    window = prompt_overhead(task, "series") + max_tokens + 800  # ~3k characters of report
    crafted = CraftedPasses([(text, answer)])
    cfg = PassConfig(strategy="multi", context_window=window, overlap=700)
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", cfg, max_tokens=max_tokens)
    assert record.ok, record.error
    plan_chunks = [tuple(p.chunk) for p in record.passes if p.unit.startswith("plan")]
    assert len(plan_chunks) >= 3 and plan_chunks[0][0] == 0 and plan_chunks[-1][1] == len(text)
    assert all(b[0] < a[1] for a, b in zip(plan_chunks, plan_chunks[1:], strict=False))
    # some facts were answered by two chunks (their quote in an overlap) ...
    in_two = [
        q
        for p in answer["patients"]
        for f in p["findings"]
        for q in f["evidence"]
        if sum(s <= text.find(q) and text.find(q) + len(q) <= e for s, e in plan_chunks) > 1
    ]
    assert in_two
    fills = [r for r in crafted.seen if r.kind == "fill" and r.label == "Case 1"]
    assert len(fills) >= 2  # a patient read from the chunks the roster places it in
    assert all(r.end - r.start < len(text) for r in fills)
    # ... and are in the record once, grounded in the original text
    assert names(record) == expected_names(answer)
    assert spans_point_into(record, text) == 3 * 9 + 2 + 1  # and the title, a value


def test_auto_picks_single_for_short_and_multi_for_long_or_cut_answers(series, tmp_path):
    path, text, answer = series
    seed_text = SEED.read_text(encoding="utf-8")
    crafted = CraftedPasses([(text, answer), (seed_text, CRAFTED_SEED_ANSWER)])
    auto = PassConfig(strategy="auto")
    with FakeOpenAIServer(crafted) as server:
        short = run_one(SEED, server.base_url, tmp_path / "a.jsonl", auto)
        assert [p.unit for p in short.passes] == ["single"] and len(crafted.seen) == 1
        long = run_one(path, server.base_url, tmp_path / "b.jsonl", auto, max_tokens=500)
        assert long.ok and long.passes[0].unit.startswith("plan")  # no single call tried
        crafted.budget = 400  # the single answer (~700 tokens) is cut: then multi
        cut = run_one(path, server.base_url, tmp_path / "c.jsonl", auto, max_tokens=4000)
    assert cut.ok, cut.error
    assert cut.passes[0].unit == "single" and cut.passes[0].status == "split"
    assert names(cut) == expected_names(answer)


def test_auto_goes_multi_in_chunks_when_the_prompt_exceeds_the_context(series, tmp_path):
    path, text, answer = series
    window = prompt_overhead(default_task(), "series") + 1000 + 800
    crafted = CraftedPasses([(text, answer)])
    cfg = PassConfig(strategy="auto", context_window=window)
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", cfg, max_tokens=1000)
    assert record.ok and crafted.seen[0].kind == "plan"  # no single call was tried
    assert record.passes[0].chunk == [0, record.passes[0].chunk[1]] != [0, len(text)]
    assert names(record) == expected_names(answer)


def test_a_prompt_refused_as_too_long_is_split_by_text(series, tmp_path):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)])
    refused: list[int] = []

    # the prompt without the report, plus the pass instructions, plus ~2,500 characters
    bare = default_task().prompt_set.render(
        document="", document_name="series", schema_name="CaseReport", extra_instructions=None
    )
    limit = sum(len(m["content"]) for m in bare) + 1500 + 2500

    def preflight(messages: list[dict[str, str]]) -> None:  # as the local server's check
        size = sum(len(m["content"]) for m in messages)
        if size > limit:
            refused.append(size)
            raise InputError("document too long for the local context: crafted limit")

    with FakeOpenAIServer(crafted) as server:
        client = client_for(server.base_url, http_retries=0, reasks=0)
        with ResultWriter(tmp_path / "r.jsonl", resume=False) as writer:
            runner = Runner(
                default_task(), client, writer, 2, preflight=preflight, passes=PassConfig()
            )
            asyncio.run(runner.run([path]))
    record = next(read_records(tmp_path / "r.jsonl"))
    assert refused and record.ok, record.error
    assert record.passes[0].unit == "single" and record.passes[0].error.kind == "input"
    assert any(p.status == "split" and p.unit.startswith("plan") for p in record.passes)
    assert all(p.chunk for p in record.passes if p.status == "ok")  # only text halves fit
    assert names(record) == expected_names(answer)


def test_resume_does_not_redo_finished_passes(series, tmp_path):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)])

    def case_2_fails(payload: dict, index: int):
        if "«Case 2»" in payload["messages"][0]["content"]:
            return crafted_error(400, "crafted bad request for this pass")
        return crafted(payload, index)

    out = tmp_path / "r.jsonl"
    with FakeOpenAIServer(case_2_fails) as server:
        failed = run_one(path, server.base_url, out, PassConfig(strategy="multi"))
    assert failed.error.kind == "not_retryable"
    assert failed.error.message.startswith("pass item[1]:")
    assert (tmp_path / "r.jsonl.passes").is_dir()
    assert len(crafted.seen) == 4  # every other pass finished (and was stored)
    crafted.seen.clear()
    with FakeOpenAIServer(crafted) as server:
        done = run_one(path, server.base_url, out, PassConfig(strategy="multi"))
    assert done.ok
    assert [r.label for r in crafted.seen] == ["Case 2"]  # only the unfinished pass
    assert sorted(p.status for p in done.passes) == ["ok"] + ["resumed"] * 4
    assert not (tmp_path / "r.jsonl.passes").exists()  # kept only until the record is made
    assert names(done) == expected_names(answer)
    # the ledger sums every pass of the record (resumed ones carry what they cost)
    spend = ledger_from_results([out])["crafted-model"]
    assert spend.calls == sum(p.attempts for p in done.passes) == 5
    assert spend.prompt_tokens == sum(p.usage.prompt_tokens for p in done.passes)


@pytest.mark.parametrize("damage", ["nested too deeply", "not an object", "too large"])
def test_a_damaged_pass_file_counts_as_absent(series, tmp_path, damage):
    path, text, answer = series
    crafted = CraftedPasses([(text, answer)])

    def case_2_fails(payload: dict, index: int):
        if "«Case 2»" in payload["messages"][0]["content"]:
            return crafted_error(400, "crafted bad request for this pass")
        return crafted(payload, index)

    out = tmp_path / "r.jsonl"
    with FakeOpenAIServer(case_2_fails) as server:
        assert not run_one(path, server.base_url, out, PassConfig(strategy="multi")).ok
    stored = sorted((tmp_path / "r.jsonl.passes").rglob("*.json"))
    assert len(stored) == 4
    if damage == "nested too deeply":
        stored[0].write_text('{"unit": ' * 100_000 + "1" + "}" * 100_000)
    elif damage == "not an object":
        stored[0].write_text('{"unit": "x", "value": [1]}')
    else:
        from caseextract.pipeline.passes.store import MAX_PASS_BYTES

        with stored[0].open("r+b") as fh:  # sparse: nothing written to disk
            fh.truncate(MAX_PASS_BYTES + 1)
    crafted.seen.clear()
    with FakeOpenAIServer(crafted) as server:
        done = run_one(path, server.base_url, out, PassConfig(strategy="multi"))
    assert done.ok, done.error
    assert len(crafted.seen) == 2  # Case 2, and the pass whose file was damaged


def test_every_pass_is_recorded_and_replays_without_the_server(series, tmp_path):
    path, text, answer = series
    folder = tmp_path / "recordings"
    crafted = CraftedPasses([(text, answer)])
    cfg = PassConfig(strategy="multi", resume=False)
    with FakeOpenAIServer(crafted) as server:
        url = server.base_url
        store = RecordingStore(folder, "record")
        recorded = run_one(path, url, tmp_path / "a.jsonl", cfg, store=store)
    assert len(list(folder.glob("*.json"))) == 5  # one exchange per pass
    replayed = run_one(path, url, tmp_path / "b.jsonl", cfg, store=RecordingStore(folder, "replay"))
    assert replayed.ok and replayed.extraction == recorded.extraction
    assert len(replayed.passes) == 5


def test_cement_task_without_a_roster_splits_by_families(tmp_path):
    text = SEED.read_text(encoding="utf-8")
    answer = {
        "age": {"raw": "87-year-old", "evidence": ["An 87-year-old female patient"]},
        "procedures": [
            {
                "name": "vertebroplasty",
                "levels": ["L1"],
                "evidence": ["Vertebroplasty for L1 was performed under intravenous sedation"],
            }
        ],
        "leaks": [],
        "consequences": [],
    }
    crafted = CraftedPasses([(text, answer)], unit_field=None, budget=40)
    task = default_task("cement_leakage", "caseextract.tasks:CementLeakage")
    with FakeOpenAIServer(crafted) as server:
        record = run_one(SEED, server.base_url, tmp_path / "r.jsonl", PassConfig("multi"), task)
    assert record.ok, record.error
    assert record.passes[0].unit == "document:age+procedures+leaks+consequences"
    assert record.passes[0].status == "split"
    done = {p.unit for p in record.passes if p.status == "ok"}
    assert {"document:age", "document:procedures", "document:leaks+consequences"} <= done
    assert record.extraction["procedures"][0]["name"] == "vertebroplasty"
    assert record.extraction["age"]["raw"] == "87-year-old"


# ----------------------------------------------------------------- ada-23 (87k characters)

ADA23 = "ada-23-the-narcotic-bowel-syndrome-clinical-features-pa"


@pytest.fixture(scope="module")
def ada23() -> tuple[Path, str, dict]:
    gold = json.loads((ROOT / "fixtures" / "gold" / f"{ADA23}.json").read_text("utf-8"))
    path = ROOT / "fixtures" / gold["source"]
    return path, path.read_text(encoding="utf-8"), gold["extraction"]


def _score(record: ResultRecord) -> dict:
    from caseextract.evals.gold import load_gold_set
    from caseextract.evals.runner import score_case

    task = default_task()
    case = next(c for c in load_gold_set(None, task.response_model) if c.case_id == ADA23)
    return score_case(case, record, task.response_model).counts.summary()


def test_ada23_end_to_end_single_is_cut_auto_goes_multi(ada23, tmp_path):
    path, text, gold = ada23
    crafted = CraftedPasses([(text, copy.deepcopy(gold))], budget=8192)
    with FakeOpenAIServer(crafted) as server:
        single = run_one(path, server.base_url, tmp_path / "s.jsonl", PassConfig("single"))
        auto = run_one(path, server.base_url, tmp_path / "a.jsonl", PassConfig("auto"))
    assert single.error.kind == "truncated"  # one answer cannot hold five patients
    assert auto.ok, auto.error
    assert auto.passes[0].unit.startswith("plan")  # 87k characters: multi from the start
    assert [p["label"] for p in auto.extraction["patients"]] == [f"Case #{i}" for i in range(1, 6)]
    assert _score(auto)["f1"] == 1.0
    spans_point_into(auto, text)


def test_ada23_through_a_16k_context_in_chunks(ada23, tmp_path):
    path, text, gold = ada23
    crafted = CraftedPasses([(text, copy.deepcopy(gold))], budget=8192)
    cfg = PassConfig("multi", context_window=16384)
    with FakeOpenAIServer(crafted) as server:
        record = run_one(path, server.base_url, tmp_path / "r.jsonl", cfg)
    assert record.ok, record.error
    chunks = {tuple(p.chunk) for p in record.passes if p.chunk}
    assert len([c for c in chunks if c[0] == 0]) == 1 and max(e for _, e in chunks) == len(text)
    assert all(e - s < 20_000 for s, e in chunks)
    scores = _score(record)
    assert scores["f1"] == 1.0, scores  # merged, not duplicated, nothing lost
    assert spans_point_into(record, text) > 200


# ----------------------------------------------------------------- command line


def test_cli_run_and_eval_take_passes_and_context_window(ada23, tmp_path):
    from caseextract.cli import app
    from typer.testing import CliRunner

    path, text, gold = ada23
    crafted = CraftedPasses([(text, copy.deepcopy(gold))], budget=8192)
    cli = CliRunner()
    out = tmp_path / "r.jsonl"
    with FakeOpenAIServer(crafted) as server:
        common = ["--base-url", server.base_url, "--model", "crafted-model", "--no-progress"]
        done = cli.invoke(
            app, ["run", str(path), "-o", str(out), "--passes", "multi", "--context-window",
                  "16384", *common],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        record = next(read_records(out))
        assert record.ok and len({tuple(p.chunk) for p in record.passes if p.chunk}) > 3
        seen = len(crafted.seen)
        again = cli.invoke(app, ["run", str(path), "-o", str(out), "--passes", "multi", *common])
        assert again.exit_code == 0 and len(crafted.seen) == seen  # done: skipped
        scored = cli.invoke(
            app, ["eval", "--live", "--base-url", server.base_url, "--model", "crafted-model",
                  "--case", ADA23, "--passes", "auto", "--out", str(tmp_path / "eval")],
        )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["extracted"] == 1 and report["micro"]["f1"] == 1.0
    assert report["info"]["passes"] == "auto"
    bad = cli.invoke(app, ["run", str(path), "-o", str(out), "--passes", "twice"])
    assert bad.exit_code == 2 and "--passes must be one of auto, single, multi" in bad.output


class _TogetherPasses(CraftedPasses):
    """Crafted passes answered in waves: each request waits (briefly) for the others in
    flight, so that answers cut at the budget come back together and their documents
    decide on splits at the same moment (the condition the race needs; no time asserted)."""

    def __init__(self, *args: Any, wave: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._barrier = threading.Barrier(wave)

    def __call__(self, payload: dict[str, Any], index: int) -> Any:
        try:
            self._barrier.wait(timeout=0.2)
        except threading.BrokenBarrierError:  # fewer in flight: this wave goes on as it is
            self._barrier.reset()
        return super().__call__(payload, index)


def test_the_pass_budget_holds_at_any_concurrency(series, tmp_path):
    path, text, answer = series
    for rounds in range(12):
        crafted = _TogetherPasses([(text, answer)], budget=120, wave=4)
        cfg = PassConfig(strategy="multi", max_passes=8, concurrency=64, resume=False)
        with FakeOpenAIServer(crafted) as server:
            record = run_one(path, server.base_url, tmp_path / f"r{rounds}.jsonl", cfg)
        assert len(crafted.seen) <= 8, (rounds, [(r.kind, r.label) for r in crafted.seen])
        assert record.attempts == len(crafted.seen)
