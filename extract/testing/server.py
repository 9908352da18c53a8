"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks real HTTP to the real openai client. Each request to
``/v1/chat/completions`` is answered by the next scripted ``Reply`` (or by a
function of the request). Every answer it gives is *crafted*, never a model's
output: helpers here are named ``crafted_*`` to say so. A ``Reply`` can also
misbehave at the HTTP level: a delay, a reset mid-body, a body trickled one byte
at a time (slow loris) or a chunked body that never ends.

``FaultSchedule`` is a responder that injects faults (rate limits, 5xx, slow
answers, resets, malformed or invalid answers, truncation, refusals, 401) on a
fixed share of requests, decided per document and request number from a seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; bytes → as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    reset: bool = False  # close the connection mid-body
    trickle: float = 0.0  # seconds between single bytes of the body (a slow-loris answer)
    endless: bool = False  # a chunked 200 that never ends (the body repeated forever)


Responder = Callable[[dict[str, Any], int], Reply]


def _completion(
    model: str, finish_reason: str, message: dict[str, Any], usage: tuple[int, int] = (100, 50)
) -> dict[str, Any]:
    """The chat-completion envelope around one crafted message."""
    return {
        "id": "chatcmpl-crafted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "message": message}],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def crafted_tool_completion(
    arguments: dict[str, Any] | str,
    tool_name: str = "CaseReport",
    model: str = "crafted-model",
    finish_reason: str = "tool_calls",
    prompt_tokens: int = 100,
    completion_tokens: int = 50,
) -> dict[str, Any]:
    """A chat completion whose single tool call carries ``arguments`` (crafted)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {
        "id": "call_crafted",
        "type": "function",
        "function": {"name": tool_name, "arguments": args},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return _completion(model, finish_reason, message, (prompt_tokens, completion_tokens))


def crafted_text_completion(
    content: str | None,
    model: str = "crafted-model",
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A chat completion with plain message content (crafted)."""
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return _completion(model, finish_reason, message)


def crafted_response(
    output: list[dict[str, Any]],
    model: str = "crafted-model",
    usage: tuple[int, int] = (100, 50),
    incomplete: str | None = None,
) -> dict[str, Any]:
    """A Responses API answer (``/v1/responses``) holding ``output`` items (crafted).

    Shape: the openai SDK's ``types/responses/response.py`` (status, output,
    incomplete_details.reason) and ``response_usage.py`` (input/output tokens with
    their details)."""
    return {
        "id": "resp_crafted",
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model,
        "output": output,
        "parallel_tool_calls": False,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage[0],
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": usage[1],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage[0] + usage[1],
        },
    }


