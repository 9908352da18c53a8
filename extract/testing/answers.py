"""Crafted answers for the seed report, shared by tests and test doubles.

Nothing here is a model's output or a recording: each answer was written by hand
for ``fixtures/cases/seed-vertebroplasty-cement-leakage.txt``, and every quote in it
is copied from that report.
"""

from __future__ import annotations

import copy
import random
from typing import Any

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


def crafted_seed_answer(**patient_changes: Any) -> dict[str, Any]:
    answer = copy.deepcopy(CRAFTED_SEED_ANSWER)
    answer["patients"][0].update(patient_changes)
    return answer


# two crafted extractions of the seed report, as two independent readers might give
SEED_ONLY_A_FINDING: dict[str, Any] = {
    "name": "back pain",
    "evidence": ["had back pain with acute deterioration"],
}
SEED_ONLY_B_FINDING: dict[str, Any] = {
    "name": "complete paralysis of left lower extremity",
    "evidence": ["Complete paralysis of left lower extremity"],
}


def crafted_seed_pair() -> tuple[dict[str, Any], dict[str, Any]]:
    """A and B: they agree on five facts (article, age, sex, one finding, vertebroplasty),
    differ on the laminectomy's urgency (B leaves it out) and each has one finding the
    other lacks (A: back pain; B: the paralysis)."""
    findings = CRAFTED_SEED_ANSWER["patients"][0]["findings"]
    a = crafted_seed_answer(findings=[*copy.deepcopy(findings), SEED_ONLY_A_FINDING])
    b = crafted_seed_answer(findings=[*copy.deepcopy(findings), SEED_ONLY_B_FINDING])
    b["patients"][0]["interventions"][1]["urgency"] = None
    return a, copy.deepcopy(b)


def perturbed_answer(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A crafted variant of a (gold) answer for scoring at scale: findings dropped or
    their assertion flipped, diagnoses renamed, one invented diagnosis per patient,
    patients in reverse order. Deterministic for a seeded ``rng``."""
    data = copy.deepcopy(data)
    for patient in data["patients"]:
        findings = patient["findings"]
        if findings and rng.random() < 0.5:
            findings.pop(rng.randrange(len(findings)))
        if findings and rng.random() < 0.5:
            f = findings[rng.randrange(len(findings))]
            f["assertion"] = "absent" if f["assertion"] == "present" else "present"
        for item in patient["diagnoses"]:
            if rng.random() < 0.3:
                item["name"] = "probable " + item["name"]
        patient["diagnoses"].append(
            {"name": "invented condition", "evidence": ["a sentence that is not in the report"]}
        )
    data["patients"].reverse()
    return data
