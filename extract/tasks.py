"""A second, small task: cement leakage after vertebroplasty or kyphoplasty.

It shows how a team brings its own response model and prompt set and reuses
``run``, ``eval`` and ``diff`` unchanged::

    caseextract run report.txt --schema caseextract.tasks:CementLeakage --prompt-set cement_leakage

It is also small enough for the bundled 270M local model to answer quickly.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .schema import Age, Fact, SpinalLevels, _Model

SCHEMA_VERSION = "cement-1.0"


class LeakSite(str, Enum):
    epidural = "epidural"
    intrathecal = "intrathecal"
    foraminal = "foraminal"
    paravertebral = "paravertebral"
    intradiscal = "intradiscal"
    venous = "venous"
    pulmonary = "pulmonary"
    other = "other"


class Leak(Fact):
    site: LeakSite = Field(description="Where the cement went.")
    levels: SpinalLevels = Field(default_factory=list, description="Spinal levels, as written.")
    symptomatic: bool | None = Field(None, description="true if it caused symptoms.")


class Procedure(Fact):
    name: str = Field(description="vertebroplasty or kyphoplasty.")
    levels: SpinalLevels = Field(default_factory=list, description="Levels treated, as written.")


class Consequence(Fact):
    name: str = Field(description="Symptom or sign caused by the leak, e.g. 'paralysis'.")


class CementLeakage(_Model):
    """Cement leakage after vertebral augmentation, in one case report."""

    age: Age | None = None
    procedures: list[Procedure] = Field(default_factory=list)
    leaks: list[Leak] = Field(default_factory=list)
    consequences: list[Consequence] = Field(default_factory=list)
