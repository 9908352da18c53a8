"""The model boundary: the only package that imports openai and instructor.

``client`` makes structured calls (``ModelSettings``, ``ModelClient``: HTTP
retries, re-asks, usage counted once), ``call`` holds one call's state and the
grounding check run inside it (how retries, re-asks and grounding interleave),
``failures`` turns any failure into a typed error (retryable or not),
``completion`` checks and repairs each completion, ``transport`` assembles the
HTTP stack under the openai client, ``guard`` bounds each request (deadline, size,
no redirects), ``params`` chooses the request parameters per model family and
endpoint, ``strict`` turns a schema into OpenAI's strict subset (and the answer
back), ``ratelimit`` keeps requests and tokens per minute within a budget,
``recording`` records and replays exchanges at the HTTP layer, ``capture``
captures the request a call would send without sending it, ``batchapi`` talks
to the provider's files and batches endpoints, ``local`` runs the key-less
llama.cpp server.
"""

from caseextract.llm.call import grounded_model, wire_model
from caseextract.llm.client import INSTRUCTOR_MODES, ModelClient
from caseextract.llm.completion import escape_control_characters
from caseextract.llm.failures import classify, is_transient, retry_after
from caseextract.llm.recording import RECORD_MODES
from caseextract.llm.types import STRICT_MODES, CallStats, Extraction, ModelSettings

__all__ = [
    "INSTRUCTOR_MODES",
    "RECORD_MODES",
    "STRICT_MODES",
    "CallStats",
    "Extraction",
    "ModelClient",
    "ModelSettings",
    "classify",
    "escape_control_characters",
    "grounded_model",
    "is_transient",
    "retry_after",
    "wire_model",
]
