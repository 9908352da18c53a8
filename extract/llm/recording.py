"""Recorded model exchanges: replay fixtures, response cache and token ledger in one store.

The store sits at the HTTP boundary, as a transport under the openai client's
``http_client``. An exchange is keyed by method + path + canonical JSON body (not
the host, never headers) and stored as one readable JSON file. Request headers
are never written; response headers pass an allow-list. Each file says where it
came from: the model the server named, the server's host, the date and the
caseextract version.

``read_exchanges`` is the one reader of recording files outside the store (the
cost ledger reads them through it).

Record modes (``record_mode``; the CLI's ``--record-mode``): ``replay`` (a miss
fails and says what differs from the nearest recording), ``record`` (always
forward and store), ``cache`` (replay when present, else forward and store),
``off``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from caseextract._version import __version__
from caseextract.documents import MAX_BYTES as MAX_DOCUMENT_BYTES
from caseextract.documents import read_limited
from caseextract.errors import CorruptRecording, InputError
from caseextract.fileio import write_atomic
from caseextract.records import utc_now
from caseextract.redaction import redact

RECORD_MODES = ("off", "replay", "record", "cache")
# one exchange: the request (a document of at most 5 MB, JSON-escaped, and the prompt)
# and its answer (about 25 kB); a file over this is not a recording and is not read
MAX_RECORDING_BYTES = 4 * MAX_DOCUMENT_BYTES
RESPONSE_HEADERS = {
    "content-type",
    "retry-after",
    "retry-after-ms",
    "openai-model",
    "openai-processing-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
}
MISS_CODE = "replay_miss"
TRANSIENT_STATUSES = {408, 409, 429}
_PARAMS_IGNORED = {"messages", "input", "tools", "tool_choice", "response_format", "model"}


def canonical(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _h(value: Any) -> str:
    text = value if isinstance(value, str) else canonical(value)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def exchange_key(method: str, path: str, body: Any) -> str:
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical(body)}".encode()).hexdigest()


def _message(body: dict[str, Any], role: str) -> dict[str, Any]:
    """The first message of ``role``: ``messages`` (Chat Completions) or ``input`` (Responses)."""
    messages = body.get("messages") or body.get("input") or []
    return next((m for m in messages if isinstance(m, dict) and m.get("role") == role), {})


def document_fingerprint(body: Any) -> str:
    """The fingerprint of the document a chat request carries (its first user message)."""
    return _h(_message(body, "user").get("content", "")) if isinstance(body, dict) else ""


def request_parts(body: Any) -> dict[str, str]:
    """Named fingerprints of a chat request, for telling why a replay missed."""
    if not isinstance(body, dict):
        return {"body": _h(body)}
    messages = body.get("messages") or body.get("input") or []
    return {
        "model": str(body.get("model")),
        "prompt (system message)": _h(_message(body, "system").get("content", "")),
        "document (user message)": document_fingerprint(body),
        "schema (tools/response_format)": _h(
            [body.get("tools"), body.get("tool_choice"), body.get("response_format")]
        ),
        "parameters": _h({k: v for k, v in body.items() if k not in _PARAMS_IGNORED}),
        "re-ask history": _h(messages[2:]),
    }


@dataclass
class Exchange:
    key: str
    path: Path
    data: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    """Tokens of one recorded answer (zero where the answer says nothing)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens
    reasoning_tokens: int = 0  # of completion_tokens
    cache_write_tokens: int = 0  # of prompt_tokens

    @classmethod
    def of(cls, body: Any) -> Usage:
        """From a chat completion's usage, or a Responses answer's (input/output tokens)."""
        usage = (body.get("usage") or {}) if isinstance(body, dict) else {}
        if "input_tokens" in usage:  # openai SDK types/responses/response_usage.py
            inputs = usage.get("input_tokens_details") or {}
            outputs = usage.get("output_tokens_details") or {}
            return cls(
                usage.get("input_tokens", 0) or 0,
                usage.get("output_tokens", 0) or 0,
                inputs.get("cached_tokens", 0) or 0,
                outputs.get("reasoning_tokens", 0) or 0,
                inputs.get("cache_write_tokens", 0) or 0,
            )
        prompt = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens_details") or {}
        return cls(
            usage.get("prompt_tokens", 0) or 0,
            usage.get("completion_tokens", 0) or 0,
            prompt.get("cached_tokens", 0) or 0,
            completion.get("reasoning_tokens", 0) or 0,
            prompt.get("cache_write_tokens", 0) or 0,
        )


