"""Crafted answers and small helpers shared by tests (nothing here is a recording)."""

from __future__ import annotations

from typing import Any

from caseextract.llm import ModelClient, ModelSettings
from caseextract.testing.answers import (  # noqa: F401  (re-exported for the tests)
    CRAFTED_CEMENT_ANSWER,
    CRAFTED_SEED_ANSWER,
    SEED_QUOTE_AGE,
)
from caseextract.testing.answers import crafted_seed_answer as crafted_answer  # noqa: F401


def client_for(base_url: str, **overrides: Any) -> ModelClient:
    settings = dict(
        model="crafted-model",
        base_url=base_url,
        timeout=5.0,
        http_retries=2,
        reasks=1,
        backoff_initial=0.01,
        backoff_max=0.05,
    )
    settings.update(overrides)
    return ModelClient(ModelSettings(**settings))


def crafted_record(answer: dict[str, Any], source: Any, model: str = "crafted-model") -> Any:
    """A result record for ``source`` built from a crafted answer (not a recording):
    validated against CaseReport and grounded as the pipeline does."""
    from caseextract import grounding
    from caseextract.documents import load_document
    from caseextract.records import DocumentInfo, GroundingInfo, ResultRecord
    from caseextract.schema import SCHEMA_VERSION, CaseReport

    doc = load_document(source)
    value = CaseReport.model_validate(answer)
    facts = grounding.ground(value, doc.text)
    stats = grounding.stats(facts)
    return ResultRecord(
        record_version=1,
        document=DocumentInfo(
            id=doc.id, path=str(doc.path), sha256=doc.sha256, chars=len(doc.text)
        ),
        status="ok",
        extraction=value.model_dump(mode="json"),
        grounding=GroundingInfo(
            stats={**stats.__dict__}, rate=stats.rate, facts=[f.to_dict() for f in facts]
        ),
        model=model,
        prompt_set="case_report",
        prompt_version="crafted",
        schema_name="CaseReport",
        schema_version=SCHEMA_VERSION,
    )


def records_json(path):
    """The records of a results file as plain JSON objects (as written on disk)."""
    from caseextract.store import read_records

    return [r.to_json() for r in read_records(path)]


def beside(folder: Any, source: Any) -> Any:
    """A copy of ``source`` in ``folder/cases`` (the review page serves only sources inside
    the results' folder, or inside --sources); returns the copy's path."""
    import shutil
    from pathlib import Path

    target = Path(folder) / "cases" / Path(source).name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(source, target)
    return target
