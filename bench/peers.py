"""caseextract beside its peers: the raw openai SDK call, plain instructor, LangExtract.

One loopback server (its own process, so that its CPU is not the client's) answers
every tool with the same facts, each in its own format, all **crafted** from the
hand-labelled gold label of the document (never a model's output):

* tool-call requests (raw SDK, instructor, caseextract single and multi-pass):
  ``caseextract.testing.CraftedPasses`` cuts the gold label to the fields and the
  part of the report each request asks for;
* LangExtract requests (``response_format: json_object``, the chunk after the last
  ``Q: ``): ``{"extractions": [{"<category>": quote, "<category>_attributes": {...}}]}``
  with each gold fact whose first quote lies wholly inside that chunk.

Three parts, one run:

1. own CPU per document (``time.process_time`` of this process, all threads),
   concurrency 1 and 32, the seed report (2 kB) and ada-23 (87k characters);
2. alignment of the same quotes in the variants a PDF or web page produces, by
   LangExtract's resolver (``Resolver.align``, fuzzy on) and caseextract's
   ``Aligner``, both over the whole document;
3. long documents: calls, request bytes per document byte, facts lost or
   duplicated at chunk borders, through each tool's own chunking (LangExtract's
   ``max_char_buffer`` 1000 default; caseextract single pass: its multi-pass chunking
   refused the 16k and 24k windows tried here, so it is left out of this part).

LangExtract cannot share the project's venv: it needs google-genai, which pins
tenacity<9.2, and caseextract's HTTP retry needs tenacity 9.2 (``multiplier=``).
So its rows come from a second venv that holds it (``--langextract-only``):

    .venv/bin/python bench/peers.py --short-docs 8 --long-docs 2
    python3 -m venv bench/.venv-peers
    bench/.venv-peers/bin/pip install -e . langextract==1.7.1
    bench/.venv-peers/bin/python bench/peers.py --langextract-only \
        --out bench/results/peers-langextract.txt
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import re
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from _common import GOLD, ROOT, SERVER_LIFETIME_S, copy_documents, machine_line, table

SHORT = "seed-vertebroplasty-cement-leakage"
LONG = "ada-23-the-narcotic-bowel-syndrome-clinical-features-pa"
RESULTS = ROOT / "bench" / "results" / "peers.txt"
_CHUNK = re.compile(r"\nQ: (.*)\nA: ?\s*$", re.S)


def gold(case: str) -> tuple[str, dict[str, Any]]:
    data = json.loads((GOLD / f"{case}.json").read_text(encoding="utf-8"))
    text = (ROOT / "fixtures" / data["source"]).read_text(encoding="utf-8")
    return text, data["extraction"]


def facts(value: Any, category: str = "article") -> list[tuple[str, str, str]]:
    """(category, name, first quote) of every fact with evidence in a JSON answer."""
    out: list[tuple[str, str, str]] = []
    if isinstance(value, list):
        for v in value:
            out += facts(v, category)
    elif isinstance(value, dict):
        quotes = [q for q in value.get("evidence") or [] if isinstance(q, str)]
        if quotes:
            name = next(
                (str(value[k]) for k in ("name", "description", "event", "label", "value")
                 if value.get(k)), category,
            )  # fmt: skip
            out.append((category, name, quotes[0]))
        for k, v in value.items():
            if k != "evidence" and isinstance(v, list | dict):
                out += facts(v, k)
    return out


# --------------------------------------------------------------------------- server


class PeerResponder:
    """Dispatches a request to the crafted answer in its tool's own format."""

    def __init__(self, cases: list[str]) -> None:
        from caseextract.testing import CraftedPasses

        self.docs = [gold(c) for c in cases]
        self.tools = CraftedPasses(self.docs, budget=None)

    def langextract_answer(self, prompt: str) -> str:
        m = _CHUNK.search(prompt)
        chunk = m.group(1) if m else ""
        out = []
        for text, extraction in self.docs:
            if chunk and chunk[:200] in text:
                for category, name, quote in facts(extraction):
                    if quote in chunk:
                        out.append({category: quote, f"{category}_attributes": {"name": name}})
                break
        return json.dumps({"extractions": out})

    def __call__(self, payload: dict[str, Any], index: int) -> Any:
        from caseextract.testing import Reply, crafted_text_completion

        if payload.get("tools"):
            return self.tools(payload, index)
        prompt = "\n".join(str(m.get("content")) for m in payload.get("messages") or [])
        return Reply(body=crafted_text_completion(self.langextract_answer(prompt)))


