"""``caseextract summarize`` at review scale: time and peak memory over 1,000 and 100,000 records.

The records are the hand-labelled gold extractions made into result records as the
pipeline makes them (``tests/helpers.crafted_record``: validated, grounded; crafted,
not model output), repeated under new document ids and written to the results file
one line at a time. Each size runs ``caseextract summarize RESULTS --html PAGE`` in a
child process; its wall time and peak RSS (``ru_maxrss`` from ``wait4``) are printed,
then the in-process stages for the smallest size (reading and counting streamed
together by ``collect_latest``; matplotlib's import; the plots; the page; the CSV).

    .venv/bin/python bench/summary_scale.py [--records 1000 100000] [--cases gold|seed]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import GOLD, ROOT, print_header, table

sys.path.insert(0, str(ROOT / "tests"))
from helpers import crafted_answer, crafted_record  # noqa: E402


def base_lines(cases: str) -> list[str]:
    import json

    if cases == "seed":
        seed = ROOT / "fixtures" / "cases" / "seed-vertebroplasty-cement-leakage.txt"
        return [crafted_record(crafted_answer(), seed).to_line()]
    lines = []
    for g in sorted(GOLD.glob("*.json")):
        data = json.loads(g.read_text(encoding="utf-8"))
        lines.append(
            crafted_record(data["extraction"], ROOT / "fixtures" / data["source"]).to_line()
        )
    return lines


def write_results(path: Path, n: int, lines: list[str]) -> None:
    import json

    bases = [json.loads(line) for line in lines]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            record = bases[i % len(bases)]
            doc = record["document"]
            saved = doc["id"]
            doc["id"] = f"{saved}-{i:06d}"
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            doc["id"] = saved


def run_child(results: Path, page: Path) -> tuple[float, float, int]:
    cli = Path(sys.executable).parent / "caseextract"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(cli), "summarize", str(results), "--html", str(page)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"summarize failed: {proc.stderr.read().decode()[-500:]}")
    return wall, usage.ru_maxrss / 1024, proc.returncode


def stages(results: Path, folder: Path) -> list[list[str]]:
    from caseextract.review import summary

    out = []
    t = time.perf_counter()
    s = summary.collect_latest(results, None, folder)
    out.append(["read and count (collect_latest, streamed)", time.perf_counter() - t])
    t = time.perf_counter()
    import matplotlib.pyplot  # noqa: F401  (once per process)

    out.append(["import matplotlib", time.perf_counter() - t])
    t = time.perf_counter()
    figures = summary.plots(s)
    out.append([f"{len(figures)} plots (inline SVG)", time.perf_counter() - t])
    t = time.perf_counter()
    summary.render(s, results, False, figures)
    out.append(["render HTML", time.perf_counter() - t])
    t = time.perf_counter()
    summary.write_tables(s, folder / "tables")
    out.append(["write CSV tables", time.perf_counter() - t])
    total = sum(v for _, v in out)
    return [[k, f"{v * 1000:.0f}"] for k, v in out] + [["total", f"{total * 1000:.0f}"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, nargs="+", default=[1000, 100_000])
    ap.add_argument("--cases", choices=("gold", "seed"), default="gold")
    args = ap.parse_args()
    print_header("summarize at review scale (crafted records from the gold labels)")
    lines = base_lines(args.cases)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in sorted(args.records):
            results = folder / f"r{n}.jsonl"
            write_results(results, n, lines)
            wall, rss, _ = run_child(results, folder / f"p{n}.html")
            rows.append(
                [f"{n:,}", f"{results.stat().st_size / 1e6:,.1f}", f"{wall:.2f}", f"{rss:.0f}"]
            )
            if n == min(args.records):
                detail = stages(results, folder)
            results.unlink()
        print(table(rows, ["records", "JSONL MB", "summarize s (child, wall)", "peak RSS MB"]))
        print(f"\nstages in process, {min(args.records):,} records:")
        print(table(detail, ["stage", "ms"]))
    print("load average after:", " ".join(Path("/proc/loadavg").read_text().split()[:3]))


if __name__ == "__main__":
    main()
