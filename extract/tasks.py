"""Tasks: what one extraction is — a prompt set and a response model — and the built-in ones.

``Task`` pairs a prompt set (``caseextract.prompts``) with a pydantic response model;
``default_task`` builds one from names (``--prompt-set``, ``--schema module:Class``).
The pipeline, the evals and the review run any task unchanged.

The flagship task is the case report (``caseextract.schema:CaseReport`` with the
``case_report`` prompts). This module also holds a second, small task: cement leakage
after vertebroplasty or kyphoplasty (``CementLeakage`` below). It shows how a team
brings its own response model and prompt set and reuses ``run``, ``eval`` and ``diff``::

    caseextract run report.txt --schema caseextract.tasks:CementLeakage --prompt-set cement_leakage

It is also small enough for the bundled local model to answer quickly.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum

from caseextract.documents import Document, safe_filename
from caseextract.errors import ConfigError
from caseextract.prompts import PromptSet, load_prompt_set
from caseextract.schema import SCHEMA_VERSION as CASE_REPORT_VERSION
from caseextract.schema import Age, CaseReport, Fact, SpinalLevels, StrictModel
from caseextract.schema_text import describe
from pydantic import BaseModel, Field

SCHEMA_VERSION = "cement-1.0"  # of CementLeakage; a task's version is its module's


@dataclass(frozen=True)
class Task:
    prompt_set: PromptSet
    response_model: type[BaseModel]
    schema_version: str = CASE_REPORT_VERSION
    extra_instructions: str = ""
    schema_in_prompt: bool = False  # for servers that do not show the tool to the model

    def messages(self, doc: Document) -> list[dict[str, str]]:
        extra = self.extra_instructions
        if self.schema_in_prompt:
            extra = "\n\n".join(x for x in (extra, describe(self.response_model)) if x)
        return self.prompt_set.render(
            document=fence_safe(doc.for_model),
            document_name=safe_filename(doc.id),
            schema_name=self.response_model.__name__,
            extra_instructions=extra,
        )


FENCE_MARKERS = ("<<<REPORT", "REPORT>>>")


def fence_safe(text: str) -> str:
    """The document with the prompt's data-fence markers broken, so that a report
    cannot close the fence around itself and speak as the prompt."""
    for marker in FENCE_MARKERS:
        text = text.replace(marker, marker.replace("<<<", "< < <").replace(">>>", "> > >"))
    return text


def load_model(spec: str) -> type[BaseModel]:
    """``package.module:ClassName`` → the pydantic model class."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"schema {spec!r}: expected 'module:ClassName'")
    try:
        model = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"schema {spec!r}: {exc}") from None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise ConfigError(f"schema {spec!r} is not a pydantic model")
    return model


def task_for(
    model: type[BaseModel], prompt_set: str = "case_report", schema_in_prompt: bool = False
) -> Task:
    """The task of a response model class with a prompt set; its version is the
    ``SCHEMA_VERSION`` of the model's module (``custom`` when it has none)."""
    version = getattr(importlib.import_module(model.__module__), "SCHEMA_VERSION", "custom")
    return Task(load_prompt_set(prompt_set), model, version, schema_in_prompt=schema_in_prompt)


def default_task(
    prompt_set: str = "case_report", schema: str | None = None, schema_in_prompt: bool = False
) -> Task:
    """The task named on the command line: ``--prompt-set`` and ``--schema module:Class``."""
    model = load_model(schema) if schema else CaseReport
    return task_for(model, prompt_set, schema_in_prompt)


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


class CementLeakage(StrictModel):
    """Cement leakage after vertebral augmentation, in one case report."""

    age: Age | None = None
    procedures: list[Procedure] = Field(default_factory=list)
    leaks: list[Leak] = Field(default_factory=list)
    consequences: list[Consequence] = Field(default_factory=list)
