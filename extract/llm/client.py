"""Structured model calls: ``ModelSettings`` and ``ModelClient``, the call path.

Retries live in three layers that never multiply by accident:

1. **HTTP** — tenacity around each chat-completion request (the openai client's
   own retries are off): 408/409/429/5xx, timeouts and connection errors, with
   exponential backoff that honours ``Retry-After``. At most ``http_retries`` + 1
   requests per model call; 429s spend ``rate_limit_wait`` seconds instead.
2. **Output** — instructor re-asks on validation errors (bad JSON, schema
   violation, ungrounded quote) with the error fed back, ``reasks`` times at most.
   Worst case a document costs (reasks + 1) × (http_retries + 1) requests.
3. **Never** — 401/403, 400, 404, context length, ``insufficient_quota``, output
   cut at the completion budget, refusals: raised at once as typed errors. A 400
   for a parameter or schema the model refuses says which setting to change.

Which failure is which lives in ``failures``; the HTTP stack under the openai
client (recording store → rate limiter → guarded HTTP) in ``transport``; checks
on each completion in ``completion``; the call's own state, and how re-asks and
grounding interleave, in ``call``. Request parameters (budget name, temperature,
reasoning effort) come from ``params``; strict instructor modes rewrite the
request through ``strict``.

The call path is async (``aextract``); ``extract`` is a thin blocking wrapper
that runs ``aextract`` on the client's own event loop in a background thread, so
both send the same requests and return the same results.

Token usage is counted here, once per completion received (instructor's own
running total is not used), with cached prompt tokens and reasoning tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import instructor
import openai
from caseextract import grounding
from caseextract.errors import (
    ExtractError,
    ModelCallError,
    ModelRefused,
    OutputTruncated,
)
from caseextract.llm import responses
from caseextract.llm.call import ACTIVE, Call, grounded_model, preground, wire_model
from caseextract.llm.completion import (
    check_tool_calls,
    completion_text,
    repair_control_characters,
    usage_details,
)
from caseextract.llm.failures import (
    MalformedBody,
    RequestDeadline,
    classify,
    is_rate_limited,
    is_transient,
    retry_after,
    retry_after_wait,
    short,
    truncated_message,
)
from caseextract.llm.recording import RecordingStore
from caseextract.llm.strict import apply_strict
from caseextract.llm.transport import openai_client
from caseextract.llm.types import STRICT_MODES, CallStats, Extraction, ModelSettings
from caseextract.redaction import redact, register_url
from caseextract.redaction import register as register_secret
from instructor.core.exceptions import InstructorRetryException
from pydantic import BaseModel
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger("caseextract.llm")

INSTRUCTOR_MODES = {
    "tools": instructor.Mode.TOOLS,
    # instructor 1.17 folds TOOLS_STRICT into TOOLS (deprecated) and sends no strict
    # flag either way; strict.apply_strict makes the request strict
    "tools_strict": instructor.Mode.TOOLS,
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "json": instructor.Mode.JSON,
    "md_json": instructor.Mode.MD_JSON,
}
T = TypeVar("T")
Restore = Callable[[Any], bool]


class _Portal:
    """An event loop in a daemon thread, started on first use: the blocking API's loop.

    One loop for the client's life, so the async HTTP client's pooled connections
    always belong to the loop that runs them (``asyncio.run`` per call would not)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="caseextract-client", daemon=True
                )
                self._thread.start()
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:  # Ctrl-C in the caller's thread: the call stops too
            future.cancel()
            raise

    @property
    def started(self) -> bool:
        return self._loop is not None

    def stop(self) -> None:
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class ModelClient:
    """Structured extraction through instructor on the openai client.

    With a ``store`` every HTTP exchange goes through the recording store
    (replay, record or cache); see ``recording`` and ``transport``.
    """

    def __init__(self, settings: ModelSettings, store: RecordingStore | None = None) -> None:
        self.settings = settings
        register_secret(settings.api_key)  # redacted from logs, errors and recordings
        register_url(settings.base_url)  # user:password@ and ?api-key= in the URL
        self.store = store
        self._async, self.limiter = openai_client(settings, store)
        self._params = settings.params
        instructor_mode = INSTRUCTOR_MODES[settings.instructor_mode]
        if settings.api == "responses":  # a strict function tool on /v1/responses
            instructor_mode = instructor.Mode.RESPONSES_TOOLS
        self._acreate = instructor.patch(create=self._raw_acreate, mode=instructor_mode)
        self._portal = _Portal()

    # -- HTTP layer ------------------------------------------------------------

    def _retrying(self, call: Call) -> AsyncRetrying:
        s = self.settings
        backoff = wait_exponential_jitter(
            multiplier=s.backoff_initial, max=s.backoff_max, jitter=s.backoff_initial
        )

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            after = retry_after(exc) if exc else None
            return backoff(state) if after is None else retry_after_wait(after)

        def before_sleep(state: RetryCallState) -> None:
            call.note_retry()
            exc = state.outcome.exception() if state.outcome else None
            log.info("retrying after %s (request %d)", type(exc).__name__, state.attempt_number)

        faults = stop_after_attempt(s.http_retries + 1)
        others = [0]  # failed requests other than 429s, this attempt

        def stop(state: RetryCallState) -> bool:
            # 429s spend a time budget, other faults the retry count: one never uses the other's
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None and is_rate_limited(exc):
                return (state.seconds_since_start or 0.0) >= s.rate_limit_wait
            others[0] += 1
            return others[0] >= faults.max_attempt_number

        return AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(is_transient),
            before_sleep=before_sleep,
            reraise=True,
        )

    def _request_kwargs(self, kwargs: dict[str, Any]) -> tuple[dict[str, Any], Restore | None]:
        """The request as sent: model, parameters for its family, strict schema."""
        kwargs.setdefault("model", self.settings.model)
        kwargs = self._params.apply(kwargs)
        if self.settings.instructor_mode in STRICT_MODES:
            return apply_strict(kwargs)
        return kwargs, None

    def _check(
        self, call: Call, response: Any, request: dict[str, Any], restore: Restore | None
    ) -> Any:
        """Count the completion once, then refuse what is not an answer."""
        choice, usage = call.received(response)
        if choice is None:
            raise ModelCallError("the server returned no choices")
        if repair_control_characters(choice.message):
            call.stats.json_repairs += 1
        at_limit = (
            self.settings.max_tokens is not None
            and usage is not None
            and (usage.completion_tokens or 0) >= self.settings.max_tokens
        )
        if choice.finish_reason == "length" or at_limit:
            reasoning = usage_details(usage)[1]  # this completion's, not the call's
            raise OutputTruncated(truncated_message(self.settings, reasoning), completion=response)
        if restore is not None:
            restore(choice.message)
        if getattr(choice.message, "refusal", None) or choice.finish_reason == "content_filter":
            reason = choice.message.refusal or "content filter"
            raise ModelRefused(f"the model refused: {short(str(reason), 200)}", completion=response)
        check_tool_calls(choice.message, request, response)
        return response

    def _check_response(self, call: Call, response: Any, restore: Restore, tool: str) -> Any:
        """The Responses API's ``_check``: count once, refuse what is not an answer."""
        responses.received(call.stats, response)
        responses.check(self.settings, response, tool)
        restore(response)
        return response

    async def _raw_acreate(self, *args: Any, **kwargs: Any) -> Any:
        """One attempt (instructor calls it per ask and re-ask): HTTP retries inside."""
        call = ACTIVE.get() or Call(None, max_attempts=1)  # set by aextract
        on_responses = self.settings.api == "responses"
        if on_responses:
            wire = wire_model(call.model).openai_schema if call.model is not None else None
            kwargs, restore = responses.request(kwargs, self.settings, self._params, wire)
            create = self._async.responses.create
        else:
            kwargs, restore = self._request_kwargs(kwargs)
            create = self._async.chat.completions.create

        async def once() -> Any:
            call.note_request()
            try:
                # the whole request, headers included, within --timeout (not per read)
                async with asyncio.timeout(self.settings.timeout):
                    return await create(*args, **kwargs)
            except TimeoutError as exc:
                raise RequestDeadline(
                    f"no complete answer within {self.settings.timeout:g}s"
                ) from exc
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                raise MalformedBody(str(exc)) from exc

        received = await self._retrying(call)(once)
        if on_responses:
            tool = kwargs["tools"][0]["name"]
            response = self._check_response(call, received, restore, tool)  # type: ignore[arg-type]
        else:
            response = self._check(call, received, kwargs, restore)
        if call.aligner is not None:
            await asyncio.to_thread(preground, call, response)  # CPU work off the loop
        return response

    # -- output layer -----------------------------------------------------------

    def _finish(
        self, value: BaseModel, model: type[BaseModel], call: Call, started: float
    ) -> Extraction:
        # hand back the caller's own model, without instructor's private attributes
        value = model.model_validate(value.model_dump())
        call.stats.latency_s = round(time.perf_counter() - started, 4)
        facts = call.facts if call.facts is not None else call.pregrounded(value)
        if facts is None:
            aligner = call.aligner
            facts = grounding.ground(value, aligner.text, aligner) if aligner else []
        return Extraction(value, call.stats, facts)

    def fail(self, exc: BaseException, stats: CallStats, started: float) -> ExtractError:
        stats.latency_s = round(time.perf_counter() - started, 4)
        cause = exc
        if isinstance(exc, InstructorRetryException) and exc.__cause__ is not None:
            cause = exc.__cause__
        error = classify(cause, self.settings, stats)
        last = getattr(exc, "last_completion", None) or getattr(cause, "completion", None)
        if last is not None:
            error.context["last_completion"] = redact(completion_text(last), self.settings.api_key)
        return error

    async def aextract(
        self,
        messages: list[dict[str, str]],
        response_model: type[BaseModel],
        source_text: str | None = None,
    ) -> Extraction:
        """Validated ``response_model`` for ``messages``; grounded against ``source_text``."""
        started = time.perf_counter()
        aligner = None
        if source_text is not None:
            prompt = "\n".join(str(m.get("content") or "") for m in messages)
            aligner = grounding.Aligner(source_text, prompt=prompt)
        call = Call(aligner, self.settings.reasks + 1, model=response_model)
        token = ACTIVE.set(call)
        try:
            value = await self._acreate(
                response_model=grounded_model(response_model),
                messages=messages,
                max_retries=self.settings.reasks,
            )
        except Exception as exc:
            raise self.fail(exc, call.stats, started) from None
        finally:
            ACTIVE.reset(token)
        return await asyncio.to_thread(self._finish, value, response_model, call, started)

    def extract(
        self,
        messages: list[dict[str, str]],
        response_model: type[BaseModel],
        source_text: str | None = None,
    ) -> Extraction:
        """``aextract``, blocking (on the client's own event loop, in a background thread)."""
        return self._portal.run(self.aextract(messages, response_model, source_text))

    def close(self) -> None:
        """Close the client used through ``extract`` (``aclose`` after ``aextract``)."""
        if self._portal.started:
            self._portal.run(self.aclose())
        self._portal.stop()

    async def aclose(self) -> None:
        await self._async.close()
