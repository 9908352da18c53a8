"""The model boundary: the only package that imports openai and instructor.

``client`` makes structured calls (HTTP retries, re-asks, usage counted once),
``params`` chooses the request parameters per model family and endpoint,
``strict`` turns a schema into OpenAI's strict subset (and the answer back),
``ratelimit`` keeps requests and tokens per minute within a budget,
``recording`` records and replays exchanges at the HTTP layer, ``capture``
captures the request a call would send without sending it, ``batchapi`` talks
to the provider's files and batches endpoints, ``local`` runs the key-less
llama.cpp server.
"""

from .client import (
    MODES,
    STRICT_MODES,
    CallStats,
    Extraction,
    ModelClient,
    ModelSettings,
    classify,
    escape_control_characters,
    grounded_model,
    is_transient,
    retry_after,
    wire_model,
)

__all__ = [
    "MODES",
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
