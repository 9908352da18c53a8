"""One model call's own state, and the grounding check instructor runs inside it.

Retries, re-asks and grounding, as they interleave in one ``ModelClient.aextract``:

1. ``aextract`` creates a ``Call`` (the aligner for the document, a fresh
   ``CallStats``, the number of attempts allowed = re-asks + 1) and makes it the
   active call (``ACTIVE``, a ``ContextVar``) for the duration of the call.
2. instructor calls ``ModelClient._raw_acreate`` once per attempt (the first ask
   and each re-ask). That function reads the active call once and passes it on
   explicitly: the HTTP retry loop (tenacity) counts each request
   (``Call.note_request``) and each retry (``Call.note_retry``) on it, and the
   completion that finally arrives is counted once (``Call.received``: attempts,
   tokens, model, finish reason) — instructor's own running usage total is not
   used. HTTP retries never spend re-asks, and re-asks never spend HTTP retries.
3. For a tool-call answer the document is grounded in a worker thread
   (``preground``), off the event loop, before instructor validates the answer.
4. instructor validates the answer against ``grounded_model(model)``, whose
   validator reads the active call (the second and last reader of ``ACTIVE``):
   facts that need a re-ask (quote not in the document, quote that does not
   state the value …) raise ``ValueError``, and instructor re-asks with the
   message fed back (back to step 2). On the last allowed attempt
   (``stats.attempts >= max_attempts``) the check is skipped: such facts are kept
   and flagged in the record rather than failing the document. Facts grounded by
   the validator are kept on the call (``Call.facts``), so a valid answer is not
   grounded twice.
5. ``aextract`` builds the ``Extraction`` from the call (the caller's own model,
   the call's stats with its latency, the facts), or classifies the failure with
   the call's stats as context; then the active call is reset.

Why a ``ContextVar`` and not instructor's ``context=``: instructor renders every
message as a Jinja template when a validation context is given, so document text
holding ``{{`` would be silently erased and ``{%`` would raise. The aligner
therefore cannot travel that way. Each task has its own context, so concurrent
calls (``asyncio.gather``) never see each other's call.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import instructor
from caseextract import grounding
from caseextract.llm.completion import usage_details
from caseextract.llm.types import CallStats
from pydantic import BaseModel, create_model, model_validator


@dataclass
class Call:
    """The state of one model call, owned by it: its statistics, its aligner, its facts."""

    aligner: grounding.Aligner | None
    max_attempts: int
    stats: CallStats = field(default_factory=CallStats)
    facts: list[grounding.GroundedFact] | None = None  # from the validator, when it ran
    model: type[BaseModel] | None = None  # the caller's response model
    # (answer as dumped, its facts): grounded in a worker thread before instructor
    # validates the same answer on the event loop
    pre: tuple[dict[str, Any], list[grounding.GroundedFact]] | None = None

    def note_request(self) -> None:
        self.stats.http_requests += 1

    def note_retry(self) -> None:
        self.stats.http_retries += 1

    def received(self, response: Any) -> tuple[Any, Any]:
        """Count one completion (once, whatever instructor totals); its (choice, usage)."""
        stats = self.stats
        choice = response.choices[0] if getattr(response, "choices", None) else None
        usage = getattr(response, "usage", None)
        cached, reasoning = usage_details(usage)
        stats.attempts += 1
        if usage is not None:
            stats.prompt_tokens += usage.prompt_tokens or 0
            stats.completion_tokens += usage.completion_tokens or 0
            stats.cached_tokens += cached
            stats.reasoning_tokens += reasoning
        stats.model = getattr(response, "model", None) or stats.model
        stats.finish_reason = getattr(choice, "finish_reason", None)
        return choice, usage

    def pregrounded(self, value: BaseModel) -> list[grounding.GroundedFact] | None:
        if self.pre is not None and self.pre[0] == value.model_dump():
            return self.pre[1]
        return None


ACTIVE: ContextVar[Call | None] = ContextVar("caseextract_call", default=None)


def preground(call: Call, response: Any) -> None:
    """Parse and ground a tool-call answer (run in a worker thread, off the event loop).

    Anything that does not parse is left for instructor to judge and re-ask."""
    if call.aligner is None or call.model is None:
        return
    try:
        if hasattr(response, "output"):  # a Responses API answer
            (item,) = [i for i in response.output if getattr(i, "type", "") == "function_call"]
            arguments = item.arguments
        else:
            (tool_call,) = response.choices[0].message.tool_calls or []
            arguments = tool_call.function.arguments
        value = call.model.model_validate_json(arguments)
    except (ValueError, TypeError, AttributeError, IndexError):
        return
    call.pre = (value.model_dump(), grounding.ground(value, call.aligner.text, call.aligner))


def wire_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` wrapped the way instructor wraps it on every call, but once.

    Given a plain pydantic model, instructor builds a new ``OpenAISchema``
    subclass per call, which defeats its own schema cache: the full JSON schema
    was regenerated for every document (over 40% of the pipeline's time per
    document, bench/overhead.py). A model that already is an ``OpenAISchema`` is
    used as it is; the request sent is byte-identical.
    """
    return model if issubclass(model, instructor.OpenAISchema) else instructor.openai_schema(model)


@cache
def grounded_model(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` (wired once) plus a validator that rejects answers not evidenced
    by the document.

    It re-asks when a fact needs it (``GroundedFact.needs_reask``: a quote not in
    the document or carrying no content, quotes that do not state the fact's main
    value, an article value not in the document), naming each problem. The check
    runs only inside a model call (it reads the active call, see the module
    docstring) and is skipped on the last allowed attempt, where such facts are
    kept and flagged instead of failing the document. The facts it grounded are
    kept on the call, so a valid answer is not grounded twice.
    """

    def _check(self: BaseModel) -> BaseModel:
        call = ACTIVE.get()
        if call is None or call.aligner is None or call.stats.attempts >= call.max_attempts:
            return self
        facts = call.pregrounded(self)
        if facts is None:
            facts = grounding.ground(self, call.aligner.text, call.aligner)
        if any(f.needs_reask for f in facts):
            raise ValueError(grounding.ungrounded_message(facts, extraction=self))
        call.facts = facts
        return self

    return create_model(
        model.__name__,
        __base__=wire_model(model),
        __doc__=model.__doc__,
        __validators__={"_grounded": model_validator(mode="after")(_check)},
    )
