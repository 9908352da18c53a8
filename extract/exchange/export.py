"""Requests out, answers in: export the exact requests, import answers written elsewhere.

``export`` writes, per document, the request body that ``run`` would send — built
by the same code path (``ModelClient.aextract`` through instructor and the openai
client) and captured at the HTTP boundary, never sent (``llm.capture``) — as
``<doc>.request.json``, a plain-text ``<doc>.brief.txt`` for a human or a model
answering by hand, and ``index.json``. Nothing leaves the machine.

Each request has a *fingerprint*: a hash of what the model reads (messages, tools,
tool choice, response format), independent of the parameters (model name,
max_tokens, temperature). An answer is valid for a fingerprint; re-exporting after
a prompt or schema change names the answers that became stale.

``import_answers`` (in ``answers``) turns ``<doc>.answer.json`` files into
recorded exchanges that ``run``/``eval`` replay unchanged.

**Multi-pass requests** (``passes`` multi or auto) are exported round by round,
because a pass depends on the answers before it: the first export holds each
document's plan request; once its answers are imported into a store, exporting
again with that store (``answers``) replays them through the pipeline and
captures the requests they lead to (one per patient, the document-level lists,
the chunks). Each is an entry of its own (``pass``: what it asks for), named
``<doc>.<pass>-<fingerprint[:8]>``; the entries of earlier rounds stay in the
index, so one import takes them all. A pass entry is valid for the prompt set's
``passes_version`` it was exported with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caseextract._version import __version__
from caseextract.documents import Document, load_document, safe_filename
from caseextract.errors import ExchangeError
from caseextract.fileio import write_atomic
from caseextract.llm import ModelSettings
from caseextract.llm.capture import Call, CapturedRequest, capture, capturing_client
from caseextract.llm.recording import canonical
from caseextract.llm.responses import as_chat_request
from caseextract.pipeline.passes.multipass import PassConfig
from caseextract.pipeline.runner import Runner
from caseextract.records import utc_now
from caseextract.store import ResultWriter
from caseextract.tasks import Task

INDEX = "index.json"
INDEX_FORMAT = "caseextract-requests/1"
READ_KEYS = ("messages", "tools", "tool_choice", "response_format")
ENTRY_KEYS = ("id", "sha256", "source", "request", "answer", "fingerprint")


def request_fingerprint(body: dict[str, Any]) -> str:
    """sha256 of what the model reads: messages + tools/tool_choice/response_format
    (a Responses request read as the chat request it stands for)."""
    body = as_chat_request(body)
    read = {k: body.get(k) for k in READ_KEYS if body.get(k) is not None}
    return hashlib.sha256(canonical(read).encode("utf-8")).hexdigest()


def capture_requests(
    task: Task, settings: ModelSettings, docs: Sequence[Document]
) -> list[CapturedRequest]:
    """The first request ``run`` would send for each document, captured, not sent:
    the same messages and response model that ``Runner.process`` passes on."""
    calls = [Call(task.messages(doc), task.response_model, doc.text) for doc in docs]
    return capture(settings, calls)


def multi_pass(passes: PassConfig | None) -> bool:
    return passes is not None and passes.strategy != "single"


async def _acapture_passes(
    task: Task,
    settings: ModelSettings,
    docs: Sequence[Document],
    passes: PassConfig,
    answers: Path | None,
    replayed: set[str],
) -> list[tuple[Document, CapturedRequest]]:
    config = dataclasses.replace(passes, resume=False, store_dir=None)
    out: list[tuple[Document, CapturedRequest]] = []
    replayed.clear()
    async with capturing_client(settings, answers) as (client, store):
        tmp = tempfile.TemporaryDirectory()  # the throwaway results of the replayed runs
        with tmp, ResultWriter(Path(tmp.name) / "results.jsonl", resume=False) as writer:
            ids = {d.path: d.id for d in docs}
            runner = Runner(task, client, writer, 1, ids=ids, passes=config)
            for doc in docs:
                before = len(store.captured)
                await runner.process(doc.path)
                out += [(doc, req) for req in store.captured[before:]]
        replayed.update(request_fingerprint(b) for b in store.replayed)
    return out


def capture_pass_requests(
    task: Task,
    settings: ModelSettings,
    docs: Sequence[Document],
    passes: PassConfig,
    answers: Path | None = None,
    replayed: set[str] | None = None,
) -> list[tuple[Document, CapturedRequest]]:
    """The requests the pipeline would send next for each document, multi-pass.

    The pipeline runs for real (``Runner`` with ``passes``); every request with an
    answer in ``answers`` is answered from it, every other one is captured and
    refused, so a document yields the requests of its next round: the plan when
    nothing is answered, the fills once the plan is, nothing once all are.
    ``replayed`` receives the fingerprints of the requests answered from ``answers``.
    """
    seen: set[str] = set() if replayed is None else replayed
    return asyncio.run(_acapture_passes(task, settings, docs, passes, answers, seen))


def pass_name(body: dict[str, Any]) -> str:
    """What a pass request asks for, read from its system message (for names and briefs)."""
    body = as_chat_request(body)
    messages = body.get("messages") or [{}]
    system = _text(messages[0].get("content"))
    if "planning pass" in system:
        name = "plan"
    else:
        found = re.search(r"«(.+?)»", system)
        name = f"fill {found.group(1)}" if found else "fill report"
    part = re.search(r"characters (\d+) to (\d+) of \d+", system)
    if part:
        name += f" chars {part.group(1)}-{part.group(2)}"
    return name


# ------------------------------------------------------------------ the brief


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def answer_schema(body: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """The tool's name and the JSON schema of its arguments (or of the response format)."""
    body = as_chat_request(body)
    tools = body.get("tools") or []
    if tools:
        fn = tools[0].get("function", {})
        return fn.get("name"), fn.get("parameters")
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema", {})
        return spec.get("name"), spec.get("schema")
    return None, None


