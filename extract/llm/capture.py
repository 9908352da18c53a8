"""The first request a model call would send, captured at the HTTP boundary, never sent.

A call goes the whole real way — instructor builds the request, the openai client
serialises it — into a transport that keeps the bytes and answers a final 400,
so nothing leaves the machine and no key is needed. What is captured is what a
real call sends, byte for byte (``caseextract export`` is built on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from caseextract.errors import ExtractError
from caseextract.llm.client import ModelClient
from caseextract.llm.recording import RecordingStore, exchange_key, response_of
from caseextract.llm.types import ModelSettings
from pydantic import BaseModel

CAPTURE_CODE = "caseextract_capture"


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    body: dict[str, Any]
    raw: bytes  # the bytes the openai client put on the wire


@dataclass(frozen=True)
class Call:
    """One model call as the pipeline makes it."""

    messages: list[dict[str, str]]
    response_model: type[BaseModel]
    source_text: str | None = None


class CaptureStore(RecordingStore):
    """A store that keeps each request and answers a final 400, so nothing is sent.

    Given a folder of answers (recorded or imported exchanges), a request that has
    one is answered from it (a replay) and only the others are captured: this is
    how the passes of a multi-pass extraction are exported round by round (the
    plan first; once its answer is imported, the fills it leads to).
    """

    def __init__(self, answers: Path | None = None) -> None:
        super().__init__(Path(answers) if answers is not None else Path(os.devnull), "replay")
        self.replays = answers is not None
        self.captured: list[CapturedRequest] = []
        self.replayed: list[dict[str, Any]] = []  # bodies answered from ``answers``

    def lookup(self, request: httpx2.Request) -> tuple[str, Any, httpx2.Response | None]:
        raw = request.read()
        body = json.loads(raw)
        if self.replays:
            key = exchange_key(request.method, request.url.path, body)
            data = self.get(key)
            if data is not None:
                with self._lock:
                    self.hits += 1
                    self.replayed.append(body)
                return key, body, response_of(data["response"], request)
        with self._lock:
            self.captured.append(CapturedRequest(request.method, request.url.path, body, raw))
        error = {"error": {"message": "captured, not sent", "type": CAPTURE_CODE}}
        return "", body, httpx2.Response(400, json=error, request=request)


@contextlib.asynccontextmanager
async def capturing_client(
    settings: ModelSettings, answers: Path | None = None
) -> AsyncIterator[tuple[ModelClient, CaptureStore]]:
    """A client whose requests are captured, not sent (no key), over a ``CaptureStore``;
    instructor's logging of each refused call is silenced meanwhile."""
    store = CaptureStore(answers)
    client = ModelClient(dataclasses.replace(settings, api_key=None), store)  # nothing is sent
    quiet = logging.getLogger("instructor")  # it would log every capture as a failed call
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        yield client, store
    finally:
        quiet.setLevel(level)
        await client.aclose()


async def acapture(settings: ModelSettings, calls: Sequence[Call]) -> list[CapturedRequest]:
    """The first request of each call, through ``ModelClient.aextract`` as the Runner calls it."""
    out = []
    async with capturing_client(settings) as (client, store):
        for call in calls:
            before = len(store.captured)
            with contextlib.suppress(ExtractError):  # the call fails by design
                await client.aextract(call.messages, call.response_model, call.source_text)
            if len(store.captured) != before + 1:
                raise ExtractError("the request could not be captured")
            out.append(store.captured[-1])
    return out


def capture(settings: ModelSettings, calls: Sequence[Call]) -> list[CapturedRequest]:
    return asyncio.run(acapture(settings, calls))
