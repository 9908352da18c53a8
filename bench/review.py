"""The review app and the summary report at size.

1. A 90k-character document with 300 facts: the longest fixture (ada-23, 87.9k
   characters) followed by the start of ada-09, and 300 findings whose evidence is
   a sentence of that text (every 10th a sentence that is not in it, so that some
   facts are problems). The record is built as the pipeline builds one (validated
   against CaseReport, grounded); its answer is crafted here, not a model's.
   Measured over real HTTP on 127.0.0.1: the document page, the panes the page
   fetches again after each decision, an accept, an edit (validated and grounded
   against the 90k text); and in headless Chromium (when installed) the time from
   navigation to a page ready to review.
2. ``summarize`` over 1,000 records: the 15 hand-labelled gold extractions,
   repeated under new document ids (crafted records, not model output).

    .venv/bin/python bench/review.py [--rounds 5] [--records 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from _common import CASES, GOLD, ROOT, median, print_header, table

sys.path.insert(0, str(ROOT / "tests"))
from helpers import crafted_record  # noqa: E402

LONG, FILL = (
    "ada-23-the-narcotic-bowel-syndrome-clinical-features-pa",
    "ada-09-respiratory-failure-presenting-in-h1n1-influenza",
)
_SENTENCE = re.compile(r"[A-Z][^.!?\n]{30,200}[.!?]")


def long_document(folder: Path, chars: int = 90_000) -> Path:
    text = (CASES / f"{LONG}.txt").read_text(encoding="utf-8")
    text += "\n\n" + (CASES / f"{FILL}.txt").read_text(encoding="utf-8")
    path = folder / "long-90k.txt"
    path.write_text(text[:chars], encoding="utf-8")
    return path


def answer_with_facts(text: str, n: int) -> dict:
    sentences = list(dict.fromkeys(m.group(0) for m in _SENTENCE.finditer(text)))
    findings = []
    for i in range(n):
        quote = sentences[i % len(sentences)]
        if i % 10 == 9:
            quote = "The patient reported a fabricated symptom number " + str(i) + "."
        findings.append({"name": f"finding {i}", "evidence": [quote]})
    return {"article": {"title": "long"}, "patients": [{"label": "Patient", "findings": findings}]}


def _call(url: str, method: str, path: str, body: dict | None = None) -> tuple[int, int, float]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Origin": url, "Content-Type": "application/json"}
    t = time.perf_counter()
    conn.request(method, path, json.dumps(body).encode() if body else None, headers)
    response = conn.getresponse()
    payload = response.read()
    took = time.perf_counter() - t
    conn.close()
    return response.status, len(payload), took


def bench_document(rounds: int, folder: Path) -> None:
    from caseextract.review.app import running
    from caseextract.review.session import ReviewSession

    source = long_document(folder)
    text = source.read_text(encoding="utf-8")
    t = time.perf_counter()
    record = crafted_record(answer_with_facts(text, 300), source)
    build_s = time.perf_counter() - t
    results = folder / "long.jsonl"
    results.write_text(record.to_line(), encoding="utf-8")
    facts = record.grounding.facts
    print(
        f"document: {len(text):,} characters, {len(facts)} facts, "
        f"{sum(not f['grounded'] for f in facts)} ungrounded; building its record "
        f"(validate + ground): {build_s * 1000:.0f} ms"
    )
    session = ReviewSession(results, "bench")
    rows = []
    with running(session) as url:
        first = _call(url, "GET", "/doc/0")
        rows.append(
            ["first GET /doc/0 (reads the source)", 1, f"{first[2] * 1000:.0f}", f"{first[1]:,}"]
        )
        for name, method, path, body in [
            ("GET /doc/0", "GET", "/doc/0", None),
            ("GET /api/doc/0 (after a decision)", "GET", "/api/doc/0", None),
            ("POST accept", "POST", "/api/doc/0/decide", "accept"),
            ("POST edit (validate + ground)", "POST", "/api/doc/0/decide", "edit"),
        ]:
            times, size = [], 0
            for i in range(rounds):
                payload = None
                if body == "accept":
                    payload = {"path": f"patients[0].findings[{i}]", "action": "accept"}
                elif body == "edit":
                    quote = facts[i + 20]["quotes"][0]["quote"]
                    payload = {
                        "path": f"patients[0].findings[{i + 20}]",
                        "action": "edit",
                        "value": {"name": f"edited {i}", "evidence": [quote]},
                    }
                status, size, took = _call(url, method, path, payload)
                assert status == 200, (name, status)
                times.append(took)
            rows.append([name, rounds, f"{median(times) * 1000:.0f}", f"{size:,}"])
        browser = _browser_load(url, rounds)
    print(table(rows, ["request (300 facts, 90k chars)", "n", "median ms", "bytes"]))
    if browser:
        print(
            f"\nheadless Chromium, navigation to a page ready to review (load event, "
            f"{len(facts)} fact cards): median {median(browser) * 1000:.0f} ms over "
            f"{len(browser)} loads"
        )
    else:
        print("\nheadless Chromium: not installed, browser load not measured")


def _browser_load(url: str, rounds: int) -> list[float]:
    chromium = shutil.which("chromium")
    if not chromium:
        return []
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        for _ in range(rounds):
            t = time.perf_counter()
            page.goto(f"{url}/doc/0", wait_until="load")
            page.wait_for_function("document.querySelectorAll('article.fact').length >= 300")
            out.append(time.perf_counter() - t)
        browser.close()
    return out


def bench_summary(n: int, folder: Path) -> None:
    from caseextract.review import summary

    lines = []
    golds = sorted(GOLD.glob("*.json"))
    base = []
    for g in golds:
        data = json.loads(g.read_text(encoding="utf-8"))
        base.append(crafted_record(data["extraction"], ROOT / "fixtures" / data["source"]))
    for i in range(n):
        record = base[i % len(base)].model_copy(deep=True)
        record.document.id = f"{record.document.id}-{i:04d}"
        lines.append(record.to_line())
    results = folder / "many.jsonl"
    results.write_text("".join(lines), encoding="utf-8")
    stages = []
    t = time.perf_counter()
    records = summary.latest_records(results)
    stages.append(["read records", time.perf_counter() - t])
    t = time.perf_counter()
    s = summary.collect(records, None, folder)
    stages.append(["count patients and facts", time.perf_counter() - t])
    t = time.perf_counter()
    import matplotlib.pyplot  # noqa: F401  (once per process)

    stages.append(["import matplotlib", time.perf_counter() - t])
    t = time.perf_counter()
    figures = summary.plots(s)
    stages.append([f"{len(figures)} plots (inline SVG)", time.perf_counter() - t])
    t = time.perf_counter()
    page = summary.render(s, results, False, figures)
    stages.append(["render HTML", time.perf_counter() - t])
    t = time.perf_counter()
    summary.write_tables(s, folder / "tables")
    stages.append(["write CSV tables", time.perf_counter() - t])
    total = sum(x for _, x in stages)
    print(
        f"\nsummary over {len(records):,} records ({results.stat().st_size / 1e6:.1f} MB JSONL, "
        f"{len(s.patients):,} patients); page {len(page.encode()) / 1e3:.0f} kB"
    )
    print(
        table(
            [[k, f"{v * 1000:.0f}"] for k, v in stages] + [["total", f"{total * 1000:.0f}"]],
            ["stage", "ms"],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()
    print_header("review app and summary at size")
    with tempfile.TemporaryDirectory() as tmp:
        bench_document(args.rounds, Path(tmp))
        bench_summary(args.records, Path(tmp))


if __name__ == "__main__":
    main()
