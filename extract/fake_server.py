"""A scriptable OpenAI-compatible HTTP server on 127.0.0.1, for tests and benchmarks.

It speaks real HTTP to the real openai client. Each request to
``/v1/chat/completions`` is answered by the next scripted ``Reply`` (or by a
function of the request). Every answer it gives is *crafted*, never a model's
output: helpers here are named ``crafted_*`` to say so.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict → JSON; bytes → as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    reset: bool = False  # close the connection mid-body


Responder = Callable[[dict[str, Any], int], Reply]


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
    return {
        "id": "chatcmpl-crafted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_crafted",
                            "type": "function",
                            "function": {"name": tool_name, "arguments": args},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def crafted_text_completion(
    content: str | None, model: str = "crafted-model", finish_reason: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A chat completion with plain message content (crafted)."""
    return {
        "id": "chatcmpl-crafted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
    }


def crafted_error(status: int, message: str, code: str | None = None,
                  headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
    err_type = "insufficient_quota" if code == "insufficient_quota" else "invalid_request_error"
    body = {"error": {"message": message, "type": err_type, "code": code}}
    return Reply(status=status, body=body, headers=headers or {})


class FakeOpenAIServer:
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
        self.request_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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

    def start(self) -> FakeOpenAIServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

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
                with owner._lock:
                    owner.request_headers.append(dict(self.headers))
                self._send(owner._next(payload))

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
                try:
                    self.send_response(reply.status)
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
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
