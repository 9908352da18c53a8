"""caseextract: evidence-backed structured extraction from clinical case reports.

The public API, for scripts and notebooks (the CLI is built on the same names)::

    import caseextract

    record = caseextract.extract("report.txt", model="gpt-5.4-mini")
    record.extraction["patients"][0]["findings"][0]   # each fact with its quotes
    record.grounding.facts[0]                          # where each quote stands

``extract`` runs one document through the same pipeline as ``caseextract run``. For
many documents, a cache, or your own task, use the pieces it is made of::

    from caseextract import ModelClient, ModelSettings, default_task, load_document

    task = default_task()                       # CaseReport + the case_report prompt set
    doc = load_document(Path("report.txt"))
    client = ModelClient(ModelSettings(model="gpt-5.4-mini"))
    extraction = client.extract(task.messages(doc), task.response_model, source_text=doc.text)

Packages, by stage: ``documents`` (load, normalise), ``prompts`` (prompt sets),
``tasks`` (prompt set + response model), ``llm`` (the model boundary, the only
importer of openai and instructor), ``grounding`` (quotes to spans, the evidence
judge), ``pipeline`` (runner, records, multi-pass), ``store`` (results files),
``exchange`` (requests out, answers in), ``batch`` (the Batch API), ``evals``
(gold, scoring, reports), ``review`` (pages, app, ledger), ``testing`` (crafted
loopback servers for tests of your own tasks), ``cli``.

Names are imported on first use, so ``import caseextract`` is cheap and no module
of the package needs to import this one.
"""

from __future__ import annotations

import importlib
from typing import Any

from caseextract._version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS = {
    "extract": "caseextract.api",
    "ConfigError": "caseextract.errors",
    "ExtractError": "caseextract.errors",
    "InputError": "caseextract.errors",
    "ModelCallError": "caseextract.errors",
    "NonRetryableError": "caseextract.errors",
    "OutputTruncated": "caseextract.errors",
    "ReplayMiss": "caseextract.errors",
    "TransientError": "caseextract.errors",
    "ValidationFailed": "caseextract.errors",
    "Document": "caseextract.documents",
    "discover": "caseextract.documents",
    "load_document": "caseextract.documents",
    "Aligner": "caseextract.grounding.align",
    "GroundedFact": "caseextract.grounding.status",
    "ground": "caseextract.grounding.facts",
    "CallStats": "caseextract.llm.types",
    "Extraction": "caseextract.llm.types",
    "ModelSettings": "caseextract.llm.types",
    "ModelClient": "caseextract.llm.client",
    "RecordingStore": "caseextract.llm.recording",
    "Runner": "caseextract.pipeline.runner",
    "RunSummary": "caseextract.pipeline.runner",
    "Task": "caseextract.tasks",
    "default_task": "caseextract.tasks",
    "load_model": "caseextract.tasks",
    "ResultRecord": "caseextract.records",
    "SCHEMA_VERSION": "caseextract.schema",
    "CaseReport": "caseextract.schema",
    "ResultWriter": "caseextract.store",
    "read_records": "caseextract.store",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'caseextract' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
