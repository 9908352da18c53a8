"""Run the pipeline over the gold set and score it: Case → Dataset → scores → Report.

Offline by default: every model exchange is replayed from a recordings folder
whose ``manifest.json`` names the model and settings they were recorded with,
so the requests match byte for byte. ``live`` runs against a real server;
``record`` stores its exchanges (and writes the manifest) for later replay.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from caseextract._version import __version__
from caseextract.evals.entities import EntityRecall, load_entities, quote_spans, recall
from caseextract.evals.gold import (
    DEFAULT_SCHEMA,
    FIXTURES,
    GoldCase,
    GoldError,
    GoldTask,
    gold_task,
    load_gold_set,
)
from caseextract.evals.report_model import REPORT_VERSION, EvalReport
from caseextract.evals.scoring import Counts, Entry, Scorer, count
from caseextract.grounding import GroundingStats, ground
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.params import REPLAY_SETTINGS
from caseextract.llm.recording import RecordingStore
from caseextract.pipeline.passes.multipass import PassConfig
from caseextract.pipeline.runner import Runner
from caseextract.prompts import DEFAULT_PROMPT_SET
from caseextract.records import ResultRecord
from caseextract.store import ResultWriter, read_records
from caseextract.tasks import Task, default_task, load_model
from pydantic import BaseModel, ValidationError

# What `eval` replays with no --recordings (`run`'s own store: cli.app.RUN_RECORDINGS):
# the reference answers (a capable reader's, imported) for the case-report task; for
# another task, the bundled model's recordings of that task (<model>-<prompt set>).
EVAL_RECORDINGS = FIXTURES / "recordings" / "reference-claude"
BUNDLED_MODEL_RECORDINGS = FIXTURES / "recordings" / "gemma-3-270m"
DEFAULT_GOLD = FIXTURES / "gold"


def default_recordings(prompt_set: str) -> Path:
    """The store `eval` replays for a task when no --recordings is given."""
    if prompt_set == DEFAULT_PROMPT_SET:
        return EVAL_RECORDINGS
    return BUNDLED_MODEL_RECORDINGS.with_name(f"{BUNDLED_MODEL_RECORDINGS.name}-{prompt_set}")


MANIFEST = "manifest.json"
SETTINGS_KEYS = REPLAY_SETTINGS


def load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: record the gold set first (eval --record)")
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(folder: Path, settings: ModelSettings, extra: dict[str, Any]) -> None:
    """The settings the exchanges were recorded with; notes already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    public = settings.public()
    data = old | {k: public[k] for k in SETTINGS_KEYS} | extra
    data["server"] = settings.base_url or "the OpenAI API"
    data["recorded_on"] = dt.date.today().isoformat()
    data["caseextract_version"] = __version__
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def resolve_task(
    gold_dir: Path,
    schema: str | None = None,
    prompt_set: str | None = None,
    schema_in_prompt: bool = False,
) -> tuple[Task, GoldTask]:
    """The task to run and score: the one the gold files name; ``schema`` must agree
    with it, ``prompt_set`` may replace the gold's own (to compare prompts)."""
    named = gold_task(gold_dir)
    if schema and load_model(schema) is not load_model(named.schema_ref):
        raise GoldError(
            f"the gold in {gold_dir} is for {named.schema_ref}, not {schema}: "
            "pass --gold DIR with labels for that task"
        )
    task = default_task(prompt_set or named.prompt_set, named.schema_ref, schema_in_prompt)
    return task, named


def check_manifest_task(manifest: dict[str, Any], folder: Path, named: GoldTask) -> None:
    """Recordings made for one task cannot be replayed for another."""
    recorded = (manifest.get("task") or {}).get("schema", DEFAULT_SCHEMA)
    if load_model(recorded) is not load_model(named.schema_ref):
        raise GoldError(
            f"the recordings in {folder} were made for {recorded}, the gold is for "
            f"{named.schema_ref}: pass --recordings DIR"
        )


