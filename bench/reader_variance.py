"""How much of a reference scorecard is the reader's variance? Two answer sets, one prompt.

Two stores of *reference answers* (imported, not API recordings) answer the same
exported requests of the 15 gold cases: each answer written in one pass by a
separate session of a capable language model given only that request (the
stores' manifests say exactly how). Both are replayed through ``caseextract
eval`` (offline) and scored against the gold labels; then each reader's records
are scored against the other's, as two labellings are (``evals.agreement``).

Printed: micro F1 (by name / cited / strict) of each set against the gold, the
per-case spread between the sets, and the reader-vs-reader agreement beside the
two human labellings' agreement on the same kind of reports.

    .venv/bin/python bench/reader_variance.py [STORE_A STORE_B]
    .venv/bin/python bench/reader_variance.py --heldout

``--heldout`` does the same on the held-out split: the held-out reports both
held-out stores answered (``fixtures/heldout-recordings/reference-claude`` and
``-b``), against ``fixtures/gold-heldout``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from _common import ROOT, print_header, replayed_eval, table

A = ROOT / "fixtures" / "recordings" / "reference-claude"
B = ROOT / "fixtures" / "recordings" / "reference-claude-b"
HELD_OUT = ROOT / "fixtures" / "heldout-recordings"


def answered(store: Path) -> set[str]:
    import json

    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    return set(manifest.get("answers") or {})


def gold_of(cases: set[str], folder: Path) -> Path:
    """A gold folder holding only ``cases`` (their sources stay in fixtures/cases)."""
    import shutil

    folder.mkdir(parents=True)
    for case in cases:
        shutil.copy(ROOT / "fixtures" / "gold-heldout" / f"{case}.json", folder)
    return folder


def reader_agreement(
    results_a: Path, results_b: Path, gold: Path | None = None
) -> tuple[object, list[float]]:
    """Reader B's records scored against reader A's, case by case, on the case texts."""
    from caseextract.evals.gold import load_gold_set
    from caseextract.evals.scoring import Counts, Scorer, count
    from caseextract.schema import CaseReport
    from caseextract.store import read_records

    a = {r.document.id: r for r in read_records(results_a)}
    b = {r.document.id: r for r in read_records(results_b)}
    total, per_case = Counts(), []
    for case in load_gold_set(gold, cases_dir=ROOT / "fixtures" / "cases" if gold else None):
        ra, rb = a.get(case.case_id), b.get(case.case_id)
        if not (ra and rb and ra.extraction and rb.extraction):
            continue
        ea = CaseReport.model_validate(ra.extraction)
        eb = CaseReport.model_validate(rb.extraction)
        t, _ = count(Scorer(case.text).score(ea, eb))
        total.add(t)
        per_case.append(t.prf()[2] or 0.0)
    return total, per_case


def main(argv: list[str]) -> None:
    heldout = "--heldout" in argv
    argv = [a for a in argv if a != "--heldout"]
    store_a = Path(argv[0]) if argv else (HELD_OUT / "reference-claude" if heldout else A)
    store_b = (
        Path(argv[1]) if len(argv) > 1 else (HELD_OUT / "reference-claude-b" if heldout else B)
    )
    split = "held-out" if heldout else "tune"
    print_header(f"reader variance ({split}): two reference answer sets for the same requests")
    with tempfile.TemporaryDirectory() as tmp:
        options: list[str] = []
        gold = None
        if heldout:
            gold = gold_of(answered(store_a) & answered(store_b), Path(tmp) / "gold")
            options = ["--gold", str(gold), "--cases", str(ROOT / "fixtures" / "cases")]
        ra = replayed_eval(store_a, Path(tmp) / "a", *options)
        rb = replayed_eval(store_b, Path(tmp) / "b", *options)
        agree, per_case = reader_agreement(Path(tmp) / "a" / "results.jsonl",
                                           Path(tmp) / "b" / "results.jsonl", gold)  # fmt: skip
    rows = []
    for name, r in (("set A", ra), ("set B", rb)):
        m = r["micro"]
        figures = [m[k] for k in ("f1", "f1_cited", "f1_strict", "precision", "recall")]
        rows.append([name, r["extracted"], *[f"{x:.3f}" for x in figures]])
    print(table(rows, ["vs gold", "extracted", "F1", "cited", "strict", "P", "R"]))
    print()
    fa = {c["case_id"]: c["totals"]["f1"] for c in ra["per_case"]}
    fb = {c["case_id"]: c["totals"]["f1"] for c in rb["per_case"]}
    gaps = [abs(fa[k] - fb[k]) for k in fa if fa[k] is not None and fb.get(k) is not None]
    print(f"per-case F1 vs gold, |A - B|: median {statistics.median(gaps):.3f}, "
          f"max {max(gaps):.3f} over {len(gaps)} cases")  # fmt: skip
    f, cited, strict = agree.prf()[2], agree.prf(cited=True)[2], agree.prf(True)[2]
    print(f"reader A vs reader B (B scored against A): F1 {f:.3f} by name, {cited:.3f} "
          f"cited, {strict:.3f} strict ({agree.gold} vs {agree.pred} items); "
          f"per case median {statistics.median(per_case):.3f}")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