def _serve(cases: list[str], ready: Any, stop: Any) -> None:
    import socketserver
    from http.server import ThreadingHTTPServer

    from caseextract.testing import FakeOpenAIServer

    ThreadingHTTPServer.request_queue_size = 256
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    server = FakeOpenAIServer(PeerResponder(cases))
    server.requests = _Counted()
    server.start()
    ready.put(server.base_url)
    stop.wait(SERVER_LIFETIME_S)
    server.stop()


class _Counted(list):
    def append(self, item: Any) -> None:  # keep no request bodies
        pass


# --------------------------------------------------------------------------- arms


def captured_request(case: str) -> dict[str, Any]:
    """The pipeline's own request body for ``case`` (captured at an in-process server)."""
    from caseextract.llm import ModelClient, ModelSettings
    from caseextract.pipeline.passes.multipass import PassConfig
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task
    from caseextract.testing import FakeOpenAIServer

    text_path = ROOT / "fixtures" / json.loads((GOLD / f"{case}.json").read_text())["source"]
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAIServer(PeerResponder([case])) as srv:
        client = ModelClient(
            ModelSettings(model="crafted-model", base_url=srv.base_url, max_tokens=32768)
        )
        with ResultWriter(Path(tmp) / "r.jsonl", resume=False) as w:
            runner = Runner(default_task(), client, w, 1, passes=PassConfig(strategy="single"))
            asyncio.run(runner.run([text_path]))
        request = dict(srv.requests[0])
    request.pop("_path", None)
    request.pop("_bytes", None)
    return request


async def _gather(n: int, concurrency: int, one: Any) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(run(i) for i in range(n)))


def arm_raw(base_url: str, request: dict[str, Any], n: int, c: int) -> None:
    import openai

    async def go() -> None:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="no-key-needed", max_retries=0)

        async def one(_: int) -> None:
            await client.chat.completions.create(**request)

        await _gather(n, c, one)
        await client.close()

    asyncio.run(go())


def arm_instructor(base_url: str, request: dict[str, Any], n: int, c: int) -> None:
    import instructor
    import openai
    from caseextract.schema import CaseReport

    async def go() -> None:
        raw = openai.AsyncOpenAI(base_url=base_url, api_key="no-key-needed", max_retries=0)
        client = instructor.from_openai(raw, mode=instructor.Mode.TOOLS)

        async def one(_: int) -> None:
            await client.chat.completions.create(
                model="crafted-model",
                messages=request["messages"],
                response_model=CaseReport,
                max_retries=0,
            )

        await _gather(n, c, one)
        await raw.close()

    asyncio.run(go())


def langextract_examples() -> list[Any]:
    from langextract import data

    text = "Case 1: a 70-year-old woman had fever. No neurologic deficit was found."
    return [
        data.ExampleData(
            text=text,
            extractions=[
                data.Extraction("findings", "fever", attributes={"name": "fever"}),
                data.Extraction(
                    "findings", "No neurologic deficit", attributes={"name": "neurologic deficit"}
                ),
            ],
        )
    ]


def langextract_run(base_url: str, texts: list[str], c: int, buffer: int = 1000) -> list[Any]:
    import langextract as lx
    from langextract import data
    from langextract.prompt_validation import PromptValidationLevel
    from langextract.providers.openai import OpenAILanguageModel

    model = OpenAILanguageModel(
        model_id="crafted-model", api_key="no-key-needed", base_url=base_url, max_workers=c
    )
    docs = [data.Document(text=t, document_id=f"d{i}") for i, t in enumerate(texts)]
    out = lx.extract(
        docs,
        prompt_description="Extract the clinical facts of the case report, quoting the text.",
        examples=langextract_examples(),
        model=model,
        fence_output=False,
        use_schema_constraints=False,
        max_char_buffer=buffer,
        batch_length=max(c, 1),
        max_workers=c,
        show_progress=False,
        prompt_validation_level=PromptValidationLevel.OFF,
    )
    return list(out)


def arm_langextract(base_url: str, text: str, n: int, c: int) -> None:
    langextract_run(base_url, [text] * n, c)


def arm_caseextract(base_url: str, path: Path, n: int, c: int, *, strategy: str) -> None:
    from caseextract.llm import ModelClient, ModelSettings
    from caseextract.pipeline.passes.multipass import PassConfig
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task

    with tempfile.TemporaryDirectory() as tmp:
        paths = copy_documents(path.stem, Path(tmp) / "docs", n)  # distinct document ids
        settings = ModelSettings(
            model="crafted-model", base_url=base_url, http_retries=0, max_tokens=32768
        )
        client = ModelClient(settings)
        with ResultWriter(Path(tmp) / "r.jsonl", resume=False) as writer:
            runner = Runner(
                default_task(),
                client,
                writer,
                concurrency=c,
                passes=PassConfig(strategy=strategy, resume=False),
            )
            summary = asyncio.run(runner.run(paths))
        assert summary.ok == len(paths), summary.failed_docs[:2]


