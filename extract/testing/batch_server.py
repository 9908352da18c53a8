"""A crafted OpenAI Batch API on 127.0.0.1: files and batches, for tests and benchmarks.

It speaks real HTTP to the real openai client (``client.files`` and
``client.batches``) and enforces the provider's documented rules, each cited
beside the code that enforces it. Every answer a batch line gets comes from a
*responder* the test supplies (crafted, never a model's output).

A batch moves one documented state per ``GET /v1/batches/{id}`` (or per
``advance()``): ``validating → in_progress → finalizing → completed``; a file that
breaks a rule ends in ``failed``; ``plan.expire_after`` lines ends in ``expired``
with partial output; ``cancel`` moves an active batch to ``cancelling`` and the
next step to ``cancelled`` with the lines answered so far. Output lines come back
shuffled (seeded): clients must match on ``custom_id``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from caseextract.testing.server import LoopbackHTTPServer, LoopbackService, Reply

DOCS_BATCH = "https://platform.openai.com/docs/guides/batch"
DOCS_BATCH_CREATE = "https://platform.openai.com/docs/api-reference/batch/create"
DOCS_BATCH_OBJECT = "https://platform.openai.com/docs/api-reference/batch/object"
DOCS_BATCH_CANCEL = "https://platform.openai.com/docs/api-reference/batch/cancel"
DOCS_BATCH_LIST = "https://platform.openai.com/docs/api-reference/batch/list"
DOCS_BATCH_OUTPUT = "https://platform.openai.com/docs/api-reference/batch/request-output"
DOCS_FILES = "https://platform.openai.com/docs/api-reference/files/create"

# https://platform.openai.com/docs/api-reference/batch/create: "The file can contain
# up to 50,000 requests, and can be up to 200 MB in size."
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
# https://platform.openai.com/docs/api-reference/batch/create: endpoints supported
ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions")
ACTIVE = ("validating", "in_progress", "finalizing")
TERMINAL = ("completed", "failed", "expired", "cancelled")
MAX_STEPS = 100_000

LineResponder = Callable[[dict[str, Any], str], Reply]


@dataclass
class BatchPlan:
    """How the crafted provider treats the next batches (tests change it between them)."""

    expire_after: int | None = None  # lines answered before the batch expires
    fail_validation: str | None = None  # an error code: validation fails with it
    seed: int = 0  # shuffles the output lines
    lines_per_step: int | None = None  # lines answered per in_progress step (None: all)


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict[str, str] | None
    created_at: int
    plan: BatchPlan
    status: str = "validating"
    stamps: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)  # the parsed input
    answered: int = 0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None


class FakeBatchServer(LoopbackService):
    """``with FakeBatchServer(responder) as server: OpenAI(base_url=server.base_url)``."""

    def __init__(self, responder: LineResponder, plan: BatchPlan | None = None) -> None:
        self.responder = responder
        self.plan = plan or BatchPlan()
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self.lines_answered = 0  # every line a responder answered: what was paid for
        self._n = 0
        self._lock = threading.RLock()
        self._server: LoopbackHTTPServer | None = None

    # -- ids and state -----------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-crafted-{self._n:04d}"

    def _stamp(self, batch: _Batch, status: str) -> None:
        batch.status = status
        batch.stamps[f"{status}_at"] = int(time.time())

    def _validate(self, batch: _Batch) -> None:
        """validating → in_progress, or → failed with the documented reasons."""
        data = self.files[batch.input_file_id].data
        errors: list[dict[str, Any]] = []
        if batch.plan.fail_validation:
            errors.append({"code": batch.plan.fail_validation, "message": "crafted failure"})
        # https://platform.openai.com/docs/api-reference/batch/create: up to 200 MB
        if len(data) > self.max_bytes:
            errors.append({"code": "file_too_large", "message": "input file over 200 MB"})
        lines = [ln for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
        # https://platform.openai.com/docs/api-reference/batch/create: up to 50,000 requests
        if len(lines) > self.max_requests:
            errors.append({"code": "too_many_requests", "message": "over 50,000 requests"})
        seen: set[str] = set()
        models: set[str] = set()
        parsed = []
        for n, raw in enumerate(lines, 1):
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                errors.append({"code": "invalid_json_line", "line": n, "message": "not JSON"})
                continue
            cid = line.get("custom_id")
            # https://platform.openai.com/docs/api-reference/batch/request-input:
            # custom_id must be unique for each request in a batch
            if not isinstance(cid, str) or cid in seen:
                errors.append({"code": "duplicate_custom_id", "line": n, "message": str(cid)})
            seen.add(str(cid))
            # request-input: method POST; url the batch's endpoint
            if line.get("method") != "POST" or line.get("url") != batch.endpoint:
                errors.append({"code": "mismatched_endpoint", "line": n, "message": "url"})
            body = line.get("body")
            if not isinstance(body, dict):
                errors.append({"code": "invalid_body", "line": n, "message": "body"})
                continue
            models.add(str(body.get("model")))
            parsed.append(line)
        # https://platform.openai.com/docs/guides/batch: each input file may only
        # include requests to a single model
        if len(models) > 1:
            errors.append({"code": "mismatched_model", "message": ", ".join(sorted(models))})
        if errors:
            batch.errors = errors
            self._stamp(batch, "failed")
            return
        batch.lines = parsed
        self._stamp(batch, "in_progress")

    def _work(self, batch: _Batch, end: int) -> None:
        """Answer the lines up to ``end`` (exclusive), in input order."""
        for line in batch.lines[batch.answered : end]:
            reply = self.responder(line["body"], line["custom_id"])
            self.lines_answered += 1
            batch.answered += 1
            out = {
                "id": self._id("batch_req"),
                "custom_id": line["custom_id"],
                # https://platform.openai.com/docs/api-reference/batch/request-output
                "response": {
                    "status_code": reply.status,
                    "request_id": self._id("req"),
                    "body": reply.body,
                },
                "error": None,
            }
            (batch.outputs if reply.status == 200 else batch.failures).append(out)

    def _unanswered(self, batch: _Batch, code: str, message: str) -> None:
        # request-output: batch_expired / batch_cancelled for requests never executed
        for line in batch.lines[batch.answered :]:
            batch.failures.append(
                {
                    "id": self._id("batch_req"),
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {"code": code, "message": message},
                }
            )

    def _files_out(self, batch: _Batch) -> None:
        rng = random.Random(f"{batch.plan.seed}:{batch.id}")
        # https://platform.openai.com/docs/guides/batch: output lines may not be in
        # the input order; match them on custom_id
        for name, lines in (("output_file_id", batch.outputs), ("error_file_id", batch.failures)):
            if not lines:
                continue
            lines = list(lines)
            rng.shuffle(lines)
            data = "".join(json.dumps(x) + "\n" for x in lines).encode()
            f = _File(self._id("file"), f"{batch.id}_{name[:-8]}.jsonl", "batch_output", data,
                      int(time.time()))  # fmt: skip
            self.files[f.id] = f
            setattr(batch, name, f.id)

    def advance(self, batch_id: str) -> str:
        """Move a batch one documented step; its new status."""
        with self._lock:
            b = self.batches[batch_id]
            if b.status == "validating":
                self._validate(b)
            elif b.status == "in_progress":
                limit = b.plan.expire_after
                end = len(b.lines) if limit is None else min(limit, len(b.lines))
                self._work(b, min(end, b.answered + (b.plan.lines_per_step or len(b.lines))))
                if b.answered >= end and end < len(b.lines):
                    # guides/batch: batches not done within the window expire; the
                    # completed requests are in the output file, the rest unexecuted
                    self._unanswered(b, "batch_expired", "not executed within 24h (crafted)")
                    self._files_out(b)
                    self._stamp(b, "expired")
                elif b.answered >= end:
                    self._stamp(b, "finalizing")
            elif b.status == "finalizing":
                self._files_out(b)
                self._stamp(b, "completed")
            elif b.status == "cancelling":
                # batch/cancel: cancelling for up to 10 minutes, then cancelled with
                # the partial results available
                self._unanswered(b, "batch_cancelled", "batch cancelled before execution")
                self._files_out(b)
                self._stamp(b, "cancelled")
            return b.status

    def run_all(self) -> None:
        """Move every batch to a final state."""
        for batch_id in list(self.batches):
            for _ in range(MAX_STEPS):
                if self.advance(batch_id) in TERMINAL:
                    break

    def batch_obj(self, b: _Batch) -> dict[str, Any]:
        total = len(b.lines)
        # batch/object: request_counts {total, completed, failed}
        return {
            "id": b.id,
            "object": "batch",
            "endpoint": b.endpoint,
            "errors": {"object": "list", "data": b.errors} if b.errors else None,
            "input_file_id": b.input_file_id,
            "completion_window": "24h",
            "status": b.status,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "created_at": b.created_at,
            "expires_at": b.created_at + 24 * 3600,
            **b.stamps,
            "request_counts": {
                "total": total,
                "completed": len(b.outputs),
                "failed": len(b.failures),
            },
            "metadata": b.metadata,
        }

    # -- HTTP ----------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
               ctype: str) -> tuple[int, Any]:  # fmt: skip
        parts = [p for p in path.split("/") if p][1:]  # drop "v1"
        with self._lock:
            if parts == ["files"] and method == "POST":
                return self._upload(body, ctype)
            if len(parts) >= 2 and parts[0] == "files" and method == "GET":
                f = self.files.get(parts[1])
                if f is None:
                    return 404, _error("No such File object", "not_found")
                if parts[2:] == ["content"]:
                    return 200, f.data
                return 200, f.obj()
            if parts == ["batches"] and method == "POST":
                return self._create(body)
            if parts == ["chat", "completions"] and method == "POST":
                # a direct (synchronous) call: answered by the same crafted responder
                self.direct_calls += 1
                reply = self.responder(json.loads(body or b"{}"), "")
                return reply.status, reply.body
            if parts == ["batches"] and method == "GET":
                # batch/list: newest first, paged with after and limit
                items = sorted(self.batches.values(), key=lambda b: b.id, reverse=True)
                after = (query.get("after") or [None])[0]
                if after:
                    ids = [b.id for b in items]
                    items = items[ids.index(after) + 1 :] if after in ids else []
                limit = int((query.get("limit") or ["20"])[0])
                page = items[:limit]
                return 200, {
                    "object": "list",
                    "data": [self.batch_obj(b) for b in page],
                    "first_id": page[0].id if page else None,
                    "last_id": page[-1].id if page else None,
                    "has_more": len(items) > limit,
                }
            if len(parts) >= 2 and parts[0] == "batches":
                b = self.batches.get(parts[1])
                if b is None:
                    return 404, _error("No such Batch object", "not_found")
                if parts[2:] == ["cancel"] and method == "POST":
                    # batch/cancel: only an active batch can be cancelled
                    if b.status not in ACTIVE:
                        return 409, _error(f"Cannot cancel a batch with status {b.status}.",
                                           "invalid_request_error")  # fmt: skip
                    self._stamp(b, "cancelling")
                    return 200, self.batch_obj(b)
                if method == "GET" and not parts[2:]:
                    if self.auto_advance:
                        self.advance(b.id)
                    return 200, self.batch_obj(b)
        return 404, _error(f"{method} {path} is not served here", "not_found")

    def _upload(self, body: bytes, ctype: str) -> tuple[int, Any]:
        fields = _multipart(body, ctype)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        filename, data = fields.get("file", (None, b""))
        # files/create: purpose is one of the documented values; "batch" for batch input
        if purpose not in ("assistants", "batch", "fine-tune", "vision", "user_data", "evals"):
            return 400, _error(f"invalid purpose {purpose!r}", "invalid_request_error")
        if purpose == "batch" and not (filename or "").endswith(".jsonl"):
            # guides/batch: the input is a .jsonl file
            return 400, _error("batch input must be a .jsonl file", "invalid_request_error")
        f = _File(self._id("file"), filename or "upload", purpose, data, int(time.time()))
        self.files[f.id] = f
        return 200, f.obj()

    def _create(self, raw: bytes) -> tuple[int, Any]:
        req = json.loads(raw or b"{}")
        # batch/create: completion_window "24h" is the only one supported
        if req.get("completion_window") != "24h":
            return 400, _error("completion_window must be 24h", "invalid_request_error")
        if req.get("endpoint") not in ENDPOINTS:
            return 400, _error("unsupported endpoint", "invalid_request_error")
        f = self.files.get(req.get("input_file_id", ""))
        if f is None:
            return 400, _error("input file not found", "invalid_request_error")
        # batch/create: the input file must have been uploaded with purpose "batch"
        if f.purpose != "batch":
            return 400, _error("input file purpose must be batch", "invalid_request_error")
        meta = req.get("metadata")
        # batch/create: up to 16 metadata pairs, keys ≤ 64 and values ≤ 512 characters
        if meta is not None and (
            len(meta) > 16 or any(len(k) > 64 or len(str(v)) > 512 for k, v in meta.items())
        ):
            return 400, _error("metadata too large", "invalid_request_error")
        b = _Batch(self._id("batch"), f.id, req["endpoint"], meta, int(time.time()),
                   BatchPlan(**self.plan.__dict__))  # fmt: skip
        b.stamps["validating_at"] = b.created_at
        self.batches[b.id] = b
        obj = self.batch_obj(b)  # answered as created: validating
        if self.instant:
            for _ in range(MAX_STEPS):
                if self.advance(b.id) in TERMINAL:
                    break
        return 200, obj

    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES
    auto_advance = True  # each GET of a batch moves it one step
    instant = False  # every batch runs to its end as soon as it is created
    create_delay = 0.0  # seconds before answering a batch create (after creating it)
    direct_calls = 0

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeBatchServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("content-length", 0))
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                status, payload = owner._route(
                    method, url.path, parse_qs(url.query), raw, self.headers.get("content-type", "")
                )
                if method == "POST" and url.path.rstrip("/").endswith("/batches"):
                    time.sleep(owner.create_delay)  # a client killed here loses the answer
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                binary = isinstance(payload, bytes)
                self.send_header(
                    "content-type", "application/octet-stream" if binary else "application/json"
                )
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

        return self._serve(Handler)


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def _multipart(body: bytes, ctype: str) -> dict[str, tuple[str | None, bytes]]:
    """The fields of a multipart/form-data body: name → (filename, bytes)."""
    marker = "boundary="
    if marker not in ctype:
        return {}
    boundary = ctype.split(marker, 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, _, data = part.partition(b"\r\n\r\n")
        disposition = next(
            (h for h in head.decode("utf-8", "replace").split("\r\n")
             if h.lower().startswith("content-disposition")), "",
        )  # fmt: skip
        attrs = dict(
            (k.strip(), v.strip().strip('"'))
            for k, _, v in (a.partition("=") for a in disposition.split(";")[1:])
        )
        if "name" in attrs:
            fields[attrs["name"]] = (attrs.get("filename"), data.removesuffix(b"\r\n"))
    return fields
