"""The eval report as a type: built once by the runner, read by every renderer and by
``--baseline`` through it.

``report.json`` keeps the keys it always had (``info.mode`` is the eval's record
mode, ``schema`` the response model's name), in the same order, plus
``report_version``. A report written before versions existed loads as version 0;
keys a reader does not know are kept (``extra="allow"``) and written back as they
were. Numbers keep their JSON type (an ``int`` stays an ``int``).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from caseextract.evals.scoring import RATE_NAMES, Counts
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

REPORT_VERSION = 1

Number = int | float  # smart union: 1 stays 1 and 1.0 stays 1.0 in report.json


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# One scope's counts and rates (``scoring.Counts.summary``): the count fields are
# ``Counts``'s own, so the two cannot drift apart.
Scores = create_model(
    "Scores",
    __base__=_Part,
    **{f.name: (int, 0) for f in fields(Counts)},
    **{name: (Number | None, None) for name in RATE_NAMES},
)


class Macro(_Part):
    f1_over_families: Number | None = None
    f1_over_cases: Number | None = None


class ReportInfo(_Part):
    """How the report was made; which keys are present depends on how."""

    record_mode: str | None = Field(default=None, alias="mode")  # replay, record, off
    gold: str | None = None
    task: dict[str, Any] | None = None
    results: str | None = None  # scored from an existing results file
    recorded: dict[str, Any] | None = None  # the replayed recordings' manifest
    model: str | None = None
    settings: dict[str, Any] | None = None
    passes: str | None = None


class CaseScores(_Part):
    case_id: str
    status: str  # ok / empty / failed / not_run / other_task
    error: str | None = None
    grounding_rate: Number | None = None
    grounding: dict[str, Any] = Field(default_factory=dict)
    usage: dict[str, Any] = Field(default_factory=dict)
    totals: Scores = Field(default_factory=Scores)
    families: dict[str, Scores] = Field(default_factory=dict)
    entries: list[dict[str, Any]] = Field(default_factory=list)


class BaselineRow(_Part):
    scope: str
    metric: str
    baseline: Number | None = None
    now: Number | None = None
    delta: Number | None = None


class EvalReport(_Part):
    report_version: int = 0  # 0: written before reports carried a version
    info: ReportInfo = Field(default_factory=ReportInfo)
    prompt_version: str | None = None
    schema_name: str | None = Field(default=None, alias="schema")
    schema_version: str | int | None = None
    cases: int = 0
    extracted: int = 0
    empty: int = 0
    micro: Scores = Field(default_factory=Scores)
    macro: Macro = Field(default_factory=Macro)
    grounding_rate: Number | None = None
    grounding: dict[str, Any] = Field(default_factory=dict)
    # conditions and findings of the corpus's own annotations covered by quotes (evals.entities)
    entity_recall: dict[str, Any] | None = None
    families: dict[str, Scores] = Field(default_factory=dict)
    per_case: list[CaseScores] = Field(default_factory=list)
    baseline: list[BaselineRow] | None = None  # rows against --baseline, when given

    def to_json(self) -> dict[str, Any]:
        """The report as ``report.json`` holds it (keys as they always were)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def load_report(path: Path) -> EvalReport:
    """A ``report.json`` of any version; ``ValueError`` naming the file when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EvalReport.model_validate(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise ValueError(f"{path} is not a readable eval report ({reason})") from None
