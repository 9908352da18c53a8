"""``collect``: the provider's answers in, result lines out, exactly as ``run`` makes them.

See ``caseextract.batch`` for the contracts. In short: every answer becomes a
recorded exchange in ``<results>.batch/exchanges``; ``ModelClient.aextract``
replays them (instructor parses, validates, grounds, re-asks); a request the
store has no answer for is a re-ask, captured and sent in a follow-up batch
(or, with ``direct``, to the server now, through the same store in cache mode).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx2
from caseextract._version import __version__
from caseextract.batch.submit import TERMINAL, BatchJob, Limits
from caseextract.documents import Document, load_document
from caseextract.errors import BatchError, ExtractError, InputError, TransientError
from caseextract.llm import ModelClient, ModelSettings
from caseextract.llm.batchapi import BatchAPI, endpoint_of
from caseextract.llm.recording import (
    TRANSIENT_STATUSES,
    RecordingStore,
    exchange_key,
    json_body,
    response_of,
)
from caseextract.pipeline.outcome import failed_record, ok_record
from caseextract.records import DocumentInfo, ErrorInfo, ResultRecord, utc_now
from caseextract.store import (
    MAX_NOTES,
    OutputLock,
    encode_record,
    json_object_line,
    read_records,
    scan,
)
from caseextract.tasks import Task

PENDING = "caseextract_batch_pending"
MAX_LINE_BYTES = 64 * 1024 * 1024  # one answer line (answers run to ~25 kB): read no more
DIRECT_CONCURRENCY = 4


class DirectAnswers(RecordingStore):
    """The provider's answers as recorded exchanges, keyed on the request body; for
    ``--direct`` a request without one is sent and stored (cache mode)."""

    def __init__(self, folder: Path, record_mode: str = "cache") -> None:
        super().__init__(folder, record_mode)

    def lookup(self, request: httpx2.Request) -> tuple[str, Any, httpx2.Response | None]:
        body = json_body(request)
        key = answer_key(body)
        data = self.get(key)
        if data is not None:
            self.hits += 1
            return key, body, response_of(data["response"], request)
        return key, body, self.missed(request, body)

    def missed(self, request: httpx2.Request, body: Any) -> httpx2.Response | None:
        """The answer to a request with no stored answer; None: send it."""
        return None


class BatchAnswers(DirectAnswers):
    """The batch answers; a request without one is captured (it goes to the next
    batch) and answered with a final 400, never sent."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "replay")
        self.captured: list[tuple[str, Any]] = []

    def missed(self, request: httpx2.Request, body: Any) -> httpx2.Response | None:
        self.captured.append((request.url.path, body))
        error = {"error": {"message": "answered in a later batch", "type": PENDING}}
        return httpx2.Response(400, json=error, request=request)


def answer_key(body: Any) -> str:
    """The store key of a batch answer: the request body (the server's address and
    path prefix may differ between submit and collect; the endpoint does not)."""
    return exchange_key("POST", endpoint_of(body), body)


