"""Response models for a clinical case report, following the CARE checklist.

Field descriptions are written for the model: they travel in the tool / JSON
schema and are part of the prompt. Conventions the rest of the package relies on:

* every fact is a small object with ``evidence``: verbatim quotes from the report;
* "not reported" is ``null`` or an empty list, never a guess;
* a negated finding ("no neurologic deficit") is a finding with
  ``assertion="absent"``, not a missing one;
* normalised values sit beside the raw text they came from, filled by validators;
* class attributes (never sent to the model) tell grounding how to judge a
  class: ``__main_value__`` (the field(s) its quotes must state),
  ``__assertion__``, ``__grounded_values__`` (values looked up in the report
  itself) and ``__nonempty__`` (what a record needs not to be empty); see
  ``caseextract.grounding.evidence`` and ``caseextract.grounding.values``.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Annotated, Any, ClassVar

from caseextract.normalize import (
    expand_spinal_levels,
    normalise_figure_label,
    parse_age,
    parse_duration,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

SCHEMA_VERSION = "1.1"  # 1.1: compact tool schema (no property titles, no null defaults)

Quote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Evidence = Annotated[
    list[Quote],
    Field(
        min_length=1,
        description="Short verbatim quote(s) from the report stating this item.",
    ),
]
OptionalEvidence = Annotated[
    list[Quote],
    Field(default_factory=list, description="Verbatim quote(s) from the report."),
]


def _expand_levels(levels: list[str]) -> list[str]:
    out: list[str] = []
    for raw in levels:
        expanded = expand_spinal_levels(raw)
        out.extend(expanded or [raw.strip()])
    seen: set[str] = set()
    return [x for x in out if not (x in seen or seen.add(x))]


# Spinal levels as written ("T12 to L2"), expanded to single levels (T12, L1, L2).
SpinalLevels = Annotated[list[str], AfterValidator(_expand_levels)]


def _compact_schema(schema: dict[str, Any]) -> None:
    """Drop what costs tokens in every request and tells the model nothing.

    Property titles repeat the field names, and ``"default": null`` repeats what
    ``required`` already says (bench/tokens.py measures both).
    """
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
        if prop.get("default", ...) is None:
            del prop["default"]


class StrictModel(BaseModel):
    model_config = ConfigDict(
        extra="ignore", use_enum_values=True, json_schema_extra=_compact_schema
    )


class Fact(StrictModel):
    """Base of every extracted fact: it carries its own evidence."""

    evidence: Evidence


class Assertion(str, Enum):
    present = "present"
    absent = "absent"
    possible = "possible"


class Sex(str, Enum):
    female = "female"
    male = "male"
    other = "other"


class DiagnosisStatus(str, Enum):
    confirmed = "confirmed"
    suspected = "suspected"
    differential = "differential"
    ruled_out = "ruled_out"


class InvestigationKind(str, Enum):
    imaging = "imaging"
    laboratory = "laboratory"
    pathology = "pathology"
    physiological = "physiological"
    microbiology = "microbiology"
    genetic = "genetic"
    other = "other"


class InterventionKind(str, Enum):
    procedure = "procedure"
    surgery = "surgery"
    medication = "medication"
    rehabilitation = "rehabilitation"
    supportive = "supportive"
    other = "other"


class Urgency(str, Enum):
    elective = "elective"
    urgent = "urgent"
    emergent = "emergent"


class Severity(str, Enum):
    mild = "mild"
    moderate = "moderate"
    severe = "severe"
    life_threatening = "life_threatening"
    fatal = "fatal"


class OutcomeStatus(str, Enum):
    recovered = "recovered"
    improved = "improved"
    unchanged = "unchanged"
    worsened = "worsened"
    died = "died"
    unknown = "unknown"


class HistoryKind(str, Enum):
    condition = "condition"
    surgery = "surgery"
    medication = "medication"
    allergy = "allergy"
    family = "family"
    social = "social"
    other = "other"


MAX_AGE_YEARS = 150  # the oldest verified human lived 122 years


class Age(Fact):
    raw: str = Field(description="The age exactly as written, e.g. '87-year-old', 'early 70s'.")
    value: float | None = Field(None, description="Number as written, e.g. 87 or 3.")
    unit: str | None = Field(None, description="years, months, weeks or days.")
    # filled by the validator from ``raw``; not shown to the model
    years: SkipJsonSchema[float | None] = None
    years_low: SkipJsonSchema[float | None] = None
    years_high: SkipJsonSchema[float | None] = None

    @model_validator(mode="after")
    def _normalise(self) -> Age:
        parsed = parse_age(self.raw)
        if parsed is not None:
            self.value, self.unit, self.years = parsed.value, parsed.unit, parsed.years
            self.years_low, self.years_high = parsed.years_low, parsed.years_high
        elif self.value is not None and self.unit:
            unit = self.unit.lower().rstrip("s") + "s"
            factor = {"years": 1.0, "months": 1 / 12, "weeks": 7 / 365.25, "days": 1 / 365.25}
            if unit in factor:
                self.unit, self.years = unit, round(self.value * factor[unit], 4)
        if self.plausibility_problems():  # not an age: kept as written, never counted
            self.years = self.years_low = self.years_high = None
        return self

    def plausibility_problems(self) -> list[str]:
        """What makes this value no age at all (grounding flags it beside the fact)."""
        years = [y for y in (self.years, self.years_low, self.years_high) if y is not None]
        if self.years is None and self.value is not None and (self.unit or "years") == "years":
            years.append(self.value)
        if any(not math.isfinite(y) or not 0 <= y <= MAX_AGE_YEARS for y in years):
            shown = f"{self.value:g}" if self.value is not None else repr(self.raw)
            return [f"age={shown} {self.unit or ''}: over {MAX_AGE_YEARS} years is not an age"]
        return []


class SexStatement(Fact):
    value: Sex = Field(description="female, male or other, as stated or implied by pronouns.")


class Span(StrictModel):
    """A length of time as written, with its ISO-8601 duration."""

    raw: str = Field(description="As written, e.g. '2 years', '4 days later'.")
    iso: SkipJsonSchema[str | None] = None  # filled by the validator from ``raw``

    @model_validator(mode="after")
    def _normalise(self) -> Span:
        self.iso = parse_duration(self.raw) or self.iso
        return self


class Finding(Fact):
    name: str = Field(description="Sign, symptom or examination finding, e.g. 'back pain'.")
    assertion: Assertion = Field(
        Assertion.present,
        description="present; absent when the report negates it ('no neurologic deficit'); "
        "possible when hedged.",
    )
    body_site: str | None = Field(None, description="Anatomical site, if stated.")
    detail: str | None = Field(None, description="Severity, side, character, if stated.")


class Complaint(Fact):
    name: str = Field(description="Presenting complaint, e.g. 'back pain'.")
    duration: Span | None = Field(None, description="How long, if stated.")


class HistoryItem(Fact):
    kind: HistoryKind = Field(description="What sort of history item this is.")
    description: str = Field(description="E.g. 'hypertension', 'smoker', 'prior L3 fracture'.")
    assertion: Assertion = Field(Assertion.present, description="absent for denied history.")


class Investigation(Fact):
    __main_value__: ClassVar[tuple[str, ...]] = ("name", "result")  # quotes state one of them

    kind: InvestigationKind
    name: str = Field(description="Test or imaging, e.g. 'MRI lumbar spine', 'serum sodium'.")
    result: str | None = Field(None, description="What it showed, in the report's words.")
    levels: SpinalLevels = Field(
        default_factory=list, description="Spinal levels named, e.g. ['L1'] or ['T12 to L2']."
    )
    figure: str | None = Field(None, description="Figure reference, e.g. 'Fig. 1'.")

    @model_validator(mode="after")
    def _normalise(self) -> Investigation:
        if self.figure:
            self.figure = normalise_figure_label(self.figure)
        return self


class Diagnosis(Fact):
    # assertion check (grounding.assertion): confirmed reads as present, ruled_out as absent
    __assertion__: ClassVar[tuple[str, dict[str, str]]] = (
        "status",
        {"confirmed": "present", "ruled_out": "absent"},
    )

    name: str
    status: DiagnosisStatus = Field(
        DiagnosisStatus.confirmed,
        description="confirmed, suspected, differential (considered) or ruled_out.",
    )


class Intervention(Fact):
    name: str = Field(description="Procedure, operation or drug, e.g. 'vertebroplasty'.")
    kind: InterventionKind
    levels: SpinalLevels = Field(default_factory=list, description="Spinal levels treated.")
    site: str | None = Field(None, description="Anatomical site, if not a spinal level.")
    dose: str | None = None
    route: str | None = None
    frequency: str | None = None
    duration: Span | None = None
    urgency: Urgency | None = Field(None, description="emergent/urgent only when stated.")
    anaesthesia: str | None = Field(None, description="E.g. 'intravenous sedation'.")
    indication: str | None = Field(None, description="Why it was given, if stated.")
    timing: Span | None = Field(None, description="When, relative to presentation.")


class AdverseEvent(Fact):
    name: str = Field(description="The harmful event, e.g. 'cement leakage into spinal canal'.")
    attributed_to: str | None = Field(None, description="Intervention or drug blamed, if any.")
    severity: Severity | None = None
    management: str | None = Field(None, description="What was done about it.")


class Outcome(Fact):
    description: str = Field(description="Patient's state, e.g. 'could not walk on her own'.")
    status: OutcomeStatus = OutcomeStatus.unknown
    time: Span | None = Field(None, description="When assessed, e.g. '2 years after leakage'.")


class TimelineEvent(Fact):
    __main_value__: ClassVar[tuple[str, ...]] = ("event", "when")  # quotes state one of them

    when: str = Field(description="Time as written, e.g. '4 days later', 'on day 3'.")
    event: str


class Patient(StrictModel):
    label: str = Field(
        description="How the report names this patient, e.g. 'Case 1'; 'Patient' if only one."
    )
    age: Age | None = None
    sex: SexStatement | None = None
    presenting_complaints: list[Complaint] = Field(default_factory=list)
    history: list[HistoryItem] = Field(default_factory=list)
    findings: list[Finding] = Field(
        default_factory=list,
        description="Signs, symptoms and examination findings, including absent ones.",
    )
    investigations: list[Investigation] = Field(default_factory=list)
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    adverse_events: list[AdverseEvent] = Field(
        default_factory=list, description="Complications of care or drugs."
    )
    outcomes: list[Outcome] = Field(default_factory=list)
    follow_up: Span | None = Field(None, description="Length of follow-up, if stated.")
    timeline: list[TimelineEvent] = Field(default_factory=list)


class Author(StrictModel):
    __grounded_values__: ClassVar[tuple[str, ...]] = ("name",)  # looked up in the source

    name: str
    degrees: list[str] = Field(default_factory=list, description="E.g. ['MD', 'PhD'].")
    affiliations: list[str] = Field(default_factory=list)


class Figure(Fact):
    label: str = Field(description="E.g. 'Fig. 1'.")
    modality: str | None = Field(None, description="E.g. 'MRI', 'CT', 'radiograph', 'photo'.")
    plane: str | None = Field(None, description="E.g. 'sagittal', 'axial'.")
    sequence: str | None = Field(None, description="E.g. 'T2-weighted'.")
    shows: str = Field(description="What the figure shows, from its caption.")

    @model_validator(mode="after")
    def _normalise(self) -> Figure:
        self.label = normalise_figure_label(self.label)
        return self


class Article(StrictModel):
    # values looked up in the source itself (caseextract.grounding.values)
    __grounded_values__: ClassVar[tuple[str, ...]] = ("title", "journal", "year", "doi", "pmid")
    # the article's quotes cite it (title line, citation, declarations); the title itself
    # is looked up in the source, so no main value is asked of the quotes
    __main_value__: ClassVar[str | None] = None

    title: str | None = None
    authors: list[Author] = Field(default_factory=list)
    journal: str | None = None
    year: int | None = None
    doi: str | None = None
    pmid: str | None = None
    language: str | None = Field(None, description="Language of the original article, if stated.")
    disclosures: list[str] = Field(
        default_factory=list, description="Conflict-of-interest and device/drug status statements."
    )
    funding: list[str] = Field(default_factory=list)
    consent: str | None = Field(None, description="Patient consent statement, if any.")
    retracted: bool | None = Field(None, description="true only if marked as retracted.")
    evidence: OptionalEvidence


class CaseReport(StrictModel):
    """One published clinical case report: article metadata, patients and figures."""

    __nonempty__: ClassVar[tuple[str, ...]] = ("patients",)  # no patient: the record is empty
    article: Article
    patients: list[Patient] = Field(description="One entry per patient described.")
    figures: list[Figure] = Field(default_factory=list)