@dataclass(frozen=True)
class RecordedExchange:
    """One recording file, typed: what was asked, what came back, and where it came from."""

    path: Path
    request_body: Any
    status: int
    response_body: Any
    usage: Usage
    provenance: dict[str, Any]

    @property
    def model(self) -> str | None:
        """The model the server named; for an error answer, the model that was asked."""
        asked = self.request_body.get("model") if isinstance(self.request_body, dict) else None
        return self.provenance.get("model") or asked

    @property
    def document(self) -> str:
        """The fingerprint of the document the request carried (``document_fingerprint``)."""
        return document_fingerprint(self.request_body)

    @property
    def batch(self) -> bool:
        """Answered through the provider's Batch API (``caseextract batch``)."""
        return self.provenance.get("kind") == "batch answer"


def read_exchanges(folder: Path) -> Iterator[RecordedExchange]:
    """Every recording in ``folder``, in file-name order; ``CorruptRecording`` naming a
    file that cannot be read."""
    for path in sorted(Path(folder).glob("*.json")):
        if path.name == "manifest.json":
            continue
        data = RecordingStore.read(path)
        request, response = data.get("request") or {}, data["response"]
        yield RecordedExchange(
            path=path,
            request_body=request.get("body") if isinstance(request, dict) else None,
            status=int(response.get("status", 200)),
            response_body=response.get("body"),
            usage=Usage.of(response.get("body")),
            provenance=data.get("provenance") or {},
        )