@dataclass
class CollectResult:
    ok: int = 0
    failed: int = 0
    reasks: int = 0  # documents whose answer needs a re-ask (sent on)
    resent: int = 0  # requests lost or expired in a batch, sent again
    direct: int = 0  # documents finished with a direct call
    waiting: list[str] = field(default_factory=list)  # batches not finished yet
    collected: list[str] = field(default_factory=list)  # batches collected now
    followups: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # damaged or duplicate lines, warnings

    def note(self, message: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(message)
        elif len(self.notes) == MAX_NOTES:
            self.notes.append("… and more (see the .damaged.jsonl files)")


def _transient(code: int | None) -> bool:
    return code is None or code in TRANSIENT_STATUSES or code >= 500


def _take(job: BatchJob, store: BatchAnswers, batch_id: str, item: dict[str, Any]) -> None:
    cid = item["custom_id"]
    req = job.requests[cid]
    resp = item.get("response") or None
    code = resp.get("status_code") if resp else None
    if resp is not None and not _transient(code):
        body = job.body(cid)
        answer = resp.get("body")
        usage = (answer.get("usage") or {}) if isinstance(answer, dict) else {}
        store.put(
            answer_key(body),
            {"method": "POST", "path": endpoint_of(body), "body": body},
            {"status": code, "headers": {"content-type": "application/json"}, "body": answer},
            None,
            provenance={
                "kind": "batch answer",
                "model": answer.get("model") if isinstance(answer, dict) else None,
                "batch": batch_id,
                "custom_id": cid,
                "request_id": resp.get("request_id"),
                "collected_at": utc_now(),
                "caseextract_version": __version__,
            },
        )
        # a Responses answer names them input_tokens / output_tokens
        prompt = usage.get("prompt_tokens") or usage.get("input_tokens") or 0
        completion = usage.get("completion_tokens") or usage.get("output_tokens") or 0
        req.update(
            status="answered", usage={"prompt_tokens": prompt, "completion_tokens": completion}
        )
        return
    err = item.get("error") or {}
    what = err.get("code") or (f"HTTP {code}" if code else "no answer")
    status = {"batch_expired": "expired", "batch_cancelled": "cancelled"}.get(what, "lost")
    req.update(status=status, reason=f"{what}: {err.get('message') or ''}".strip(": "))


def output_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """One line of a batch output or error file → (item, "") or (None, what is wrong)."""
    item, problem = json_object_line(raw)
    if item is None:
        return None, problem
    if not isinstance(item.get("custom_id"), str):
        return None, "no custom_id (a string was expected)"
    for name in ("response", "error"):
        if item.get(name) is not None and not isinstance(item[name], dict):
            return None, f"{name} is not an object"
    return item, ""


def _model_warning(job: BatchJob, cid: str, item: dict[str, Any]) -> str | None:
    answer = (item.get("response") or {}).get("body")
    named = answer.get("model") if isinstance(answer, dict) else None
    asked = job.data.get("settings", {}).get("model")
    if not isinstance(named, str) or not asked or named == asked:
        return None
    # a dated snapshot of the model asked for is the same model ("gpt-4o-mini-2024-07-18")
    if named.startswith(f"{asked}-") and named[len(asked) + 1 : len(asked) + 2].isdigit():
        return None
    return f"{cid}: answered by {named!r}, not the model asked for ({asked!r})"


def _read_file(
    job: BatchJob, store: BatchAnswers, entry: dict[str, Any], path: Path, seen: set[str],
    out: CollectResult,
) -> None:  # fmt: skip
    """Take each line of one downloaded file; damaged and duplicate lines are set aside."""
    aside = job.folder / f"{entry['id']}.damaged.jsonl"
    for number, raw, item, problem in scan(path, output_line, MAX_LINE_BYTES):
        if item is None:
            if not raw.strip():
                continue
            with aside.open("ab") as fh:
                fh.write(raw if raw.endswith(b"\n") else raw + b"\n")
            out.note(f"{path.name} line {number}: {problem}; set aside in {aside.name}")
            continue
        cid = item["custom_id"]
        if cid not in job.requests or job.requests[cid].get("batch") != entry["id"]:
            continue
        if cid in seen:  # the first answer stands; a second one is not paid twice
            out.note(f"{path.name} line {number}: a second line for {cid}; the first kept")
            continue
        seen.add(cid)  # lines come back in any order: matched on custom_id
        warning = _model_warning(job, cid, item)
        if warning:
            out.note(warning)
            job.requests[cid]["warning"] = warning
        _take(job, store, entry["id"], item)


def download(
    job: BatchJob, api: BatchAPI, store: BatchAnswers, out: CollectResult, limit: int
) -> None:
    """Fetch every finished batch's output and error files into the store; state saved.

    Files are streamed to disk (secrets redacted) within ``limit`` bytes, then read
    line by line: a damaged line is named and set aside, and its request counts as
    lost (sent again like a failed line)."""
    for entry in job.batches:
        if not entry["id"] or entry["collected"]:
            continue
        remote = api.retrieve(entry["id"])
        entry.update(status=remote["status"], request_counts=remote.get("request_counts"))
        if remote["status"] not in TERMINAL:
            out.waiting.append(entry["id"])
            continue
        seen: set[str] = set()
        for name in ("output_file_id", "error_file_id"):
            if not remote.get(name):
                continue
            path = job.folder / f"{entry['id']}.{name[:-8]}.jsonl"
            api.download(remote[name], path, limit)
            _read_file(job, store, entry, path, seen, out)
        errors = (remote.get("errors") or {}).get("data") or []
        why = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors[:3])
        for cid, req in job.requests.items():
            if req.get("batch") == entry["id"] and cid not in seen:
                status = {"expired": "expired", "cancelled": "cancelled"}.get(
                    remote["status"], "lost"
                )
                req.update(status=status, reason=f"batch {remote['status']}: {why}".strip(": "))
        entry["collected"] = True
        out.collected.append(entry["id"])
        job.save()


