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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract import __version__
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.recording import RecordingStore
from caseextract.passes import PassConfig
from caseextract.pipeline import Runner, Task, default_task
from caseextract.records import ResultRecord
from caseextract.store import ResultWriter, read_records
from pydantic import BaseModel

from .gold import FIXTURES, GoldCase, load_gold_set
from .scoring import Counts, Entry, Scorer, count

DEFAULT_RECORDINGS = FIXTURES / "recordings" / "gemma-3-270m"
MANIFEST = "manifest.json"
SETTINGS_KEYS = ("model", "mode", "max_tokens", "temperature", "reasks", "http_retries")


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
    data = old | {k: getattr(settings, k) for k in SETTINGS_KEYS} | extra
    data["server"] = settings.base_url or "the OpenAI API"
    data["recorded_on"] = dt.date.today().isoformat()
    data["caseextract_version"] = __version__
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def settings_from_manifest(manifest: dict[str, Any]) -> ModelSettings:
    return ModelSettings(**{k: manifest[k] for k in SETTINGS_KEYS if k in manifest})


@dataclass
class CaseResult:
    case_id: str
    status: str  # ok / failed / not_run
    error: str | None
    entries: list[Entry]
    counts: Counts
    families: dict[str, Counts]
    grounding_rate: float | None = None
    usage: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "status": self.status,
            "error": self.error,
            "grounding_rate": self.grounding_rate,
            "usage": self.usage,
            "totals": self.counts.summary(),
            "families": {k: v.summary() for k, v in sorted(self.families.items())},
            "entries": [e.to_dict() for e in self.entries],
        }


def score_case(gold: GoldCase, record: ResultRecord | None, model: type[BaseModel]) -> CaseResult:
    pred = None
    status, error = "not_run", "no result for this case"
    if record is not None:
        status = record.status
        error = record.error.message if record.error else None
        if record.ok:
            pred = model.model_validate(record.extraction or {})
    entries = Scorer(gold.text).score(gold.extraction, pred)
    total, families = count(entries)
    return CaseResult(
        gold.case_id,
        status,
        error,
        entries,
        total,
        families,
        grounding_rate=record.grounding.rate if record and record.grounding else None,
        usage=record.usage.model_dump() if record else {},
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
    recordings: Path = DEFAULT_RECORDINGS,
    mode: str = "replay",
    settings: ModelSettings | None = None,
    gold_dir: Path | None = None,
    results: Path | None = None,
    cases_filter: list[str] | None = None,
    preflight: Callable[[list[dict[str, str]]], None] | None = None,
    passes: PassConfig | None = None,
) -> dict[str, Any]:
    """Score the gold set; returns the report dict (also written by ``report``)."""
    task = default_task()
    cases = load_gold_set(gold_dir, task.response_model)
    if cases_filter:
        cases = [c for c in cases if c.case_id in cases_filter]
    info: dict[str, Any] = {"mode": mode}
    if results is not None:
        records = records_by_id(results)
        info["results"] = str(results)
    else:
        if mode == "replay":
            manifest = load_manifest(recordings)
            settings = settings_from_manifest(manifest)
            info["recorded"] = manifest
        assert settings is not None
        store = RecordingStore(recordings, mode) if mode != "off" else None
        client = ModelClient(settings, store)
        out_dir.mkdir(parents=True, exist_ok=True)
        concurrency = 1 if preflight is not None else 2  # a local server answers one at a time
        results_path = out_dir / "results.jsonl"
        records = run_gold(cases, task, client, results_path, concurrency, preflight, passes)
        if mode == "record":
            write_manifest(recordings, settings, {"cases": len(cases)})
        info.update(model=settings.model, settings=settings.public())
        if passes is not None and passes.mode != "single":
            info["passes"] = passes.mode
    scored = [score_case(c, records.get(c.case_id), task.response_model) for c in cases]
    return build_report(scored, task, info)


def build_report(scored: list[CaseResult], task: Task, info: dict[str, Any]) -> dict[str, Any]:
    total = Counts()
    families: dict[str, Counts] = {}
    for case in scored:
        total.add(case.counts)
        for name, c in case.families.items():
            families.setdefault(name, Counts()).add(c)
    fam_f1 = [c.prf()[2] for c in families.values() if c.prf()[2] is not None]
    case_f1 = [c.counts.prf()[2] for c in scored if c.counts.prf()[2] is not None]
    rates = [c.grounding_rate for c in scored if c.grounding_rate is not None]
    return {
        "info": info,
        "prompt_version": task.prompt_set.version,
        "schema": task.response_model.__name__,
        "schema_version": task.schema_version,
        "cases": len(scored),
        "extracted": sum(c.status == "ok" for c in scored),
        "micro": total.summary(),
        "macro": {
            "f1_over_families": sum(fam_f1) / len(fam_f1) if fam_f1 else None,
            "f1_over_cases": sum(case_f1) / len(case_f1) if case_f1 else None,
        },
        "grounding_rate": sum(rates) / len(rates) if rates else None,
        "families": {k: v.summary() for k, v in sorted(families.items())},
        "per_case": [c.to_dict() for c in scored],
    }