def have_langextract() -> bool:
    try:
        import langextract  # noqa: F401
    except ImportError:
        return False
    return True


ONLY_LANGEXTRACT = False  # --langextract-only: its rows alone (run from the peers' venv)


def part_cpu(base_url: str, short_n: int, long_n: int) -> list[list[str]]:
    rows = []
    lx = have_langextract()
    for case, n_docs in ((SHORT, short_n), (LONG, long_n)):
        text, _ = gold(case)
        path = ROOT / "fixtures" / "cases" / f"{case}.txt"
        request = {} if ONLY_LANGEXTRACT else captured_request(case)
        arms = {
            "raw openai SDK": partial(arm_raw, base_url, request),
            "plain instructor (TOOLS, CaseReport)": partial(arm_instructor, base_url, request),
            "LangExtract extract()": partial(arm_langextract, base_url, text) if lx else None,
            "caseextract single": partial(arm_caseextract, base_url, path, strategy="single"),
            "caseextract multi-pass": partial(arm_caseextract, base_url, path, strategy="multi"),
        }
        for c in (1, 32):
            n = n_docs if c == 1 else max(n_docs, 32 if case == SHORT else 2 * n_docs)
            raw_cpu = None
            for name, fn in arms.items():
                if ONLY_LANGEXTRACT and name != "LangExtract extract()":
                    continue
                if fn is None:
                    rows.append([case[:6], str(c), name, "-", "-", "not installed"])
                    continue
                fn(1, 1)  # warm-up: imports, lazy caches, first connection
                t0, w0 = time.process_time(), time.perf_counter()
                fn(n, c)
                cpu = (time.process_time() - t0) / n
                wall = (time.perf_counter() - w0) / n
                raw_cpu = raw_cpu or cpu
                rows.append(
                    [
                        f"{case[:6]} ({len(text) // 1000}k)",
                        str(c),
                        name,
                        f"{cpu * 1000:.1f}",
                        f"{wall * 1000:.1f}",
                        "-" if ONLY_LANGEXTRACT else f"{cpu / raw_cpu:.1f}x",
                    ]
                )
    return rows


# --------------------------------------------------------------------------- alignment

_SENTENCE = re.compile(r"[A-Z][^.!?\n]{50,220}[.!?]")
LIGATURES = {"ffi": "\ufb03", "ffl": "\ufb04", "fi": "\ufb01", "fl": "\ufb02", "ff": "\ufb00"}


