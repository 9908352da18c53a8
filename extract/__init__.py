"""caseextract: evidence-backed structured extraction from clinical case reports.

The public API, for scripts and notebooks (the CLI is built on the same names)::

    from caseextract import ModelClient, ModelSettings, default_task, load_document

    task = default_task()                       # CaseReport + the case_report prompt set
    doc = load_document(Path("report.txt"))
    client = ModelClient(ModelSettings(model="gpt-4o-mini"))
    extraction = client.extract(task.messages(doc), task.response_model, source_text=doc.text)

Sub-packages: ``caseextract.llm`` (the model boundary), ``caseextract.evals``
(gold, scoring, reports), ``caseextract.prompts`` (prompt sets),
``caseextract.review`` (pages and ledger), ``caseextract.testing`` (crafted
loopback servers for tests of your own tasks), ``caseextract.cli``.
"""

__version__ = "0.1.0"

# isort: skip_file
# __version__ is set before the imports below: several modules read it.
from .errors import (  # noqa: E402
    ConfigError,
    ExtractError,
    InputError,
    ModelCallError,
    NonRetryableError,
    OutputTruncated,
    ReplayMiss,
    TransientError,
    ValidationFailed,
)
from .documents import Document, discover, load_document  # noqa: E402
from .grounding import Aligner, GroundedFact, ground  # noqa: E402
from .llm import CallStats, Extraction, ModelClient, ModelSettings  # noqa: E402
from .llm.recording import RecordingStore  # noqa: E402
from .pipeline import Runner, RunSummary, Task, default_task, load_model  # noqa: E402
from .records import ResultRecord  # noqa: E402
from .schema import SCHEMA_VERSION, CaseReport  # noqa: E402
from .store import ResultWriter, read_records  # noqa: E402

__all__ = [
    "SCHEMA_VERSION",
    "Aligner",
    "CallStats",
    "CaseReport",
    "ConfigError",
    "Document",
    "ExtractError",
    "Extraction",
    "GroundedFact",
    "InputError",
    "ModelCallError",
    "ModelClient",
    "ModelSettings",
    "NonRetryableError",
    "OutputTruncated",
    "RecordingStore",
    "ReplayMiss",
    "ResultRecord",
    "ResultWriter",
    "RunSummary",
    "Runner",
    "Task",
    "TransientError",
    "ValidationFailed",
    "__version__",
    "default_task",
    "discover",
    "ground",
    "load_document",
    "load_model",
    "read_records",
]