def settings_from_manifest(manifest: dict[str, Any]) -> ModelSettings:
    """Settings that rebuild the recorded requests byte for byte (no key, no server:
    so nothing is left to ``auto``; recordings made before ``token_param`` existed
    sent ``max_tokens``, and the temperature the manifest names or else 0)."""
    data = {k: manifest[k] for k in SETTINGS_KEYS if k in manifest}
    data.setdefault("token_param", "max_tokens")
    data.setdefault("temperature", 0.0)  # dropped for reasoning models all the same
    return ModelSettings.from_public(data)


@dataclass
class CaseResult:
    case_id: str
    status: str  # ok / empty / failed / not_run
    error: str | None
    entries: list[Entry]
    counts: Counts
    families: dict[str, Counts]
    grounding_rate: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    grounding: dict[str, int] = field(default_factory=dict)  # GroundingStats of the record
    # corpus annotations (conditions, findings) covered by the record's / the gold's quotes
    entity_recall: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "error": self.error,
            "grounding_rate": self.grounding_rate,
            "grounding": self.grounding,
            "usage": self.usage,
            **({"entity_recall": self.entity_recall} if self.entity_recall else {}),
            "totals": self.counts.summary(),
            "families": {k: v.summary() for k, v in sorted(self.families.items())},
            "entries": [e.to_dict() for e in self.entries],
        }


def score_case(gold: GoldCase, record: ResultRecord | None, model: type[BaseModel]) -> CaseResult:
    """A result that failed, or was made for another schema, scores as nothing predicted;
    an empty answer is scored as it is (misses)."""
    pred = None
    status, error = "not_run", "no result for this case"
    if record is not None:
        status = record.status
        error = record.error.message if record.error else None
        made_with = record.schema_name
        if status in ("ok", "empty") and made_with not in (None, model.__name__):
            status = "other_task"
            error = f"made with schema {made_with}; the gold is for {model.__name__}"
        elif status in ("ok", "empty"):
            try:
                pred = model.model_validate(record.extraction or {})
            except ValidationError as exc:
                status = "invalid"
                n = exc.error_count()
                error = f"the extraction does not fit {model.__name__}: {n} error(s)"
    entries = Scorer(gold.text).score(gold.extraction, pred)
    total, families = count(entries)
    entity_recall = None
    entities = load_entities(gold.source_path)
    if entities is not None:
        facts = record.grounding.facts if record and record.grounding else []
        found = recall(entities, quote_spans(facts)) if pred is not None else EntityRecall(0, 0)
        in_gold = recall(entities, quote_spans(ground(gold.extraction, gold.text)))
        entity_recall = {"total": len(entities), "found": found.found, "gold": in_gold.found}
    return CaseResult(
        gold.case_id,
        status,
        error,
        entries,
        total,
        families,
        grounding_rate=record.grounding.rate if record and record.grounding else None,
        usage=record.usage.model_dump() if record else {},
        grounding=(record.grounding.stats if record and record.grounding else {}),
        entity_recall=entity_recall,
    )


def run_gold(
    cases: list[GoldCase],
    task: Task,
    client: ModelClient,
    results_path: Path,
    concurrency: int = 2,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
    passes: PassConfig | None = None,
) -> dict[str, ResultRecord]:
    """Extract every gold case's source; return records by case id."""
    with ResultWriter(results_path, resume=False) as writer:
        runner = Runner(task, client, writer, concurrency, preflight=preflight, passes=passes)
        asyncio.run(runner.run([c.source_path for c in cases]))
    return records_by_id(results_path)


def records_by_id(results: Path) -> dict[str, ResultRecord]:
    return {str(r.document.id): r for r in read_records(results)}