def _hyphenate(s: str, rng: random.Random) -> str:
    words = [i for i, w in enumerate(s.split(" ")) if len(w) >= 8 and w.isalpha()]
    if not words:
        return s
    parts = s.split(" ")
    i = rng.choice(words)
    w = parts[i]
    parts[i] = w[: len(w) // 2] + "-\n" + w[len(w) // 2 :]
    return " ".join(parts)


def _ligatures(s: str, rng: random.Random) -> str:
    for plain, lig in LIGATURES.items():
        s = s.replace(plain, lig)
    return s


def _curly(s: str, rng: random.Random) -> str:
    s = s.replace("-", "\u2013").replace("'", "\u2019")
    return re.sub(r'"([^"]*)"', "\u201c\\1\u201d", s)


def _nbsp(s: str, rng: random.Random) -> str:
    return re.sub(r"(\d) ", "\\1\u00a0", s).replace(" ", "\u00a0", 2)


def _spaces(s: str, rng: random.Random) -> str:
    parts = s.split(" ")
    for _ in range(2):
        i = rng.randrange(1, len(parts))
        parts[i] = ("  " if rng.random() < 0.5 else "\n") + parts[i]
    return " ".join(parts)


# document-side variants: the page holds them, the model's quote is the clean sentence
DOC_VARIANTS = {
    "line-end hyphenation": (_hyphenate, lambda s: any(len(w) >= 8 for w in s.split())),
    "ligatures": (_ligatures, lambda s: any(k in s for k in LIGATURES)),
    "curly quotes and dashes": (_curly, lambda s: "-" in s or "'" in s or '"' in s),
    "non-breaking spaces": (_nbsp, lambda s: True),
    "extra whitespace": (_spaces, lambda s: True),
}


def _typo(s: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(s) if ch.isalpha()]
    i = rng.choice(letters[2:-2])
    return s[:i] + ("e" if s[i] != "e" else "a") + s[i + 1 :]


def variants(text: str, n: int, rng: random.Random) -> list[tuple[str, str, str, tuple | None]]:
    """(variant, document, quote, expected span or None) for ``n`` quotes per variant."""
    seen = Counter(m.group(0) for m in _SENTENCE.finditer(text))
    pool = [s for s, k in seen.items() if k == 1 and text.count(s) == 1]
    out = []
    for name, (change, fits) in DOC_VARIANTS.items():
        chosen = sorted(rng.sample([s for s in pool if fits(s)], n), key=text.find)
        doc, shift, spans = [], 0, []
        cursor = 0
        for s in chosen:
            at = text.find(s)
            doc.append(text[cursor:at])
            new = change(s, rng)
            start = at + shift
            spans.append((s, (start, start + len(new))))
            doc.append(new)
            shift += len(new) - len(s)
            cursor = at + len(s)
        doc.append(text[cursor:])
        page = "".join(doc)
        out += [(name, page, quote, span) for quote, span in spans]
    for s in rng.sample(pool, n):
        at = text.find(s)
        out.append(("one typo in the quote", text, _typo(s, rng), (at, at + len(s))))
    for a, b in zip(rng.sample(pool, n), rng.sample(pool, n), strict=True):
        if a == b:
            continue
        wa, wb = a.split(" "), b.split(" ")
        stitched = " ".join(wa[: len(wa) // 2] + wb[len(wb) // 2 :])
        out.append(("quote stitched from two sentences", text, stitched, None))
    return out


VERDICTS = ("exact", "found", "wrong", "none")


def _verdict(span: tuple[int, int] | None, expected: tuple[int, int] | None) -> str:
    if span is None:
        return "none"
    if expected is None:
        return "wrong"
    if span == expected:
        return "exact"
    lo, hi = max(span[0], expected[0]), min(span[1], expected[1])
    return "found" if hi - lo >= 0.5 * (expected[1] - expected[0]) else "wrong"


def part_alignment(quotes: int, seed: int) -> tuple[list[list[str]], str]:
    from caseextract.grounding import Aligner

    text, _ = gold(LONG)
    per = max(1, quotes // (len(DOC_VARIANTS) + 2))
    cases = variants(text, per, random.Random(seed))
    tools: dict[str, Any] = {}
    aligners: dict[int, Any] = {}

    def ours(page: str, quote: str) -> tuple[int, int] | None:
        aligner = aligners.setdefault(id(page), Aligner(page))
        a = aligner.align(quote)
        return (a.start, a.end) if a.grounded else None

    if not ONLY_LANGEXTRACT:
        tools["caseextract Aligner"] = ours
    if have_langextract():
        from langextract import data
        from langextract.resolver import Resolver

        resolver = Resolver(fence_output=False, format_type=data.FormatType.JSON)

        def theirs(page: str, quote: str) -> tuple[int, int] | None:
            ext = data.Extraction("fact", quote)
            got = list(resolver.align([ext], page, 0, 0, enable_fuzzy_alignment=True))
            ci = got[0].char_interval if got else None
            if ci is None or ci.start_pos is None:
                return None
            return (ci.start_pos, ci.end_pos)

        tools["LangExtract Resolver.align"] = theirs
    tally: dict[tuple[str, str], Counter[str]] = {}
    times: Counter[str] = Counter()
    for name, page, quote, expected in cases:
        for tool, fn in tools.items():
            t = time.process_time()
            verdict = _verdict(fn(page, quote), expected)
            times[tool] += time.process_time() - t
            tally.setdefault((name, tool), Counter())[verdict] += 1
    rows = []
    for (name, tool), c in tally.items():
        n = sum(c.values())
        rows.append([name, tool, str(n), *(str(c[k]) for k in VERDICTS)])
    for tool in tools:
        c = sum((v for (_, t), v in tally.items() if t == tool), Counter())
        rows.append(["all", tool, str(sum(c.values())), *(str(c[k]) for k in VERDICTS)])
    note = "CPU per quote: " + ", ".join(
        f"{tool} {times[tool] / len(cases) * 1000:.2f} ms" for tool in tools
    )
    return rows, note


# --------------------------------------------------------------------------- chunk borders


def part_chunks() -> list[list[str]]:
    from caseextract.llm import ModelClient, ModelSettings
    from caseextract.pipeline.passes.multipass import PassConfig
    from caseextract.pipeline.runner import Runner
    from caseextract.store import ResultWriter
    from caseextract.tasks import default_task
    from caseextract.testing import FakeOpenAIServer

    text, extraction = gold(LONG)
    want = Counter((c, q) for c, _, q in facts(extraction))
    rows = []

    def counts(got: Counter[tuple[str, str]]) -> tuple[int, int]:
        lost = sum(max(0, k - got[key]) for key, k in want.items())
        dup = sum(max(0, k - want[key]) for key, k in got.items() if key in want)
        return lost, dup

    with FakeOpenAIServer(PeerResponder([LONG])) as srv:
        if have_langextract():
            t = time.process_time()
            out = langextract_run(srv.base_url, [text], 1)
            cpu = time.process_time() - t
            got = Counter((e.extraction_class, e.extraction_text) for e in out[0].extractions)
            sent = sum(r["_bytes"] for r in srv.requests)
            lost, dup = counts(got)
            rows.append(
                ["LangExtract (max_char_buffer 1000)", str(len(srv.requests)),
                 f"{sent / len(text):.1f}", f"{cpu * 1000:.0f}", str(sum(want.values())),
                 str(lost), str(dup)]
            )  # fmt: skip
            srv.requests.clear()
        for label, spec in (("caseextract single", {"strategy": "single"}),)[
            : 0 if ONLY_LANGEXTRACT else 1
        ]:
            with tempfile.TemporaryDirectory() as tmp:
                settings = ModelSettings(
                    model="crafted-model", base_url=srv.base_url, max_tokens=32768
                )
                with ResultWriter(Path(tmp) / "r.jsonl", resume=False) as writer:
                    runner = Runner(
                        default_task(),
                        ModelClient(settings),
                        writer,
                        passes=PassConfig(resume=False, **spec),
                    )
                    path = ROOT / "fixtures" / "cases" / f"{LONG}.txt"
                    t = time.process_time()
                    asyncio.run(runner.run([path]))
                    cpu = time.process_time() - t
                record = json.loads((Path(tmp) / "r.jsonl").read_text().splitlines()[-1])
            if record.get("status") != "ok":
                label += f" (failed: {(record.get('error') or {}).get('message', '')[:60]})"
            got = Counter((c, q) for c, _, q in facts(record.get("extraction") or {}))
            sent = sum(r["_bytes"] for r in srv.requests)
            lost, dup = counts(got)
            rows.append(
                [label, str(len(srv.requests)), f"{sent / len(text):.1f}", f"{cpu * 1000:.0f}",
                 str(sum(want.values())), str(lost), str(dup)]
            )  # fmt: skip
            srv.requests.clear()
    return rows


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quotes", type=int, default=200)
    ap.add_argument("--short-docs", type=int, default=16)
    ap.add_argument("--long-docs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--langextract-only",
        action="store_true",
        help="only the raw SDK and LangExtract rows (for a venv that holds langextract)",
    )
    args = ap.parse_args()
    global ONLY_LANGEXTRACT
    ONLY_LANGEXTRACT = args.langextract_only
    lines = ["== bench/peers.py: caseextract beside its peers (crafted answers)", machine_line()]
    if not have_langextract():
        lines.append(
            "LangExtract not in this venv: its rows come from bench/.venv-peers (module docstring)"
        )
    else:
        import langextract

        lines.append(f"langextract {getattr(langextract, '__version__', '?')}")

    def show(title: str, body: str) -> None:
        lines.extend(["", title, body])
        print("\n".join(lines[-3:]), flush=True)

    print("\n".join(lines), flush=True)
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=([SHORT, LONG], ready, stop), daemon=True)
    proc.start()
    try:
        base_url = ready.get(timeout=120)
        rows = part_cpu(base_url, args.short_docs, args.long_docs)
        show(
            "1. own CPU per document (this process; the server runs in another)",
            table(rows, ["document", "conc.", "tool", "CPU ms/doc", "wall ms/doc", "vs raw"]),
        )
    finally:
        stop.set()
        proc.join(timeout=10)
    rows, note = part_alignment(args.quotes, args.seed)
    show(
        f"2. alignment of quotes in {LONG[:6]} (87k chars) in PDF/web variants; "
        "exact = the true span, found = half of it or more, wrong = a span elsewhere, "
        "none = no span (right for stitched quotes)",
        table(rows, ["variant", "tool", "n", "exact", "found", "wrong", "none"]) + "\n" + note,
    )
    show(
        "3. long document (ada-23), each tool's own chunking; "
        "request bytes per document byte; facts = gold facts by (category, first quote)",
        table(
            part_chunks(),
            ["tool", "calls", "sent/doc", "CPU ms", "facts", "lost", "duplicated"],
        ),
    )
    lines.append("load average after: " + " ".join(Path("/proc/loadavg").read_text().split()[:3]))
    print(lines[-1])
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
