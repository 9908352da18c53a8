"""Batch API jobs: submit the exact requests ``run`` would send; collect them as ``run`` would.

Contracts:

* **Same requests.** Each document's first request is captured through the
  pipeline's own client (``exchange.capture_requests``); a re-ask is the request
  that client makes after an invalid or ungrounded answer (captured the same way
  during ``collect``). One JSONL line per request: ``custom_id`` =
  ``<id>.<sha256[:16]>.<pass>`` (the document, its content hash, the pass), method
  ``POST``, url ``/v1/chat/completions`` (or ``/v1/responses`` for a Responses
  request: files are split per model and endpoint), body the captured body.
* **Files at the provider's limits.** 50,000 requests and 200 MB per file, one
  model per file (https://platform.openai.com/docs/api-reference/batch/create,
  https://platform.openai.com/docs/guides/batch); uploaded with purpose
  ``batch``; batches created with ``completion_window="24h"``.
* **State next to the results.** ``<results>.batch.json`` (atomic rewrites) and
  the folder ``<results>.batch/``: input files, downloaded output/error files,
  and ``exchanges/``, a recording store holding every answer the provider gave.
* **Same validation and grounding.** ``collect`` stores each answer as a recorded
  exchange and runs ``ModelClient.aextract`` over it in replay mode: instructor
  parses, validates and grounds it exactly as in ``run``; records come from
  ``pipeline.ok_record``/``failed_record``. When the client asks again (a re-ask),
  that request is captured, not sent, and goes to a follow-up batch (or, with
  ``direct``, to the server at once through the same store in cache mode).
* **Resume-safe, never paid twice.** Every step writes the state before the
  next one; a batch carries ``metadata.caseextract_input`` = sha256 of its input
  file, and an interrupted submit adopts the batch created before the kill instead
  of creating another. Collected requests are never sent again; a result line is
  written once per document (``record["batch"]["last"]`` says which request it
  closes). Lines lost in the batch (5xx, 429, timeouts) are sent again up to
  ``http_retries`` times; expired lines are sent again; cancelled ones are not
  (``submit`` again sends what is missing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract.documents import Document, load_document, safe_filename
from caseextract.errors import BatchError, InputError
from caseextract.exchange.export import capture_requests
from caseextract.fileio import write_atomic
from caseextract.llm import ModelSettings
from caseextract.llm.batchapi import ENDPOINT, BatchAPI, endpoint_of
from caseextract.records import utc_now
from caseextract.store import OutputLock, read_records
from caseextract.tasks import Task

STATE_FORMAT = "caseextract-batch/1"
META_KEY = "caseextract_input"
MAX_REQUESTS = 50_000  # per input file: https://platform.openai.com/docs/api-reference/batch/create
MAX_BYTES = 200 * 1024 * 1024  # per input file, same page
# an output file holds answers (larger than the requests): 50,000 answers of 25 kB is
# 1.25 GB; the download streams, so the limit bounds disk use, not memory
MAX_OUTPUT_BYTES = 2 * 1024**3
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass(frozen=True)
class Limits:
    max_requests: int = MAX_REQUESTS
    max_bytes: int = MAX_BYTES
    max_output_bytes: int = MAX_OUTPUT_BYTES  # a downloaded output or error file


def state_path(results: Path) -> Path:
    return results.with_name(results.name + ".batch.json")


def work_dir(results: Path) -> Path:
    return results.with_name(results.name + ".batch")


def custom_id(doc_id: str, sha256: str, n: int) -> str:
    return f"{safe_filename(doc_id)[:40]}.{sha256[:16]}.{n}"


def doc_key(doc_id: str, sha256: str) -> str:
    return f"{doc_id}@{sha256[:16]}"


@dataclass
class BatchJob:
    """The state file of one results file's batch job."""

    results: Path
    data: dict[str, Any] = field(default_factory=dict)
    # bodies of requests not yet written to an input file (kept out of the state file:
    # each holds a whole document; the input files keep them)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lines: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return state_path(self.results)

    @property
    def folder(self) -> Path:
        return work_dir(self.results)

    @classmethod
    def load(cls, results: Path, must_exist: bool = True) -> BatchJob:
        path = state_path(results)
        if not path.is_file():
            if must_exist:
                raise BatchError(f"{path} not found: submit first (caseextract batch submit)")
            return cls(results)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BatchError(f"{path} is not readable JSON: {exc}") from None
        if data.get("format") != STATE_FORMAT:
            raise BatchError(f"{path}: not a caseextract batch state file ({STATE_FORMAT})")
        return cls(results, data)

    def save(self) -> None:
        self.results.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.data, indent=1, ensure_ascii=False) + "\n"
        write_atomic(self.path, text.encode("utf-8"))

    @property
    def documents(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("documents", {})

    @property
    def requests(self) -> dict[str, dict[str, Any]]:
        return self.data.setdefault("requests", {})

    @property
    def batches(self) -> list[dict[str, Any]]:
        return self.data.setdefault("batches", [])

    def settings(self, api_key: str | None, base_url: str | None) -> ModelSettings:
        data = self.data["settings"]
        return ModelSettings.from_public(data, api_key=api_key, base_url=base_url)

    # -- requests --------------------------------------------------------------

    def add_request(self, key: str, body: dict[str, Any], path: str) -> str:
        doc = self.documents[key]
        n = len(doc["requests"]) + 1
        cid = custom_id(doc["id"], doc["sha256"], n)
        doc["requests"].append(cid)
        self.requests[cid] = {"doc": key, "path": path, "status": "prepared"}
        self.bodies[cid] = body
        return cid

    def body(self, cid: str) -> dict[str, Any]:
        """The body sent for ``cid``, read back from its input file."""
        if cid in self.bodies:
            return self.bodies[cid]
        name = self.requests[cid]["batch_file"]
        if name not in self._lines:
            lines = (self.folder / name).read_text(encoding="utf-8").splitlines()
            self._lines[name] = {x["custom_id"]: x["body"] for x in map(json.loads, lines)}
        return self._lines[name][cid]

    def prepare_files(self, limits: Limits) -> list[dict[str, Any]]:
        """Write the prepared requests into input files (one model each, within limits)."""
        pending = [(c, r) for c, r in self.requests.items() if c in self.bodies]
        by_model: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        for cid, req in pending:
            body = self.bodies[cid]
            url = endpoint_of(body)  # /v1/chat/completions or /v1/responses
            line = {"custom_id": cid, "method": "POST", "url": url, "body": body}
            raw = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
            if len(raw) > limits.max_bytes:
                raise BatchError(f"{req['doc']}: one request is larger than a batch file may be")
            by_model.setdefault((str(body.get("model")), url), []).append((cid, raw))
        created = []
        self.folder.mkdir(parents=True, exist_ok=True)
        for (_, url), lines in by_model.items():
            chunk: list[tuple[str, bytes]] = []
            size = 0
            for cid, raw in [*lines, ("", b"")]:
                full = len(chunk) >= limits.max_requests or size + len(raw) > limits.max_bytes
                if chunk and (not cid or full):
                    created.append(self._write_file(chunk, url))
                    chunk, size = [], 0
                if cid:
                    chunk.append((cid, raw))
                    size += len(raw)
        self.save()
        return created

    def _write_file(self, chunk: list[tuple[str, bytes]], endpoint: str) -> dict[str, Any]:
        data = b"".join(raw for _, raw in chunk)
        name = f"input-{len(self.batches) + 1:04d}.jsonl"
        write_atomic(self.folder / name, data)
        entry = {
            "file": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "requests": len(chunk),
            "bytes": len(data),
            "endpoint": endpoint,
            "input_file_id": None,
            "id": None,
            "status": None,
            "collected": False,
            "prepared_at": utc_now(),
        }
        self.batches.append(entry)
        for cid, _ in chunk:
            self.requests[cid].update(status="in_file", batch_file=name)
            self.bodies.pop(cid, None)
        return entry

    def send_files(self, api: BatchAPI) -> list[dict[str, Any]]:
        """Upload and create every batch not yet created; state saved after each step."""
        sent = []
        for entry in self.batches:
            if entry["id"]:
                continue
            adopted = api.find(META_KEY, entry["sha256"])  # created before a kill?
            if adopted is None:
                if not entry["input_file_id"]:
                    data = (self.folder / entry["file"]).read_bytes()
                    entry["input_file_id"] = api.upload(entry["file"], data)
                    self.save()
                meta = {META_KEY: entry["sha256"]}
                endpoint = entry.get("endpoint", ENDPOINT)  # state written before: chat
                adopted = api.create(entry["input_file_id"], meta, endpoint)
            entry.update(id=adopted["id"], status=adopted["status"], created_at=utc_now())
            entry["input_file_id"] = adopted.get("input_file_id") or entry["input_file_id"]
            for req in self.requests.values():
                if req.get("batch_file") == entry["file"] and req["status"] == "in_file":
                    req.update(status="submitted", batch=entry["id"])
            self.save()
            sent.append(entry)
        return sent


@dataclass
class SubmitResult:
    submitted: list[str] = field(default_factory=list)  # document ids
    skipped: list[str] = field(default_factory=list)  # done, or already in a batch
    refused: list[tuple[str, str]] = field(default_factory=list)  # unreadable: path, reason
    batches: list[dict[str, Any]] = field(default_factory=list)


def _identity(task: Task, settings: ModelSettings, prompt_set: str, schema: str | None) -> dict:
    public = {k: v for k, v in settings.public().items() if k != "base_url"}
    return {
        "prompt_set": prompt_set,
        "schema": schema,
        "prompt_version": task.prompt_set.version,
        "schema_version": task.schema_version,
        "settings": public,
    }


def submit(
    paths: Sequence[Path],
    results: Path,
    task: Task,
    settings: ModelSettings,
    prompt_set: str,
    schema: str | None,
    api: BatchAPI,
    limits: Limits | None = None,
) -> SubmitResult:
    """Submit what is missing: documents without a result or a live request (under
    the output's lock: ``OutputBusy`` while another process holds it)."""
    with OutputLock(results):
        return _submit(paths, results, task, settings, prompt_set, schema, api, limits)


def _submit(
    paths: Sequence[Path], results: Path, task: Task, settings: ModelSettings,
    prompt_set: str, schema: str | None, api: BatchAPI, limits: Limits | None,
) -> SubmitResult:  # fmt: skip
    job = BatchJob.load(results, must_exist=False)
    ident = _identity(task, settings, prompt_set, schema)
    if job.data:
        differs = [k for k, v in ident.items() if job.data.get(k) != v]
        if differs:
            raise BatchError(
                f"{job.path} was submitted with other {', '.join(differs)}; use another "
                "results file, or the same settings"
            )
    else:
        job.data = {"format": STATE_FORMAT, "created_at": utc_now(), **ident}
    done = {r.key for r in read_records(results) if r.ok}
    out = SubmitResult()
    todo: list[Document] = []
    for path in paths:
        try:
            doc = load_document(Path(path))
        except InputError as exc:  # a bad file is named; the others go on
            out.refused.append((str(path), str(exc)))
            continue
        key = doc_key(doc.id, doc.sha256)
        entry = job.documents.get(key)
        if (doc.id, doc.sha256) in done or any(d.id == doc.id and d.sha256 == doc.sha256
                                               for d in todo):  # fmt: skip
            out.skipped.append(doc.id)
        elif entry is None or not entry["requests"]:
            todo.append(doc)
            job.documents[key] = {
                "id": doc.id, "sha256": doc.sha256, "path": str(doc.path),
                "path_abs": str(doc.path.resolve()), "chars": len(doc.text),
                "status": "waiting", "requests": [], "retries": 0,
            }  # fmt: skip
        elif entry["status"] != "done" and job.requests[entry["requests"][-1]]["status"] == (
            "cancelled"
        ):  # cancelled before it ran: the same request again (earlier answers are kept)
            last = entry["requests"][-1]
            job.add_request(key, job.body(last), job.requests[last]["path"])
            out.submitted.append(doc.id)
        else:
            out.skipped.append(doc.id)  # done, or in a batch
    for doc, req in zip(todo, capture_requests(task, settings, todo), strict=True):
        job.add_request(doc_key(doc.id, doc.sha256), req.body, req.path)
        out.submitted.append(doc.id)
    job.prepare_files(limits or Limits())  # saves the state once the input files are written
    out.batches = job.send_files(api)
    return out


def status(results: Path, api: BatchAPI) -> list[dict[str, Any]]:
    """Each batch of the job as the provider sees it now (state updated, under the lock)."""
    with OutputLock(results):
        job = BatchJob.load(results)
        return _status(job, api)


def _status(job: BatchJob, api: BatchAPI) -> list[dict[str, Any]]:
    rows = []
    for entry in job.batches:
        if entry["id"] and not entry["collected"]:
            remote = api.retrieve(entry["id"])
            entry["status"] = remote["status"]
            entry["request_counts"] = remote.get("request_counts")
        rows.append(entry)
    job.save()
    return rows


def cancel(results: Path, api: BatchAPI) -> list[str]:
    """Ask the provider to cancel every active batch; collect keeps what was answered."""
    with OutputLock(results):
        return _cancel(BatchJob.load(results), api)


def _cancel(job: BatchJob, api: BatchAPI) -> list[str]:
    cancelled = []
    for entry in job.batches:
        if entry["id"] and not entry["collected"] and entry.get("status") in (None, *ACTIVE):
            remote = api.retrieve(entry["id"])
            if remote["status"] in ("validating", "in_progress", "finalizing"):
                remote = api.cancel(entry["id"])
                cancelled.append(entry["id"])
            entry["status"] = remote["status"]
    job.save()
    return cancelled