def evaluate(
    out_dir: Path,
    recordings: Path = EVAL_RECORDINGS,
    record_mode: str = "replay",
    settings: ModelSettings | None = None,
    gold_dir: Path | None = None,
    results: Path | None = None,
    cases_filter: list[str] | None = None,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
    cases_dir: Path | None = None,
    schema: str | None = None,
    prompt_set: str | None = None,
    schema_in_prompt: bool = False,
    passes: PassConfig | None = None,
) -> EvalReport:
    """Score the gold set; returns the report (written by ``report.write``).

    Replaying, the recordings' manifest says whether the schema was in the prompt."""
    gold_dir = gold_dir or DEFAULT_GOLD
    if record_mode == "replay" and results is None and recordings.is_dir():
        schema_in_prompt = schema_in_prompt or bool(
            load_manifest(recordings).get("task", {}).get("schema_in_prompt")
        )
    task, named = resolve_task(gold_dir, schema, prompt_set, schema_in_prompt)
    cases = load_gold_set(gold_dir, task.response_model, cases_dir)
    if cases_filter:
        cases = [c for c in cases if c.case_id in cases_filter]
    info: dict[str, Any] = {"mode": record_mode, "gold": str(gold_dir), "task": task_info(task)}
    if results is not None:
        records = records_by_id(results)
        info["results"] = str(results)
    else:
        if record_mode == "replay":
            manifest = load_manifest(recordings)
            check_manifest_task(manifest, recordings, named)
            settings = settings_from_manifest(manifest)
            info["recorded"] = manifest
        assert settings is not None
        store = RecordingStore(recordings, record_mode) if record_mode != "off" else None
        client = ModelClient(settings, store)
        out_dir.mkdir(parents=True, exist_ok=True)
        concurrency = 1 if preflight is not None else 2  # a local server answers one at a time
        results_path = out_dir / "results.jsonl"
        records = run_gold(cases, task, client, results_path, concurrency, preflight, passes)
        if record_mode == "record":
            write_manifest(recordings, settings, {"cases": len(cases), "task": task_info(task)})
        info.update(model=settings.model, settings=settings.public())
        if passes is not None and passes.strategy != "single":
            info["passes"] = passes.strategy
    scored = [score_case(c, records.get(c.case_id), task.response_model) for c in cases]
    return build_report(scored, task, info)


def task_info(task: Task) -> dict[str, Any]:
    model = task.response_model
    return {
        "schema": f"{model.__module__}:{model.__name__}",
        "schema_version": task.schema_version,
        "prompt_set": task.prompt_set.name,
        "schema_in_prompt": task.schema_in_prompt,
    }


def build_report(scored: list[CaseResult], task: Task, info: dict[str, Any]) -> EvalReport:
    total = Counts()
    families: dict[str, Counts] = {}
    for case in scored:
        total.add(case.counts)
        for name, c in case.families.items():
            families.setdefault(name, Counts()).add(c)
    fam_f1 = [c.prf()[2] for c in families.values() if c.prf()[2] is not None]
    case_f1 = [c.counts.prf()[2] for c in scored if c.counts.prf()[2] is not None]
    pooled = GroundingStats()
    for c in scored:
        if c.grounding:
            pooled.add(GroundingStats.from_dict(c.grounding))
    annotated = [c.entity_recall for c in scored if c.entity_recall]
    entities = sum(e["total"] for e in annotated)
    entity_recall = None
    if entities:
        found, in_gold = sum(e["found"] for e in annotated), sum(e["gold"] for e in annotated)
        entity_recall = {
            "cases": len(annotated),
            "entities": entities,
            "record": round(found / entities, 4),
            "gold": round(in_gold / entities, 4),
        }
    return EvalReport.model_validate({
        "report_version": REPORT_VERSION,
        "info": info,
        "prompt_version": task.prompt_set.version,
        "schema": task.response_model.__name__,
        "schema_version": task.schema_version,
        "cases": len(scored),
        "extracted": sum(c.status == "ok" for c in scored),
        "empty": sum(c.status == "empty" for c in scored),
        "micro": total.summary(),
        "macro": {
            "f1_over_families": sum(fam_f1) / len(fam_f1) if fam_f1 else None,
            "f1_over_cases": sum(case_f1) / len(case_f1) if case_f1 else None,
        },
        # every fact and article value of every case, pooled (GroundingStats)
        "grounding_rate": pooled.rate,
        "grounding": {**asdict(pooled), "summary": pooled.describe()},
        **({"entity_recall": entity_recall} if entity_recall else {}),
        "families": {k: v.summary() for k, v in sorted(families.items())},
        "per_case": [c.to_dict() for c in scored],
    })  # fmt: skip
