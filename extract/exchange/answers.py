"""Answers in: answer files become recorded exchanges that ``run``/``eval`` replay unchanged.

An answer file ``<doc>.answer.json`` beside an export (``caseextract.exchange``)
holds one JSON object: the arguments of the tool the request forces (or, in the
JSON modes, the JSON the messages ask for). Import re-exports every answered
document afresh (same prompt set, schema and settings as the index) and

* refuses, naming them, answers whose request fingerprint differs from the fresh
  one (prompt, schema or document changed): they are *stale*;
* stores each fresh answer as an exchange keyed on the fresh request, in
  ``recording.py``'s format: a chat completion with one tool call whose arguments
  are the answer, no ``usage`` (not measured), and a provenance block that says it
  is an imported answer — the user's statement, who answered, the date, the
  answer file and its sha256 — never an API recording;
* writes the store's ``manifest.json`` with the settings replay needs (re-asks 0:
  an answer written once cannot answer a re-ask) and the same provenance.

Nothing is written unless every answer to import is fresh and readable JSON;
with ``write=False`` (``--check``) nothing is written at all. Each answer that
validates is grounded against its document, so the quotes a reader copied by
hand are counted before the eval.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caseextract._version import __version__
from caseextract.documents import Document, load_document, read_limited
from caseextract.errors import ExchangeError, InputError, StaleAnswers
from caseextract.exchange.export import (
    answered_fingerprint,
    capture_requests,
    file_sha256,
    read_index,
    request_fingerprint,
)
from caseextract.grounding import Aligner, GroundingStats, ground, stats
from caseextract.grounding.evidence import quotes_in
from caseextract.llm import ModelSettings
from caseextract.llm.capture import CapturedRequest
from caseextract.llm.params import REPLAY_SETTINGS
from caseextract.llm.recording import RecordingStore, exchange_key
from caseextract.llm.responses import imported_response
from caseextract.redaction import redact
from caseextract.tasks import default_task
from pydantic import ValidationError

KIND = "imported answer: not an API recording"
USAGE_NOTE = "not measured: the answer was written outside caseextract"
MANIFEST = "manifest.json"
# a complete answer for a 30k-character report ran to 25 kB (GUIDE §9); 20 MB is far
# above any answer and far below what would strain memory
MAX_ANSWER_BYTES = 20_000_000


@dataclass
class ImportResult:
    store: Path
    imported: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # exported, not answered
    stale: list[str] = field(default_factory=list)  # skipped with skip_stale
    not_valid: list[str] = field(default_factory=list)  # imported; fail the schema as they are
    grounding: dict[str, GroundingStats] = field(default_factory=dict)  # per valid answer


def _source(entry: dict[str, Any]) -> Path:
    for candidate in (entry.get("source"), entry.get("source_abs")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ExchangeError(
        f"{entry['id']}: source document not found at {entry.get('source')!r} or "
        f"{entry.get('source_abs')!r}; import on the machine that exported the requests"
    )


def _settings(index: dict[str, Any], model: str | None) -> ModelSettings:
    values: dict[str, Any] = dict(base_url=None, api_key=None, reasks=0)
    if model:
        values["model"] = model  # a parameter: not part of the fingerprint
    return ModelSettings.from_public(index.get("settings", {}), **values)


def completion(req: CapturedRequest, arguments: str, answered_by: str, now: dt.datetime) -> dict:
    """The chat completion (or, for a ``/v1/responses`` request, the Responses answer)
    that carries one imported answer (no usage: not measured)."""
    ident = f"imported-{request_fingerprint(req.body)[:16]}"
    if req.path.endswith("/responses"):
        tool = (req.body.get("tools") or [{}])[0].get("name")
        return imported_response(arguments, tool, answered_by, ident, int(now.timestamp()))
    tools = req.body.get("tools") or []
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if tools:
        name = tools[0].get("function", {}).get("name")
        call = {"id": "call_imported", "type": "function"}
        message["tool_calls"] = [{**call, "function": {"name": name, "arguments": arguments}}]
        finish = "tool_calls"
    else:
        message["content"] = arguments
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(now.timestamp()),
        "model": answered_by,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
    }


def inside(folder: Path, entry: dict[str, Any], key: str) -> Path:
    """The file an index entry names under ``key``, refused unless it lies in ``folder``.

    The index is input like any other: a name with ``../``, an absolute path, or a
    link that leads out of the folder is refused by name, never followed."""
    name = entry.get(key)
    if not isinstance(name, str) or not name:
        raise ExchangeError(f"{entry.get('id')!r}: the index's {key} is not a file name")
    path = folder / name
    try:
        real = path.resolve()
        home = folder.resolve()
    except (OSError, RuntimeError) as exc:  # a link loop
        raise ExchangeError(f"{entry.get('id')!r}: {key} {name!r} cannot be read ({exc})") from None
    if Path(name).is_absolute() or not real.is_relative_to(home):
        raise ExchangeError(
            f"{entry.get('id')!r}: {key} {name!r} lies outside {folder}; an export's files "
            "stay in its folder"
        )
    return path


def _check_entries(folder: Path, entries: list[Any]) -> None:
    """Ids are strings, once each; every file named lies inside ``folder``."""
    seen: set[str] = set()
    for entry in entries:
        doc_id = entry.get("id")
        if not isinstance(doc_id, str):
            raise ExchangeError(f"{folder}: an index entry's id is not a string ({doc_id!r})")
        if doc_id in seen:
            raise ExchangeError(
                f"{folder}: the index names {doc_id!r} twice; one answer per document "
                "(export again)"
            )
        seen.add(doc_id)
        inside(folder, entry, "answer")
        inside(folder, entry, "request")


def _read_answer(path: Path) -> str:
    try:
        data = read_limited(path, MAX_ANSWER_BYTES)
    except InputError as exc:
        raise ExchangeError(f"{path.name}: {str(exc).removeprefix(f'{path}: ')}") from None
    try:
        text = data.decode("utf-8-sig").strip()
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExchangeError(f"{path.name}: not readable JSON ({exc})") from None
    except RecursionError:
        raise ExchangeError(f"{path.name}: not readable JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        raise ExchangeError(
            f"{path.name}: an answer is one JSON object, not {type(value).__name__}"
        )
    return text


def _check_manifest(store: Path, settings: dict[str, Any]) -> dict[str, Any]:
    path = store / MANIFEST
    if not path.is_file():
        return {}
    old = json.loads(path.read_text(encoding="utf-8"))
    if not old.get("imported"):
        raise ExchangeError(
            f"{store} holds recordings of a server; keep imported answers in their own folder"
        )
    differs = [k for k in REPLAY_SETTINGS if k in old and old[k] != settings[k]]
    if differs:
        raise ExchangeError(f"{store} was imported with other settings ({', '.join(differs)})")
    return old


def _fresh(
    folder: Path,
    entries: list[dict[str, Any]],
    docs: list[Document],
    fresh: list[CapturedRequest | None],
) -> tuple[list[tuple[dict[str, Any], CapturedRequest]], list[str]]:
    """The entries whose answer answers the request sent today, and the stale ones."""
    keep, stale = [], []
    for entry, doc, req in zip(entries, docs, fresh, strict=True):
        answered_for = answered_fingerprint(entry, folder / entry["answer"])
        if doc.sha256 != entry["sha256"]:
            stale.append(f"{entry['id']} (the document changed)")
        elif req is None or answered_for != request_fingerprint(req.body):
            stale.append(f"{entry['id']} (prompt or schema changed)")
        else:
            keep.append((entry, req))
    return keep, stale


def _store_answer(
    store: RecordingStore,
    req: CapturedRequest,
    text: str,
    answered_by: str,
    now: dt.datetime,
    provenance: dict[str, Any],
) -> Path:
    """One answer as the recorded exchange of its request."""
    response = {
        "status": 200,
        "headers": {"content-type": "application/json"},
        "body": completion(req, text, answered_by, now),
    }
    request = {"method": req.method, "path": req.path, "body": req.body}
    key = exchange_key(req.method, req.path, req.body)
    return store.put(key, request, response, None, provenance=provenance)


def import_answers(
    folder: Path,
    store_dir: Path,
    provenance: str,
    answered_by: str = "unnamed reader",
    model: str | None = None,
    skip_stale: bool = False,
    write: bool = True,
) -> ImportResult:
    """Import the answer files of the export in ``folder`` into the store ``store_dir``."""
    folder, store_dir = Path(folder), Path(store_dir)
    if not provenance.strip():
        raise ExchangeError("say where the answers come from: --provenance is required")
    index = read_index(folder)
    task = default_task(index.get("prompt_set") or "case_report", index.get("schema"))
    settings = _settings(index, model)
    result = ImportResult(store_dir)
    entries = []
    listed = index.get("documents") or []
    _check_entries(folder, listed)
    for entry in listed:
        if (folder / entry["answer"]).is_file():
            entries.append(entry)
        else:
            result.missing.append(entry["id"])
    if not entries:
        raise ExchangeError(f"no answer files (<doc>.answer.json) in {folder}")
    docs = [load_document(_source(e)) for e in entries]
    if "passes" in index:
        fresh = _pass_requests(index, entries, folder, task, model)
    else:
        fresh = list(capture_requests(task, settings, docs))
    keep, stale = _fresh(folder, entries, docs, fresh)
    if stale and not skip_stale:
        raise StaleAnswers(
            f"{len(stale)} answer(s) were written for a request the pipeline no longer sends: "
            f"{', '.join(stale)}. Export again, answer those afresh, or --skip-stale.",
            stale=stale,
        )
    result.stale = stale
    if not keep:
        raise ExchangeError(f"every answer in {folder} is stale: {', '.join(stale)}")
    answers = {e["id"]: _read_answer(folder / e["answer"]) for e, _ in keep}  # all, first
    public = settings.public()
    replay = {k: public[k] for k in REPLAY_SETTINGS}
    manifest = _check_manifest(store_dir, replay)
    doc_of = {e["id"]: d for e, d in zip(entries, docs, strict=True)}
    for entry, _ in keep:
        pass_answer = "pass" in entry
        _judge(entry["id"], answers[entry["id"]], doc_of[entry["id"]], task, result, pass_answer)
    if not write:
        result.imported = [e["id"] for e, _ in keep]
        return result
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store = RecordingStore(store_dir, "record")
    imported = dict(manifest.get("answers") or {})
    for entry, req in keep:
        answer_path = folder / entry["answer"]
        origin = {
            "answer_file": entry["answer"],
            "answer_sha256": file_sha256(answer_path),  # the file as the reader left it
            "answer_file_modified": dt.datetime.fromtimestamp(
                answer_path.stat().st_mtime, dt.UTC
            ).isoformat(timespec="seconds"),
            "request_fingerprint": request_fingerprint(req.body),
        }
        prov = {"kind": KIND, "model": answered_by, "answered_by": answered_by,
                "statement": provenance, "imported_at": now.isoformat(), **origin,
                "usage": USAGE_NOTE, "caseextract_version": __version__}  # fmt: skip
        path = _store_answer(store, req, answers[entry["id"]], answered_by, now, prov)
        imported[entry["id"]] = {
            **origin,
            "document": entry.get("document", entry["id"]),
            "recording": path.name,
            "imported_at": now.isoformat(),
        }
        result.imported.append(entry["id"])
    _write_manifest(store_dir, manifest, replay, index, task, provenance, answered_by, imported)
    return result


def _pass_requests(
    index: dict[str, Any], entries: list[dict[str, Any]], folder: Path, task: Any, model: str | None
) -> list[CapturedRequest | None]:
    """The exported requests of a multi-pass export; None for one made with other prompts.

    A pass depends on the answers before it, so it cannot be rebuilt here from the
    document alone: the request file is taken as exported, and holds while the
    prompt set's passes version is the one it was exported with and the file is
    the one the index fingerprinted.
    """
    if index.get("passes_version") != task.prompt_set.passes_version:
        return [None] * len(entries)
    out: list[CapturedRequest | None] = []
    for entry in entries:
        path = inside(folder, entry, "request")
        try:
            body = json.loads(read_limited(path, MAX_ANSWER_BYTES).decode("utf-8"))
        except (InputError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            reason = f"{path.name}: the exported request is not readable ({exc})"
            raise ExchangeError(reason) from None
        if model and body.get("model") != model:
            raise ExchangeError(
                f"pass requests are imported as exported (model {body.get('model')!r}); "
                f"export them again with --model {model}"
            )
        fresh = request_fingerprint(body) == entry["fingerprint"]
        raw = json.dumps(body).encode("utf-8")
        out.append(CapturedRequest(entry["method"], entry["path"], body, raw) if fresh else None)
    return out


def _quote_stats(value: Any, text: str) -> GroundingStats:
    """Where a pass answer's quotes are in the document (its facts are judged on replay)."""
    aligner = Aligner(text)
    out = GroundingStats()
    for quote in quotes_in(value):
        out.quotes += 1
        status = aligner.align(quote).status.value
        setattr(out, status, getattr(out, status) + 1)
    return out


