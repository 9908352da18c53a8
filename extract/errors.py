"""Errors: one root, a few typed children that carry what a user needs to act.

``kind`` is a short stable word written into result records and summaries so a
batch's failures can be counted by reason.
"""

from __future__ import annotations

from typing import Any


class ExtractError(Exception):
    kind = "error"

    def __init__(self, message: str, completion: Any = None, **context: Any) -> None:
        super().__init__(message)
        self.completion = completion  # the raw answer that caused it, when there was one
        self.context = context

    @property
    def attempts(self) -> int:
        return int(self.context.get("attempts", 0))


class InputError(ExtractError):
    """A document that cannot be read as text (empty, binary, PDF without text …)."""

    kind = "input"


class ConfigError(ExtractError):
    """Bad settings: missing key, unknown mode, unreadable prompt set."""

    kind = "config"


class PromptError(ExtractError):
    kind = "prompt"


class ModelCallError(ExtractError):
    """The model call failed; ``context`` holds attempts, usage, last raw completion."""

    kind = "model"


class NonRetryableError(ModelCallError):
    """Authentication, permission, bad request, context length, quota: never retried."""

    kind = "not_retryable"


class TransientError(ModelCallError):
    """Rate limits, 5xx, timeouts or connection failures that outlasted the retries."""

    kind = "transient"


class OutputTruncated(ModelCallError):
    """The answer stopped at ``max_tokens``; retrying would only truncate again."""

    kind = "truncated"


class ModelRefused(ModelCallError):
    kind = "refused"


class ValidationFailed(ModelCallError):
    """The answer never matched the schema within the re-ask budget."""

    kind = "validation"


class ReplayMiss(ExtractError):
    """Replay mode found no recording for a request; the message says what differs."""

    kind = "replay_miss"


class ExchangeError(ExtractError):
    """Requests carried out or answers carried in that cannot be used as they are."""

    kind = "exchange"


class StaleAnswers(ExchangeError):
    """Answers written for a request that a fresh export no longer produces."""

    kind = "stale"

    def __init__(self, message: str, stale: list[str] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.stale = list(stale or [])


class ReviewError(ExtractError):
    """A review decision or export that cannot be made; ``errors`` says why, field by field."""

    kind = "review"

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


class CorruptRecording(ReplayMiss):
    """A recording file that cannot be read; the message names it."""

    kind = "replay_corrupt"


class OutputError(ExtractError):
    """The results file cannot be used or written (not a regular file, disk full …)."""

    kind = "output"


class OutputBusy(OutputError):
    """Another run holds the results file; two writers would lose records."""


class BatchError(ExtractError):
    """A Batch API step that failed, or a batch state file that cannot be used as it is."""

    kind = "batch"