def crafted_function_call(arguments: dict[str, Any] | str, name: str = "CaseReport") -> dict:
    """A Responses ``function_call`` output item carrying ``arguments`` (crafted)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "type": "function_call",
        "id": "fc_crafted",
        "call_id": "call_crafted",
        "name": name,
        "arguments": args,
        "status": "completed",
    }


def crafted_refusal_item(refusal: str) -> dict[str, Any]:
    """A Responses ``message`` output item whose content is a refusal (crafted)."""
    content = [{"type": "refusal", "refusal": refusal}]
    return {
        "type": "message",
        "id": "msg_crafted",
        "role": "assistant",
        "status": "completed",
        "content": content,
    }


def crafted_error(
    status: int, message: str, code: str | None = None, headers: dict[str, str] | None = None
) -> Reply:
    err_type = "insufficient_quota" if code == "insufficient_quota" else "invalid_request_error"
    body = {"error": {"message": message, "type": err_type, "code": code}}
    return Reply(status=status, body=body, headers=headers or {})


# ------------------------------------------------------------------ faults

# Faults a batch can meet, grouped by how the client must treat them (llm/failures.py):
# transient ones are retried at the HTTP layer, "answer" faults cost a re-ask,
# final ones fail the document at once with the error kind named here.
TRANSIENT_FAULTS = (
    "429_retry_after",
    "429_no_retry_after",
    "500",
    "502",
    "503",
    "timeout",
    "reset",
    "malformed_json",  # a 200 whose body is not JSON: a transport fault, retried like one
)
REASK_FAULTS = ("schema_violation",)
FINAL_FAULTS = {
    "429_insufficient_quota": "not_retryable",
    "401": "not_retryable",
    "truncated": "truncated",
    "refusal": "refused",
}
FAULT_KINDS = (*TRANSIENT_FAULTS, *REASK_FAULTS, *FINAL_FAULTS)

# A chat completion cut off in the middle: a 200 whose body is not JSON.
_MALFORMED_BODY = b'{"id": "chatcmpl-crafted", "object": "chat.completion", "choices": [{"ind'


def crafted_fault(kind: str, good: Reply, slow_delay: float = 5.0) -> Reply:
    """The crafted reply for one fault kind (``good`` is what a healthy server would send).

    ``timeout`` answers ``good`` after ``slow_delay`` seconds (set it above the
    client's timeout); ``reset`` closes the connection halfway through ``good``.
    """
    if kind == "429_retry_after":
        return crafted_error(
            429, "Rate limit reached for requests", "rate_limit_exceeded", {"retry-after": "0"}
        )
    if kind == "429_no_retry_after":
        return crafted_error(429, "Rate limit reached for requests", "rate_limit_exceeded")
    if kind == "429_insufficient_quota":
        return crafted_error(
            429, "You exceeded your current quota, please check your plan.", "insufficient_quota"
        )
    if kind == "401":
        return crafted_error(401, "Incorrect API key provided.", "invalid_api_key")
    if kind in ("500", "503"):
        return crafted_error(int(kind), "The server had an error while processing your request.")
    if kind == "502":  # a proxy's HTML page, not JSON
        return Reply(
            status=502,
            body=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            headers={"content-type": "text/html"},
        )
    if kind == "timeout":
        return Reply(status=good.status, body=good.body, headers=good.headers, delay=slow_delay)
    if kind == "reset":
        return Reply(status=good.status, body=good.body, headers=good.headers, reset=True)
    if kind == "malformed_json":
        return Reply(body=_MALFORMED_BODY)
    if kind == "schema_violation":  # patients[0] lacks its label; age is not an object
        return Reply(body=crafted_tool_completion({"article": {}, "patients": [{"age": 5}]}))
    if kind == "truncated":
        return Reply(
            body=crafted_tool_completion('{"article": {"title": "Intra', finish_reason="length")
        )
    if kind == "refusal":
        return Reply(body=crafted_text_completion(None, refusal="I can't help with that."))
    raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")


def first_user_message_key(payload: dict[str, Any]) -> str:
    """Which document a request is about: a hash of its first user message."""
    messages = payload.get("messages") or []
    first = next((m for m in messages if m.get("role") == "user"), {})
    content = first.get("content", "")
    text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Served:
    key: str  # the document
    index: int  # its how-manieth request (0 = first)
    kind: str  # "ok" or a fault kind


class FaultSchedule:
    """A responder that injects faults on a fixed share of requests, reproducibly.

    Whether request *n* for a document gets a fault, and which, depends only on
    the seed, the document (``key(payload)``) and *n*, never on timing or on the
    order in which concurrent documents reach the server. So a batch run twice
    meets the same faults, and the outcome of every document can be predicted.
    """

    def __init__(
        self,
        good: Reply | Callable[[dict[str, Any]], Reply],
        rate: float = 0.3,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        slow_delay: float = 5.0,
        key: Callable[[dict[str, Any]], str] = first_user_message_key,
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {', '.join(sorted(unknown))}")
        self.good = good
        self.rate = rate
        self.seed = seed
        self.kinds = tuple(kinds)
        self.slow_delay = slow_delay
        self.key = key
        self.served: list[Served] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def decide(self, key: str, index: int) -> str:
        """``"ok"`` or the fault kind for request ``index`` of document ``key``."""
        rng = random.Random(f"{self.seed}:{key}:{index}")
        if rng.random() >= self.rate:
            return "ok"
        return self.kinds[rng.randrange(len(self.kinds))]

    def __call__(self, payload: dict[str, Any], _index: int) -> Reply:
        key = self.key(payload)
        with self._lock:
            n = self._seen[key]
            self._seen[key] += 1
            kind = self.decide(key, n)
            self.served.append(Served(key, n, kind))
        good = self.good(payload) if callable(self.good) else self.good
        return good if kind == "ok" else crafted_fault(kind, good, self.slow_delay)

    def by_key(self) -> dict[str, list[str]]:
        """Kinds served to each document, in request order."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for s in sorted(self.served, key=lambda s: (s.key, s.index)):
                out.setdefault(s.key, []).append(s.kind)
        return out

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(s.kind for s in self.served)


class LoopbackHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (killed, timed out, cancelled): expected here
        super().handle_error(request, client_address)


class LoopbackService(ABC):
    """A test server's life on 127.0.0.1: one serving thread, stopped on exit."""

    _server: ThreadingHTTPServer | None = None

    @abstractmethod
    def start(self) -> Self:
        """Bind, serve in a thread (``_serve``) and return the running server."""

    def _serve(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> Self:
        self._server = LoopbackHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeOpenAIServer(LoopbackService):
    """Start with ``with FakeOpenAIServer(script) as server: server.base_url``."""

    def __init__(
        self,
        script: list[Reply] | Responder | None = None,
        default: Reply | Responder | None = None,
    ) -> None:
        self._script = list(script) if isinstance(script, list) else []
        self._responder = script if callable(script) else None
        self._default = default
        self.requests: list[dict[str, Any]] = []
        self.raw_requests: list[bytes] = []  # the bodies as received, byte for byte
        self.request_headers: list[dict[str, str]] = []
        self.pass_headers = False  # True: the responder sees them as payload["_headers"]
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, payload: dict[str, Any]) -> Reply:
        with self._lock:
            index = len(self.requests)
            self.requests.append(payload)
            if self._script:
                return self._script.pop(0)
        if self._responder is not None:
            return self._responder(payload, index)
        if isinstance(self._default, Reply):
            return self._default
        if callable(self._default):
            return self._default(payload, index)
        return crafted_error(500, "script exhausted")

    def start_on(self, port: int) -> FakeOpenAIServer:
        """Start on a given 127.0.0.1 port instead of a free one."""
        return self.start(port)

    def start(self, port: int = 0) -> FakeOpenAIServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._send(Reply(body={"object": "list", "data": [{"id": "crafted-model"}]}))
                else:
                    self._send(Reply(status=404, body={"error": {"message": "not found"}}))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    payload = {"_raw": raw.decode("utf-8", "replace")}
                payload["_path"] = self.path
                if owner.pass_headers:
                    payload["_headers"] = dict(self.headers)
                payload["_bytes"] = length  # the body's size on the wire (for TPM limits)
                with owner._lock:
                    owner.request_headers.append(dict(self.headers))
                    owner.raw_requests.append(raw)
                self._send(owner._next(payload))

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
                if reply.endless:
                    self._send_endless(reply, data)
                    return
                try:
                    self.send_response(reply.status)
                    if not any(k.lower() == "content-type" for k in reply.headers):
                        self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if reply.reset:
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    if reply.trickle:
                        for i in range(len(data)):
                            self.wfile.write(data[i : i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                        return
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _send_endless(self, reply: Reply, data: bytes) -> None:
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    chunk = b"%x\r\n%s\r\n" % (len(data), data)
                    while True:  # until the client hangs up
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True

        return self._serve(Handler, port)
