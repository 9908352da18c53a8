"""The model boundary: the only package that imports openai and instructor.

``client`` makes structured calls (HTTP retries, re-asks, usage counted once),
``ratelimit`` keeps requests and tokens per minute within a budget, ``recording``
records and replays exchanges at the HTTP layer, ``batchapi`` talks to the
provider's files and batches endpoints, ``local`` runs the key-less llama.cpp
server.
"""

from .client import (
    MODES,
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