def _judge(
    doc_id: str, text: str, doc: Document, task: Any, result: ImportResult, pass_answer: bool
) -> None:
    """Does the answer validate as written, and how many of its quotes are in the document?

    A pass answer fills part of the schema: it is judged by the request's own schema
    (the tool's parameters) on replay; here its quotes are looked up.
    """
    if pass_answer:
        result.grounding[doc_id] = _quote_stats(json.loads(text), doc.text)
        return
    try:
        value = task.response_model.model_validate_json(text)
    except ValidationError:
        result.not_valid.append(doc_id)
        return
    result.grounding[doc_id] = stats(ground(value, doc.text))


def _write_manifest(
    store_dir: Path,
    old: dict[str, Any],
    replay: dict[str, Any],
    index: dict[str, Any],
    task: Any,
    provenance: str,
    answered_by: str,
    answers: dict[str, Any],
) -> None:
    data = {
        **old,
        **replay,
        "imported": True,
        "kind": KIND,
        "provenance": provenance,
        "answered_by": answered_by,
        "imported_on": dt.date.today().isoformat(),
        "usage": USAGE_NOTE,
        "note": "Every exchange here carries an answer written outside caseextract and "
        "imported with `caseextract import`; none is a response recorded from an API or "
        "a server. Re-asks are 0: an answer written once cannot answer a re-ask.",
        "brief_instruction": index.get("brief_instruction"),
        "prompt_set": index.get("prompt_set"),
        "prompt_version": task.prompt_set.version,
        "schema": task.response_model.__name__,
        "schema_version": task.schema_version,
        "caseextract_version": __version__,
        "cases": len(answers),
        "answers": dict(sorted(answers.items())),
    }
    if "passes" in index:  # one answer per pass: replay with the same --passes
        data.update(
            passes=index["passes"],
            passes_version=index.get("passes_version"),
            context_window=index.get("context_window"),
            cases=len({a.get("document") for a in answers.values()}),
        )
    text = redact(json.dumps(data, indent=1, ensure_ascii=False))  # a key pasted by mistake
    (store_dir / MANIFEST).write_text(text + "\n", encoding="utf-8")