class RecordingStore:
    """A folder of recorded exchanges; safe to share between threads and tasks."""

    def __init__(self, folder: Path, record_mode: str = "replay") -> None:
        if record_mode not in RECORD_MODES:
            raise ValueError(f"recording mode must be one of {', '.join(RECORD_MODES)}")
        self.folder = Path(folder)
        self.record_mode = record_mode
        self.hits = 0
        self.misses: list[str] = []
        self.recorded = 0
        self.forwarded = 0
        self._lock = threading.Lock()
        self._index: dict[str, Path] | None = None

    # -- files -------------------------------------------------------------------

    def _load_index(self) -> dict[str, Path]:
        if self._index is None:
            index: dict[str, Path] = {}
            if self.folder.is_dir():
                for path in sorted(self.folder.glob("*.json")):
                    if path.name == "manifest.json":
                        continue
                    index[path.stem] = path
            self._index = index
        return self._index

    def _path_for(self, key: str) -> Path:
        return self.folder / f"{key[:24]}.json"

    @staticmethod
    def read(path: Path) -> dict[str, Any]:
        """One recording; ``CorruptRecording`` naming the file when it cannot be read."""
        try:  # bounded, regular files only: a link to /dev/zero is refused, not read
            data = json.loads(read_limited(path, MAX_RECORDING_BYTES).decode("utf-8"))
        except (InputError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            reason = str(exc).removeprefix(f"{path}: ") or "nested too deeply"
            raise CorruptRecording(
                f"recording {path} is corrupt ({reason}); restore it, or delete it and "
                "re-record with --record-mode record"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
            raise CorruptRecording(f"recording {path} is corrupt (not a recorded exchange)")
        return data

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._load_index().get(key[:24])
        if path is None:
            return None
        data = self.read(path)
        return data if data.get("key") == key else None

    def exchanges(self) -> list[dict[str, Any]]:
        """Every readable recording (a corrupt one is skipped here; ``get`` names it)."""
        found = []
        for path in self._load_index().values():
            try:
                found.append(self.read(path))
            except CorruptRecording:
                continue
        return found

    def put(
        self,
        key: str,
        request: dict[str, Any],
        response: dict[str, Any],
        host: str | None,
        provenance: dict[str, Any] | None = None,
    ) -> Path:
        """Store one exchange; ``provenance`` replaces the recorded-from-a-server one
        (imported answers say what they are instead, see ``caseextract.answers``)."""
        body = response.get("body")
        served_model = body.get("model") if isinstance(body, dict) else None
        data = {
            "key": key,
            "provenance": provenance
            or {
                "model": served_model,
                "server": host,
                "recorded_at": utc_now(),
                "caseextract_version": __version__,
            },
            "parts": request_parts(request.get("body")),
            "request": request,
            "response": response,
        }
        path = self._path_for(key)
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = redact(json.dumps(data, indent=1, ensure_ascii=False))  # an echoed key
            write_atomic(path, text + "\n", fsync=False)
            self._load_index()[path.stem] = path
            self.recorded += 1
        return path

    # -- diagnostics --------------------------------------------------------------

    def explain_miss(self, body: Any) -> str:
        wanted = request_parts(body)
        best: tuple[int, dict[str, str]] | None = None
        for data in self.exchanges():
            parts = data.get("parts") or {}
            same = sum(parts.get(k) == v for k, v in wanted.items())
            if best is None or same > best[0]:
                best = (same, parts)
        if best is None:
            return f"no recordings in {self.folder}"
        differs = [k for k, v in wanted.items() if best[1].get(k) != v]
        detail = ", ".join(differs) or "nothing named (the body differs elsewhere)"
        model_note = ""
        if "model" in differs:
            model_note = f" (request model {wanted['model']!r}, recorded {best[1].get('model')!r})"
        return (
            f"no recording for this request in {self.folder}; the nearest recording differs "
            f"in: {detail}{model_note}. Re-record with --record-mode record (needs the server)."
        )

    # -- the transport logic --------------------------------------------------------

    def lookup(self, request: httpx2.Request) -> tuple[str, Any, httpx2.Response | None]:
        body = json_body(request)
        key = exchange_key(request.method, request.url.path, body)
        if self.record_mode in ("replay", "cache"):
            data = self.get(key)
            if data is not None:
                with self._lock:
                    self.hits += 1
                return key, body, response_of(data["response"], request)
        if self.record_mode == "replay":
            message = self.explain_miss(body)
            with self._lock:
                self.misses.append(message)
            error = {"error": {"message": message, "type": MISS_CODE, "code": MISS_CODE}}
            return key, body, httpx2.Response(404, json=error, request=request)
        return key, body, None

    def store(
        self, key: str, body: Any, request: httpx2.Request, response: httpx2.Response
    ) -> httpx2.Response:
        with self._lock:
            self.forwarded += 1
        content = response.content
        try:
            payload: Any = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = content.decode("utf-8", "replace")
        record = {
            "status": response.status_code,
            "headers": {
                k.lower(): v for k, v in response.headers.items() if k.lower() in RESPONSE_HEADERS
            },
            "body": payload,
        }
        # Answers and the server's final refusals (400 context length, 401, 404 …) are
        # stored; passing faults (408, 409, 429, 5xx) are not fixtures to replay.
        if response.status_code not in TRANSIENT_STATUSES and response.status_code < 500:
            self.put(
                key,
                {"method": request.method, "path": request.url.path, "body": body},
                record,
                f"{request.url.host}:{request.url.port}" if request.url.port else request.url.host,
            )
        return httpx2.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )


def json_body(request: httpx2.Request) -> Any:
    raw = request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def response_of(stored: dict[str, Any], request: httpx2.Request) -> httpx2.Response:
    body = stored.get("body")
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    headers = dict(stored.get("headers") or {})
    headers.setdefault("content-type", "application/json")
    return httpx2.Response(
        stored.get("status", 200), headers=headers, content=content, request=request
    )


class AsyncRecordingTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self, store: RecordingStore, inner: httpx2.AsyncBaseTransport | None = None
    ) -> None:
        self.store = store
        self.inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        key, body, replayed = self.store.lookup(request)
        if replayed is not None:
            return replayed
        response = await self.inner.handle_async_request(request)
        await response.aread()
        return self.store.store(key, body, request, response)

    async def aclose(self) -> None:
        await self.inner.aclose()
