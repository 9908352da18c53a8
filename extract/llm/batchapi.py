"""The provider's Batch API through the openai client: files and batches, nothing more.

Kept in ``llm`` because it is the only package that talks to the provider. Every
call is a plain request of the openai client (its own retries for transient
faults: these calls are cheap and idempotent, or made so by the caller with
``metadata``); errors come back as ``BatchError`` without the key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
from caseextract.errors import BatchError
from caseextract.fileio import atomic_file
from caseextract.llm.types import ModelSettings
from caseextract.redaction import redact
from caseextract.redaction import register as register_secret

ENDPOINT = "/v1/chat/completions"
RESPONSES_ENDPOINT = "/v1/responses"  # the Batch API takes /v1/responses lines as well


def endpoint_of(body: Any) -> str:
    """The endpoint a captured request body goes to: a Responses body carries ``input``."""
    return RESPONSES_ENDPOINT if isinstance(body, dict) and "input" in body else ENDPOINT


WINDOW = "24h"  # the only completion window the provider supports
LIST_LIMIT = 1000  # batches looked through when adopting one created before a kill


def _redact_bytes(line: bytes) -> bytes:
    """``line`` with every known secret replaced; bytes that are not UTF-8 kept as they are."""
    text = line.decode("utf-8", "surrogateescape")
    return redact(text).encode("utf-8", "surrogateescape")


class BatchAPI:
    def __init__(self, settings: ModelSettings) -> None:
        register_secret(settings.api_key)
        self.settings = settings
        self._client = openai.OpenAI(
            api_key=settings.key,
            base_url=settings.base_url,
            timeout=settings.timeout,
            max_retries=max(2, settings.http_retries),
        )

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except openai.APIError as exc:
            detail = redact(str(exc), self.settings.api_key)
            raise BatchError(f"{what} failed: {detail}") from None

    def upload(self, name: str, data: bytes) -> str:
        f = self._call("upload", self._client.files.create, file=(name, data), purpose="batch")
        return str(f.id)

    def create(
        self, input_file_id: str, metadata: dict[str, str], endpoint: str = ENDPOINT
    ) -> dict[str, Any]:
        batch = self._call(
            "create batch",
            self._client.batches.create,
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=WINDOW,
            metadata=metadata,
        )
        return batch.model_dump()

    def find(self, key: str, value: str) -> dict[str, Any] | None:
        """A batch created earlier with ``metadata[key] == value`` that is not dead."""
        page = self._call("list batches", self._client.batches.list, limit=100)
        for n, batch in enumerate(page):
            if n >= LIST_LIMIT:
                break
            meta = batch.metadata or {}
            if meta.get(key) == value and batch.status not in ("failed", "cancelled", "expired"):
                return batch.model_dump()
        return None

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._call("retrieve batch", self._client.batches.retrieve, batch_id).model_dump()

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._call("cancel batch", self._client.batches.cancel, batch_id).model_dump()

    def content(self, file_id: str) -> bytes:
        return bytes(self._call("download", self._client.files.content, file_id).content)

    def download(self, file_id: str, dest: Path, limit: int) -> int:
        """Stream a file's content to ``dest`` (atomically, line by line, secrets redacted:
        a provider may echo the key); at most ``limit`` bytes, else ``BatchError``.

        Memory stays at one line (or one chunk of a line without an end) whatever the
        file's size. Returns the bytes written."""
        total = 0
        stream = self._client.files.with_streaming_response.content(file_id)
        with self._guard("download"), stream as response, atomic_file(dest) as fh:
            pending = b""
            for chunk in response.iter_bytes(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise BatchError(
                        f"download of {file_id} stopped: larger than the {limit:,}-byte "
                        "limit for a batch output file"
                    )
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    fh.write(_redact_bytes(line) + b"\n")
                if len(pending) > 1 << 20:  # a line without an end: written as it comes
                    fh.write(_redact_bytes(pending))
                    pending = b""
            fh.write(_redact_bytes(pending))
        return total

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except openai.APIError as exc:
            detail = redact(str(exc), self.settings.api_key)
            raise BatchError(f"{what} failed: {detail}") from None

    def close(self) -> None:
        self._client.close()
