"""Crafted answers and small helpers shared by tests (nothing here is a recording)."""

from __future__ import annotations

import copy
from typing import Any

from caseextract.llm import ModelClient, ModelSettings

SEED_QUOTE_AGE = "An 87-year-old female patient"

CRAFTED_SEED_ANSWER: dict[str, Any] = {
    "article": {
        "title": "Intradural cement leakage after vertebroplasty",
        "evidence": ["Intradural cement leakage after vertebroplasty"],
    },
    "patients": [
        {
            "label": "Patient",
            "age": {"raw": "87-year-old", "evidence": [SEED_QUOTE_AGE]},
            "sex": {"value": "female", "evidence": [SEED_QUOTE_AGE]},
            "findings": [
                {
                    "name": "neurologic deficit",
                    "assertion": "absent",
                    "evidence": ["The patient could walk with no neurologic deficit."],
                }
            ],
            "interventions": [
                {
                    "name": "vertebroplasty",
                    "kind": "procedure",
                    "levels": ["L1"],
                    "anaesthesia": "intravenous sedation",
                    "evidence": ["Vertebroplasty for L1 was performed under intravenous sedation"],
                },
                {
                    "name": "laminectomy",
                    "kind": "surgery",
                    "levels": ["T12 to L2"],
                    "urgency": "emergent",
                    "evidence": ["emergent laminectomy from T12 to L2"],
                },
            ],
            "follow_up": {"raw": "2 years"},
        }
    ],
}


# crafted answer for the cement-leakage task (extract/tasks.py) on the seed report
CRAFTED_CEMENT_ANSWER: dict[str, Any] = {
    "age": {"raw": "87-year-old", "evidence": [SEED_QUOTE_AGE]},
    "procedures": [
        {
            "name": "vertebroplasty",
            "levels": ["L1"],
            "evidence": ["Vertebroplasty for L1 was performed under intravenous sedation"],
        }
    ],
    "leaks": [
        {
            "site": "epidural",
            "levels": ["T12 to L2"],
            "symptomatic": True,
            "evidence": ["cement leaked into the epidural and intrathecal spaces from T12 to L2"],
        }
    ],
    "consequences": [
        {"name": "paralysis", "evidence": ["Complete paralysis of left lower extremity"]}
    ],
}


def crafted_answer(**patient_changes: Any) -> dict[str, Any]:
    answer = copy.deepcopy(CRAFTED_SEED_ANSWER)
    answer["patients"][0].update(patient_changes)
    return answer


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
