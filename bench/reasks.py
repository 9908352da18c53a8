"""The judge's cost in calls, and the re-ask requests it would send, exported for readers.

For an answer set — each document's first answer — this replays the pipeline's own
model call (``ModelClient.aextract`` with one re-ask allowed, instructor and the
openai client over a capturing transport: nothing is sent, no key) with the first
answer served from a store. When the judge re-asks, the re-ask request is captured
byte for byte, as the pipeline would send it, and written for an independent reader:

    <out>/<set>/<doc>.request.json   the exact request body (messages, tools, ...)
    <out>/<set>/<doc>.brief.txt      what the reader reads: the re-ask message and how
                                     to answer
    <out>/<set>/index.json           per document: the facts re-asked, the files

Sets: ``reference`` (the first answers of ``fixtures/recordings/reference-claude``,
what ``caseextract eval`` replays) and ``<split>/<set>`` of the judge data (the
independent labellers' correct facts served as the first answer, e.g. ``dev/correct``).
Printed per set: documents, documents re-asked, re-asks per 100 documents, facts
re-asked and their statuses.

    .venv/bin/python bench/reasks.py [--data fixtures/judge] [--out /tmp/reask-requests]
        [--sets reference dev/correct dev/correct-b test/correct test/correct-b]

A reader answers ``<doc>.request.json`` (as ``<doc>.brief.txt`` says) with the whole
corrected tool arguments in ``<doc>.answer.json`` beside it. Then

    .venv/bin/python bench/reasks.py --score /tmp/reask-requests/<set>

judges each answer and prints whether the correct facts survived: of the facts of
the first answer that were not re-asked, how many the answer keeps (same family,
same main value, same quotes) and how many it lost; of the re-asked ones, how many
come back grounded (same family and main value, any quotes), how many are dropped
(or renamed) and how many still fail. To replay the reference eval with the answers:

    .venv/bin/python bench/reasks.py --import /tmp/reask-requests/reference \\
        --store /tmp/reask-store --answered-by "who answered"
    caseextract eval --recordings /tmp/reask-store --out /tmp/reask-eval

stores each answer as the exchange of its ``<doc>.request.json`` (and the first answer
as the exchange of the request before it) in a copy of the reference store whose
manifest allows one re-ask.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, print_header

REFERENCE = ROOT / "fixtures" / "recordings" / "reference-claude"
CASES = ROOT / "fixtures" / "cases"
DATA = ROOT / "fixtures" / "judge"
OUT = Path("/tmp/reask-requests")
# what each line of a re-ask names (grounding.facts: the reasons and fixes it writes)
KINDS = ("not found", "no content", "do not state", "not in the report", "instructions")
DEFAULT_SETS = ("reference", "dev/correct", "dev/correct-b", "test/correct", "test/correct-b")
BRIEF = """\
This is a re-ask: a program checked the answer you gave to the request in
{request} and sends this message back. The request holds the whole conversation:
the instructions, the report, your first answer (the assistant's tool call) and,
last, the program's message below.

Answer as the request asks: write the complete arguments of the `{tool}` tool —
the whole corrected answer, every item, not only the items named — as one JSON
object in {answer}. Keep every item you still hold to be right, fix or drop the
items named, and use only the report.

The program's message:

{message}
"""


def settings():
    """The reference answers' settings (their manifest), with one re-ask allowed."""
    from caseextract.evals.runner import load_manifest, settings_from_manifest

    return dataclasses.replace(settings_from_manifest(load_manifest(REFERENCE)), reasks=1)


def reference_docs() -> list[tuple[str, Path, dict[str, Any] | None]]:
    """``(id, source, None)`` for each reference answer: its first answer is in the store."""
    manifest = json.loads((REFERENCE / "manifest.json").read_text(encoding="utf-8"))
    return [(doc, CASES / f"{doc}.txt", None) for doc in sorted(manifest["answers"])]


def judge_docs(folder: Path, cases: Path) -> list[tuple[str, Path, dict[str, Any] | None]]:
    """``(id, source, answer)`` for each gold file: its extraction is the first answer."""
    out = []
    for path in sorted(folder.glob("*.json")):
        gold = json.loads(path.read_text(encoding="utf-8"))
        out.append((gold["case_id"], cases / Path(gold["source"]).name, gold["extraction"]))
    return out


async def _first_answers(docs, task, folder: Path) -> None:
    """Store each first answer under the key of the first request the pipeline sends."""
    from caseextract.errors import ExtractError
    from caseextract.exchange.answers import completion
    from caseextract.llm.capture import capturing_client
    from caseextract.llm.recording import RecordingStore, exchange_key

    store = RecordingStore(folder, "record")
    now = dt.datetime.now(dt.UTC)
    async with capturing_client(settings()) as (client, captured):
        for doc, answer in docs:
            with contextlib.suppress(ExtractError):  # captured, never sent
                await client.aextract(task.messages(doc), task.response_model, doc.text)
            req = captured.captured[-1]
            body = completion(req, json.dumps(answer), "independent labeller", now)
            response = {"status": 200, "headers": {"content-type": "application/json"}}
            request = {"method": req.method, "path": req.path, "body": req.body}
            key = exchange_key(req.method, req.path, req.body)
            provenance = {
                "kind": "a labeller's correct facts served as a first answer, to export the "
                "re-ask it leads to: not an API recording",
                "document": doc.id,
            }
            store.put(key, request, {**response, "body": body}, None, provenance=provenance)


async def _reasks(docs, task, answers: Path) -> list[Any]:
    """The re-ask request of each document (None when the judge does not re-ask)."""
    from caseextract.errors import ExtractError
    from caseextract.llm.capture import capturing_client

    out = []
    async with capturing_client(settings(), answers) as (client, store):
        for doc in docs:
            before = len(store.captured)
            with contextlib.suppress(ExtractError):  # a re-ask is captured, never sent
                await client.aextract(task.messages(doc), task.response_model, doc.text)
            out.append(store.captured[-1] if len(store.captured) > before else None)
    return out


def export_set(name: str, docs, out: Path) -> dict[str, Any]:
    """Capture and write the re-ask requests of one answer set; the counts."""
    from caseextract.documents import load_document
    from caseextract.tasks import default_task

    task = default_task()
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    index: dict[str, Any] = {"set": name, "documents": []}
    counts = {"documents": 0, "reasked": 0, "facts": 0, "statuses": {}}

    loaded = [(load_document(source, doc_id), answer) for doc_id, source, answer in docs]
    with tempfile.TemporaryDirectory() as tmp:
        answers = REFERENCE
        if name != "reference":
            answers = Path(tmp)
            asyncio.run(_first_answers(loaded, task, answers))
        requests = asyncio.run(_reasks([d for d, _ in loaded], task, answers))
    for (doc, _), req in zip(loaded, requests, strict=True):
        counts["documents"] += 1
        if req is None:
            continue
        counts["reasked"] += 1
        message = _reask_message(req.body)
        named = [line for line in message.splitlines() if line.startswith("- ")]
        facts = [line[2:].split(" ", 1)[0] for line in named]
        counts["facts"] += len(facts)
        for line in named:
            for what in KINDS:
                if what in line:
                    counts["statuses"][what] = counts["statuses"].get(what, 0) + 1
        (folder / f"{doc.id}.request.json").write_text(
            json.dumps(req.body, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        tool = ((req.body.get("tools") or [{}])[0].get("function") or {}).get("name")
        brief = BRIEF.format(
            request=f"{doc.id}.request.json",
            tool=tool,
            answer=f"{doc.id}.answer.json",
            message=message,
        )
        (folder / f"{doc.id}.brief.txt").write_text(brief, encoding="utf-8")
        index["documents"].append(
            {
                "id": doc.id,
                "source": str(doc.path),
                "request": f"{doc.id}.request.json",
                "brief": f"{doc.id}.brief.txt",
                "answer": f"{doc.id}.answer.json",
                "request_sha256": hashlib.sha256(req.raw).hexdigest(),
                "reasked_facts": facts,
            }
        )
    (folder / "index.json").write_text(
        json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return counts


def _reask_message(body: dict[str, Any]) -> str:
    """The program's message of a re-ask request: its last message's text."""
    last = body["messages"][-1]
    content = last.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or "")


# ----------------------------------------------------------------- scoring answers


def _facts(value: Any) -> dict[tuple[str, str, tuple[str, ...]], str]:
    """Each fact of an answer by (family, main value, quotes) → its path."""
    from caseextract.grounding import iter_facts
    from caseextract.grounding.evidence import main_values

    out = {}
    for path, fact in iter_facts(value):
        family = re.sub(r"\[\d+\]", "", path)
        mains = main_values(fact)
        out[(family, mains[0][1] if mains else "", tuple(fact.evidence))] = path
    return out


def score(folder: Path) -> int:
    """Judge each ``<doc>.answer.json`` of an exported set against its first answer
    (the assistant's tool call in the request)."""
    from caseextract.documents import load_document
    from caseextract.grounding import ground
    from caseextract.schema import CaseReport

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    total = dict.fromkeys(("kept", "lost", "fixed", "dropped", "still failing"), 0)
    rows = []
    for entry in index["documents"]:
        answer_path = folder / entry["answer"]
        if not answer_path.is_file():
            continue
        doc = load_document(Path(entry["source"]), entry["id"])
        request = json.loads((folder / entry["request"]).read_text(encoding="utf-8"))
        call = next(m for m in request["messages"] if m.get("tool_calls"))
        before = CaseReport.model_validate_json(call["tool_calls"][0]["function"]["arguments"])
        after = CaseReport.model_validate_json(answer_path.read_text(encoding="utf-8"))
        judged = {f.path: f for f in ground(after, doc.text)}
        b, a = _facts(before), _facts(after)
        named = {key[:2]: path for key, path in a.items()}  # (family, main value) → path
        reasked = set(entry["reasked_facts"])
        row = dict.fromkeys(total, 0)
        for key, path in b.items():
            if path not in reasked:
                row["kept" if key in a else "lost"] += 1
            elif key[:2] not in named:  # no fact of that family and value any more
                row["dropped"] += 1
            else:
                row["fixed" if judged[named[key[:2]]].grounded else "still failing"] += 1
        for k, v in row.items():
            total[k] += v
        rows.append(f"  {entry['id'][:40]:<40} " + ", ".join(f"{k} {v}" for k, v in row.items()))
    if not rows:
        print(f"no answers (<doc>.answer.json) in {folder}")
        return 1
    print("facts not re-asked: kept/lost; facts re-asked: fixed/dropped/still failing")
    print("\n".join(rows))
    print("total: " + ", ".join(f"{k} {v}" for k, v in total.items()))
    return 0


def import_answers(folder: Path, store_dir: Path, answered_by: str) -> int:
    """Store each answered re-ask of an exported set, with the first answer it follows,
    as recorded exchanges that ``caseextract eval --recordings STORE`` replays with one
    re-ask (the reference set's store starts as a copy of the reference answers)."""
    from caseextract.exchange.answers import completion
    from caseextract.llm.capture import CapturedRequest
    from caseextract.llm.recording import RecordingStore, exchange_key

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    if not store_dir.exists():
        if index["set"] == "reference":
            shutil.copytree(REFERENCE, store_dir)
        else:
            store_dir.mkdir(parents=True)
            shutil.copy(REFERENCE / "manifest.json", store_dir / "manifest.json")
    store = RecordingStore(store_dir, "record")
    now = dt.datetime.now(dt.UTC)
    imported = {}
    for entry in index["documents"]:
        answer_path = folder / entry["answer"]
        if not answer_path.is_file():
            continue
        text = answer_path.read_text(encoding="utf-8").strip()
        json.loads(text)  # readable JSON, or stop here
        body = json.loads((folder / entry["request"]).read_text(encoding="utf-8"))
        first_body = {**body, "messages": body["messages"][:-2]}  # before the re-ask
        first_args = body["messages"][-2]["tool_calls"][0]["function"]["arguments"]
        for req_body, args, who in (
            (first_body, first_args, "the first answer of the exported set"),
            (body, text, answered_by),
        ):
            req = CapturedRequest("POST", "/v1/chat/completions", req_body, b"")
            key = exchange_key(req.method, req.path, req.body)
            if store.get(key) is not None:
                continue
            response = {
                "status": 200,
                "headers": {"content-type": "application/json"},
                "body": completion(req, args, who, now),
            }
            provenance = {
                "kind": "imported answer to an exported re-ask: not an API recording",
                "answered_by": who,
                "document": entry["id"],
            }
            store.put(
                key,
                {"method": req.method, "path": req.path, "body": req.body},
                response,
                None,
                provenance=provenance,
            )
        imported[entry["id"]] = {
            "answer_file": entry["answer"],
            "answer_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    manifest_path = store_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest.update(
        reasks=1,
        reask_answers=imported,
        reask_note=f"re-ask answers by {answered_by}, imported with bench/reasks.py "
        "--import: one re-ask per document, as the pipeline sends it",
    )
    manifest_path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(imported)} re-ask answer(s) stored in {store_dir}")
    return 0 if imported else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--sets", nargs="+", default=list(DEFAULT_SETS))
    parser.add_argument("--score", type=Path, help="judge the answers in an exported set")
    parser.add_argument(
        "--import", dest="import_", type=Path, help="store an exported set's answers"
    )
    parser.add_argument("--store", type=Path, help="with --import: the store to write")
    parser.add_argument("--answered-by", default="independent reader")
    args = parser.parse_args(argv)
    if args.score:
        return score(args.score)
    if args.import_:
        if args.store is None:
            parser.error("--import needs --store DIR")
        return import_answers(args.import_, args.store, args.answered_by)
    print_header("Re-asks the judge would send (first answers served, one re-ask allowed)")
    for name in args.sets:
        if name == "reference":
            docs = reference_docs()
        else:
            folder = args.data / name
            if not folder.is_dir():
                print(f"{name}: no such set under {args.data}")
                continue
            docs = judge_docs(folder, args.data / "cases")
        c = export_set(name.replace("/", "-"), docs, args.out)
        rate = 100 * c["reasked"] / c["documents"] if c["documents"] else 0.0
        print(
            f"{name:<15} {c['documents']:>3} documents, {c['reasked']:>2} re-asked "
            f"({rate:.0f} re-asks per 100 documents), {c['facts']} facts named "
            f"{c['statuses']}"
        )
    print(f"requests in {args.out}/<set>/ (index.json, <doc>.request.json, <doc>.brief.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