class _Appender:
    """Appends result lines; a line cut by a kill is closed first (readers skip it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size:
            with path.open("rb") as fh:
                fh.seek(-1, 2)
                partial = fh.read(1) != b"\n"
        else:
            partial = False
        self._fh: IO[str] = path.open("a", encoding="utf-8")
        if partial:
            self._fh.write("\n")

    def write(self, record: ResultRecord) -> None:
        # the results file's own encoding: secrets redacted, lone surrogates escaped
        self._fh.write(encode_record(record.to_json()).decode("utf-8"))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _batch_field(job: BatchJob, doc: dict[str, Any]) -> dict[str, Any]:
    reqs = [job.requests[c] for c in doc["requests"]]
    answered = [r for r in reqs if r["status"] == "answered"]
    warnings = [r["warning"] for r in reqs if r.get("warning")]
    return {
        **({"warnings": warnings} if warnings else {}),
        "batches": sorted({r["batch"] for r in reqs if r.get("batch")}),
        "requests": list(doc["requests"]),
        "last": doc["requests"][-1],
        "usage": {  # tokens billed at batch prices (``cost`` uses them)
            k: sum((r.get("usage") or {}).get(k, 0) for r in answered)
            for k in ("prompt_tokens", "completion_tokens")
        },
    }


def _source(doc: dict[str, Any]) -> Document:
    for candidate in (doc["path"], doc["path_abs"]):
        if Path(candidate).is_file():
            found = load_document(Path(candidate))
            if found.sha256 != doc["sha256"]:
                raise InputError(f"{candidate} changed since it was submitted")
            return found
    raise InputError(f"source not found at {doc['path']!r}: collect where you submitted")


async def _resolve(
    job: BatchJob,
    task: Task,
    settings: ModelSettings,
    store: BatchAnswers,
    writer: _Appender,
    direct: bool,
    out: CollectResult,
) -> None:
    written = {r.batch.get("last") for r in read_records(job.results) if r.batch}
    replay = ModelClient(dataclasses.replace(settings, api_key=None), store)
    later: list[tuple[str, dict[str, Any]]] = []  # (key, doc) finished by a direct call

    def emit(key: str, doc: dict[str, Any], record: ResultRecord) -> None:
        record.batch = _batch_field(job, doc)
        writer.write(record)
        doc["status"] = "done"
        if record.ok:
            out.ok += 1
        else:
            out.failed += 1
            err = record.error or ErrorInfo(kind="?")
            out.failures.append((doc["id"], err.kind, err.message))

    try:
        for key, doc in job.documents.items():
            if doc["status"] == "done" or not doc["requests"]:
                continue
            last = doc["requests"][-1]
            req = job.requests[last]
            if last in written:  # written before a kill, state not saved then
                doc["status"] = "done"
                continue
            info = DocumentInfo(**{k: doc[k] for k in ("id", "path", "sha256", "chars")})
            if req["status"] in ("expired", "lost"):
                if req["status"] == "lost" and doc["retries"] >= settings.http_retries:
                    exc = TransientError(f"failed in the batch: {req.get('reason')}")
                    emit(key, doc, failed_record(task, replay, info, exc))
                    continue
                doc["retries"] += req["status"] == "lost"
                if direct:
                    later.append((key, doc))
                else:
                    job.add_request(key, job.body(last), req["path"])
                out.resent += 1
                continue
            if req["status"] != "answered":
                continue  # still in a batch, or cancelled (submit sends it again)
            store.captured.clear()
            hits = store.hits
            try:
                source = _source(doc)
                ext = await replay.aextract(
                    task.messages(source), task.response_model, source_text=source.text
                )
                emit(key, doc, ok_record(task, replay, source, ext))
            except ExtractError as exc:
                if store.captured and store.hits == hits:  # not even the first request
                    stale = BatchError(
                        "the request collect rebuilds differs from the one submitted (prompt, "
                        "schema or document changed since submit); nothing sent again"
                    )
                    emit(key, doc, failed_record(task, replay, info, stale))
                    continue
                if store.captured:  # the client asked again: a re-ask
                    out.reasks += 1
                    if direct:
                        later.append((key, doc))
                    else:
                        path, body = store.captured[0]
                        job.add_request(key, body, path)
                    continue
                emit(key, doc, failed_record(task, replay, info, exc))
    finally:
        await replay.aclose()
    if later:
        await _direct(job, task, settings, later, emit, out)


async def _direct(job: BatchJob, task: Task, settings: ModelSettings, later: list, emit: Any,
                  out: CollectResult) -> None:  # fmt: skip
    """Finish documents with direct calls: earlier answers replay, the rest is sent."""
    client = ModelClient(settings, DirectAnswers(job.folder / "exchanges"))
    gate = asyncio.Semaphore(DIRECT_CONCURRENCY)

    async def one(key: str, doc: dict[str, Any]) -> None:
        info = DocumentInfo(**{k: doc[k] for k in ("id", "path", "sha256", "chars")})
        async with gate:
            try:
                source = _source(doc)
                ext = await client.aextract(
                    task.messages(source), task.response_model, source_text=source.text
                )
                record = ok_record(task, client, source, ext)
            except ExtractError as exc:
                record = failed_record(task, client, info, exc)
        out.direct += 1
        emit(key, doc, record)

    try:
        await asyncio.gather(*(one(k, d) for k, d in later))
    finally:
        await client.aclose()


def collect(
    results: Path,
    task: Task,
    api: BatchAPI,
    api_key: str | None,
    base_url: str | None,
    direct: bool = False,
    limits: Limits | None = None,
) -> CollectResult:
    """Download what finished, write result lines, send re-asks and lost lines on.

    Holds the output's lock throughout (``OutputBusy`` for a second process)."""
    with OutputLock(results):
        return _collect(results, task, api, api_key, base_url, direct, limits or Limits())


def _collect(
    results: Path, task: Task, api: BatchAPI, api_key: str | None, base_url: str | None,
    direct: bool, limits: Limits,
) -> CollectResult:  # fmt: skip
    job = BatchJob.load(results)
    if job.data.get("prompt_version") != task.prompt_set.version:
        raise BatchError(
            f"the prompt set changed since submit ({job.data.get('prompt_version')} → "
            f"{task.prompt_set.version}): its answers would not match; collect with the "
            "prompt set as it was, or submit again to another results file"
        )
    settings = job.settings(api_key, base_url)
    store = BatchAnswers(job.folder / "exchanges")
    out = CollectResult()
    download(job, api, store, out, limits.max_output_bytes)
    writer = _Appender(results)
    try:
        asyncio.run(_resolve(job, task, settings, store, writer, direct, out))
    finally:
        writer.close()
        job.prepare_files(limits)  # re-asks, lost lines: into files; state saved
    out.followups = job.send_files(api)
    return out
