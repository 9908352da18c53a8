"""Test doubles for caseextract and for tasks built on it, shipped on purpose.

A team that brings its own response model and prompt set tests it the way this
project tests itself: against a real OpenAI-compatible HTTP server on 127.0.0.1
that answers *crafted* replies (never a model's output, and named so), with no
key and no network. ``FakeOpenAIServer`` serves scripted replies or a function of
the request; ``FaultSchedule`` injects rate limits, 5xx, slow answers, resets,
malformed, invalid or truncated answers and refusals from a seed.
``ConformanceServer`` refuses what the OpenAI API and Azure OpenAI refuse
(parameters per model family on both endpoints, the strict-schema subset and its
limits, retired models, Azure paths), with the
same error bodies, citing the documentation rule by rule. ``FakeBatchServer`` is
a crafted Batch API (files and batches, the documented states, per-line errors,
partial and shuffled output). ``CraftedPasses`` answers each pass of a
multi-pass extraction from one complete crafted answer. ``CRAFTED_SEED_ANSWER`` is a
hand-written answer for the seed report, every quote copied from it.
"""

from caseextract.testing.answers import (
    CRAFTED_CEMENT_ANSWER,
    CRAFTED_SEED_ANSWER,
    SEED_QUOTE_AGE,
    crafted_seed_answer,
)
from caseextract.testing.batch_server import BatchPlan, FakeBatchServer
from caseextract.testing.conformance import MODELS, ConformanceServer, ModelSpec
from caseextract.testing.passes import CraftedPasses
from caseextract.testing.server import (
    FAULT_KINDS,
    FINAL_FAULTS,
    REASK_FAULTS,
    TRANSIENT_FAULTS,
    FakeOpenAIServer,
    FaultSchedule,
    Reply,
    Served,
    crafted_error,
    crafted_fault,
    crafted_function_call,
    crafted_refusal_item,
    crafted_response,
    crafted_text_completion,
    crafted_tool_completion,
    first_user_message_key,
)
from caseextract.testing.strict_rules import check_strict_schema

__all__ = [
    "CRAFTED_CEMENT_ANSWER",
    "CRAFTED_SEED_ANSWER",
    "SEED_QUOTE_AGE",
    "crafted_seed_answer",
    "MODELS",
    "ConformanceServer",
    "ModelSpec",
    "check_strict_schema",
    "BatchPlan",
    "FakeBatchServer",
    "CraftedPasses",
    "FAULT_KINDS",
    "FINAL_FAULTS",
    "REASK_FAULTS",
    "TRANSIENT_FAULTS",
    "FakeOpenAIServer",
    "FaultSchedule",
    "Reply",
    "Served",
    "crafted_error",
    "crafted_fault",
    "crafted_function_call",
    "crafted_refusal_item",
    "crafted_response",
    "crafted_text_completion",
    "crafted_tool_completion",
    "first_user_message_key",
]