def answer_instruction(answer_file: str, tool: str | None) -> list[str]:
    """What every brief tells the reader (also kept in the index and the store's manifest)."""
    what = f"the arguments of the tool `{tool}`" if tool else "the JSON the messages ask for"
    return [
        "Read the system message (the instructions) and the user message (the report) below.",
        f"Your answer is ONE JSON object: {what}, matching the JSON schema at the end.",
        "Write nothing else: no prose before or after, no Markdown code fence.",
        f"Save it as {answer_file} beside this file.",
    ]


def render_brief(doc_id: str, answer_file: str, body: dict[str, Any]) -> str:
    """A plain-text rendering of one request, for a human or a model answering by hand."""
    body = as_chat_request(body)
    name, schema = answer_schema(body)
    lines = [f"caseextract request for document {doc_id}", "", "HOW TO ANSWER"]
    lines += [*answer_instruction(answer_file, name), ""]
    for i, m in enumerate(body.get("messages") or []):
        lines += [f"===== MESSAGE {i + 1}: {str(m.get('role', '?')).upper()} =====", ""]
        lines += [_text(m.get("content")), ""]
    if name:
        tools = body.get("tools") or []
        description = tools[0].get("function", {}).get("description") if tools else None
        lines += [f"===== TOOL `{name}` =====", "", description or "(no description)", ""]
    if schema is not None:
        lines += ["===== JSON SCHEMA OF THE ANSWER =====", ""]
        lines += [json.dumps(schema, indent=2, ensure_ascii=False), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ export


def file_stem(doc_id: str) -> str:
    return safe_filename(doc_id)


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as fh:  # streamed: an answer file may be large
        return hashlib.file_digest(fh, "sha256").hexdigest()


def answered_fingerprint(entry: dict[str, Any], answer: Path) -> str:
    """The fingerprint of the request an answer file answers.

    An answer seen by an earlier export (same bytes) answers what it answered
    then; an answer written or rewritten since the export answers its request.
    """
    seen = entry.get("answer_seen")
    if seen and seen.get("sha256") == file_sha256(answer):
        return str(seen.get("for"))
    return str(entry["fingerprint"])


def read_index(folder: Path) -> dict[str, Any]:
    path = Path(folder) / INDEX
    if not path.is_file():
        raise ExchangeError(f"{path} not found: export the requests first (caseextract export)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExchangeError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise ExchangeError(f"{path}: not a caseextract request index ({INDEX_FORMAT})")
    for i, entry in enumerate(index.get("documents") or []):
        lacking = [k for k in ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if lacking:
            raise ExchangeError(f"{path}: document {i + 1} lacks {', '.join(lacking)}")
    return index


def _write(path: Path, text: str) -> None:
    write_atomic(path, text, fsync=False)


@dataclass
class ExportResult:
    index: dict[str, Any]
    stale: list[str]  # documents whose answer file was written for another request


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "pass"


def _load_documents(paths: Sequence[Path]) -> list[Document]:
    docs = [load_document(Path(p)) for p in paths]
    seen: dict[str, str] = {}
    for doc in docs:
        stem = file_stem(doc.id)
        if stem in seen and seen[stem] != str(doc.path):
            raise ExchangeError(f"two documents export to {stem}: {seen[stem]} and {doc.path}")
        seen[stem] = str(doc.path)
    return docs


def _entry(doc: Document, req: CapturedRequest, by_pass: bool) -> dict[str, Any]:
    """The index entry of one exported request (one per pass when ``by_pass``)."""
    stem, entry_id = file_stem(doc.id), doc.id
    fingerprint = request_fingerprint(req.body)
    extra: dict[str, Any] = {}
    if by_pass:
        name = pass_name(req.body)
        suffix = f"{_slug(name)}-{fingerprint[:8]}"
        stem, entry_id = f"{stem}.{suffix}", f"{doc.id}.{suffix}"
        extra = {"document": doc.id, "pass": name}
    return {
        "id": entry_id,
        **extra,
        "sha256": doc.sha256,
        "chars": len(doc.text),
        "source": str(doc.path),
        "source_abs": str(doc.path.resolve()),
        "request": f"{stem}.request.json",
        "brief": f"{stem}.brief.txt",
        "answer": f"{stem}.answer.json",
        "method": req.method,
        "path": req.path,
        "fingerprint": fingerprint,
        "body_sha256": hashlib.sha256(req.raw).hexdigest(),
    }


def _earlier_rounds(
    old: dict[str, dict[str, Any]],
    entries: list[dict[str, Any]],
    docs: Sequence[Document],
    replayed: set[str],
    out_dir: Path,
) -> list[str]:
    """Keep the entries of earlier rounds whose answers the pipeline still replays;
    return those with an answer file that it no longer asks for (stale)."""
    stale = []
    taken = {e["id"] for e in entries}
    exported = {d.id for d in docs}
    for entry in old.values():
        if entry["id"] in taken or entry.get("document") not in exported:
            continue
        if entry["fingerprint"] in replayed:
            entries.append(entry)
        elif (out_dir / entry["answer"]).is_file():
            stale.append(entry["id"])
    entries.sort(key=lambda e: (e["document"], e["pass"] != "plan", e["id"]))
    return stale


def _index(
    task: Task,
    settings: ModelSettings,
    prompt_set_arg: str,
    schema_arg: str | None,
    first: dict[str, Any] | None,
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    instruction = None
    if first:
        instruction = " ".join(answer_instruction("<doc>.answer.json", answer_schema(first)[0]))
    return {
        "format": INDEX_FORMAT,
        "exported_at": utc_now(),
        "caseextract_version": __version__,
        "prompt_set": prompt_set_arg,
        "prompt_version": task.prompt_set.version,
        "schema": schema_arg,
        "schema_name": task.response_model.__name__,
        "schema_version": task.schema_version,
        # the server address is not part of a request body, and may hold credentials
        "settings": {k: v for k, v in settings.public().items() if k != "base_url"},
        "brief_instruction": instruction,
        "fingerprint": "sha256 of the canonical JSON of messages, tools, tool_choice and "
        "response_format: what the model reads, not the parameters",
        "documents": entries,
    }


def export_requests(
    paths: Sequence[Path],
    out_dir: Path,
    task: Task,
    settings: ModelSettings,
    prompt_set_arg: str,
    schema_arg: str | None,
    passes: PassConfig | None = None,
    answers: Path | None = None,
) -> ExportResult:
    """Write request, brief and index files for ``paths`` into ``out_dir``.

    Answers already in ``out_dir`` keep the fingerprint they were written for
    (``answer_seen``: the answer file's sha256 and that fingerprint); those that
    no longer match are returned as stale. With multi-pass ``passes`` the
    requests of each document's next round are written (see the module
    docstring); ``answers`` is the store holding the answers of earlier rounds.
    """
    out_dir = Path(out_dir)
    docs = _load_documents(paths)
    old: dict[str, dict[str, Any]] = {}
    if (out_dir / INDEX).is_file():
        old = {e["id"]: e for e in read_index(out_dir).get("documents", [])}
    by_pass = multi_pass(passes) or answers is not None
    replayed: set[str] = set()
    if by_pass:
        if answers is not None and not Path(answers).is_dir():
            raise ExchangeError(f"{answers}: no such answer store (import the answers first)")
        config = passes or PassConfig(strategy="single")
        pairs = capture_pass_requests(task, settings, docs, config, answers, replayed)
    else:
        pairs = list(zip(docs, capture_requests(task, settings, docs), strict=True))
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, stale = [], []
    for doc, req in pairs:
        entry = _entry(doc, req, by_pass)
        answer = out_dir / entry["answer"]
        if answer.is_file():
            before = old.get(entry["id"])
            answer_for = answered_fingerprint(before, answer) if before else "unknown"
            entry["answer_seen"] = {"sha256": file_sha256(answer), "for": answer_for}
            if answer_for != entry["fingerprint"]:
                stale.append(entry["id"])
        _write(out_dir / entry["request"], json.dumps(req.body, indent=1, ensure_ascii=False))
        _write(out_dir / entry["brief"], render_brief(entry["id"], entry["answer"], req.body))
        entries.append(entry)
    if by_pass:
        stale += _earlier_rounds(old, entries, docs, replayed, out_dir)
    index = _index(task, settings, prompt_set_arg, schema_arg, pairs[0][1].body if pairs else None,
                   entries)  # fmt: skip
    if by_pass:
        index["passes"] = passes.strategy if passes is not None else "single"
        index["passes_version"] = task.prompt_set.passes_version
        if passes is not None and passes.context_window:
            index["context_window"] = passes.context_window
    _write(out_dir / INDEX, json.dumps(index, indent=1, ensure_ascii=False) + "\n")
    return ExportResult(index, stale)
