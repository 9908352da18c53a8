"""Two independent extractions, one review: where must a person look, and what does it cost?

Both reference answer sets of the 15 gold requests (``reference-claude`` = A,
``reference-claude-b`` = B; imported answers, not API recordings: each store's
manifest says how they were written) are replayed through ``caseextract eval``
(offline), then paired fact by fact (``caseextract.evals.compare``, as
``caseextract compare`` does). Against the gold labels:

* **a person reviews**: the share of facts that differ or that only one set has;
* **accepted unseen**: A's copy of every agreed fact, alone, scored against the
  gold: its precision is how often a fact pre-accepted without a look is right
  (by name, cited, strict; per family);
* **recall of the union**: A's facts plus B's only-B facts (each added to the
  patient it pairs with), scored against the gold, beside A alone and B alone;
* **single extraction plus full review**: a person decides every fact of A.

Patient labels and follow-up are left out of the figures (the review app does
not show them as facts). The cost: request and answer tokens of the recorded
exchanges (tiktoken, as ``bench/tokens.py`` counts them), per 1,000 reports, once
and twice, priced with ``--prices`` (a ``caseextract cost`` table) or, without
it, at the README's example table (input 0.15, output 0.60 USD per million).

    .venv/bin/python bench/double_extraction.py [--prices prices.toml --model NAME]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, print_header, replayed_eval, table

A = ROOT / "fixtures" / "recordings" / "reference-claude"
B = ROOT / "fixtures" / "recordings" / "reference-claude-b"
NOT_FACTS = {"label", "follow_up"}  # scored fields the review app does not show as facts
EXAMPLE_PRICE = (0.15, 0.60)  # the README's example price table, per million tokens


def _drop(extraction: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """``extraction`` without the facts at ``paths`` (as rejecting them in review would)."""
    from caseextract.records import ResultRecord
    from caseextract.review.decisions import Decision
    from caseextract.review.state import corrected_extraction

    record = ResultRecord(status="ok", extraction=extraction)
    rejects = [Decision(reviewer="bench", document="d", path=p, action="reject") for p in paths]
    out = corrected_extraction(record, rejects)
    if out.get("article") is None:
        out["article"] = {"evidence": []}  # scored as missing, never as wrong
    return out


def _union(ea: dict[str, Any], eb: dict[str, Any], doc: Any) -> tuple[dict[str, Any], int]:
    """A's facts plus B's only-B facts, each put where its patient pairs in A."""
    from caseextract.review.state import get_at, parse_path

    out = copy.deepcopy(ea)
    unit_map: dict[int, int] = {}
    for f in doc.facts:
        if f.a and f.b and f.a.startswith("patients[") and f.b.startswith("patients["):
            unit_map[int(parse_path(f.b)[1])] = int(parse_path(f.a)[1])
    lost = 0
    for f in (f for f in doc.facts if f.status == "only_b"):
        parts = parse_path(f.b)
        value = copy.deepcopy(get_at(eb, parts))
        if parts[0] == "patients":
            if parts[1] not in unit_map:
                lost += 1  # a patient A does not have: not added
                continue
            parts = ["patients", unit_map[parts[1]], *parts[2:]]
        parent = get_at(out, parts[:-1])
        if isinstance(parts[-1], int) and isinstance(parent, list):
            parent.append(value)
        elif isinstance(parent, dict):
            parent[parts[-1]] = value
    return out, lost


def _score(gold_sets: dict[str, Any], extractions: dict[str, dict[str, Any]]) -> tuple:
    from caseextract.evals.scoring import Counts, Scorer
    from caseextract.schema import CaseReport

    total, families = Counts(), {}
    for case_id, extraction in extractions.items():
        gold = gold_sets[case_id]
        entries = Scorer(gold.text).score(gold.extraction, CaseReport.model_validate(extraction))
        for e in entries:
            fam = e.family.split(".")[-1] if not e.family.startswith("article") else "article"
            if fam in NOT_FACTS:
                continue
            total.add_entry(e)
            families.setdefault(fam, Counts()).add_entry(e)
    return total, families


def _p(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _tokens(store: Path, counter: Any) -> tuple[list[int], list[int]]:
    """Request and answer tokens per recorded exchange of ``store``."""
    ins, outs = [], []
    for path in sorted(store.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if "request" not in data:
            continue  # the manifest
        body = data["request"]["body"]
        text = "".join(str(m.get("content") or "") for m in body.get("messages", []))
        ins.append(counter(text) + counter(json.dumps(body.get("tools") or [])))
        calls = data["response"]["body"]["choices"][0]["message"].get("tool_calls") or []
        outs.append(sum(counter(c["function"]["arguments"]) for c in calls))
    return ins, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prices", type=Path, help="a `caseextract cost` price table")
    parser.add_argument("--model", help="the model of the table to price with")
    args = parser.parse_args()

    from caseextract.evals.compare import compare_files, source_text, totals
    from caseextract.evals.gold import load_gold_set
    from caseextract.store import read_records

    print_header("double extraction: two reference answer sets, one review")
    with tempfile.TemporaryDirectory() as tmp:
        ra = replayed_eval(A, Path(tmp) / "a")
        replayed_eval(B, Path(tmp) / "b")
        pa, pb = Path(tmp) / "a" / "results.jsonl", Path(tmp) / "b" / "results.jsonl"
        docs = compare_files(pa, pb, source_text)
        recs_a = {r.document.id: r.extraction for r in read_records(pa)}
        recs_b = {r.document.id: r.extraction for r in read_records(pb)}
    gold_sets = {g.case_id: g for g in load_gold_set()}
    docs = [d for d in docs if d.document in gold_sets]
    tally, _, _ = totals(docs)
    agreed_only, union, lost = {}, {}, 0
    for d in docs:
        ea, eb = recs_a[d.document], recs_b[d.document]
        drop = [f.a for f in d.facts if f.a and f.status != "agreed"]
        agreed_only[d.document] = _drop(ea, drop)
        union[d.document], n = _union(ea, eb, d)
        lost += n
    s_agreed, f_agreed = _score(gold_sets, agreed_only)
    s_union, f_union = _score(gold_sets, union)
    s_a, f_a = _score(gold_sets, recs_a)
    s_b, _ = _score(gold_sets, recs_b)

    n_docs = len(docs)
    n_facts = sum(tally.values())
    review = n_facts - tally["agreed"]
    a_facts = sum(1 for d in docs for f in d.facts if f.a)
    print(f"{n_docs} gold cases; {n_facts} facts (A and B paired): {tally}")
    print(f"only-B facts of a patient A lacks (left out of the union): {lost}")
    print()
    rows = []
    for name, c in [("**all**", None), *sorted(f_agreed.items())]:
        ca = s_agreed if c is None else c
        cu = s_union if c is None else f_union.get(name)
        c1 = s_a if c is None else f_a.get(name)
        fam_facts = [f for d in docs for f in d.facts if c is None or _fam(f.family) == name]
        need = sum(f.status != "agreed" for f in fam_facts)
        rows.append([
            name,
            len(fam_facts),
            _p(need / len(fam_facts)) if fam_facts else "-",
            _p(ca.prf()[0]), _p(ca.prf(cited=True)[0]), _p(ca.prf(True)[0]),
            _p(c1.prf()[0]) if c1 else "-",
            _p(c1.prf()[1]) if c1 else "-",
            _p(cu.prf()[1]) if cu else "-",
        ])  # fmt: skip
    head = ["family", "facts", "a person reviews", "agreed P", "agreed P cited",
            "agreed P strict", "A alone P", "A alone R", "union R"]  # fmt: skip
    print(table(rows, head))
    print()
    per_single, per_double = a_facts / n_docs, review / n_docs
    _comparison(n_docs, n_facts, tally, per_single, per_double, s_agreed, s_union, s_a, s_b)
    print(f"(scorecard of A from `caseextract eval`: micro P {ra['micro']['precision']:.3f}, "
          f"R {ra['micro']['recall']:.3f}, all families)")  # fmt: skip
    print()
    from tokens import TokenCounter

    counter = TokenCounter()
    print(f"tokens counted with {counter.name}")
    ins, outs = _tokens(A, counter)
    _, outs_b = _tokens(B, counter)
    mean_in = sum(ins) / len(ins)
    mean_out = (sum(outs) + sum(outs_b)) / (len(outs) + len(outs_b))
    price_in, price_out, label = *EXAMPLE_PRICE, "the README's example table (USD)"
    if args.prices:
        from caseextract.review.ledger import load_prices

        prices = load_prices(args.prices)
        price = prices[args.model] if args.model else next(iter(prices.values()))
        price_in, price_out = price.input_per_million, price.output_per_million
        label = f"{args.prices} ({price.currency})"
    cost1 = 1000 * (mean_in * price_in + mean_out * price_out) / 1e6
    print(f"tokens per call (mean of {len(ins)} requests, {len(outs) + len(outs_b)} answers): "
          f"{mean_in:,.0f} in, {mean_out:,.0f} out")  # fmt: skip
    print(f"per 1,000 reports at {label}, {price_in}/{price_out} per million in/out:")
    print("| | calls | tokens in | tokens out | cost | decisions |")
    print("|---|---|---|---|---|---|")
    for name, k, dec in (("single", 1, per_single), ("double", 2, per_double)):
        tin, tout = 1000 * k * mean_in / 1e6, 1000 * k * mean_out / 1e6
        print(f"| {name} | {1000 * k:,} | {tin:.1f} M | {tout:.1f} M | {k * cost1:.2f} | "
              f"{1000 * dec:,.0f} |")  # fmt: skip
    saved = 1000 * (per_single - per_double)
    print(f"the second extraction costs {cost1:.2f} per 1,000 reports and saves "
          f"{saved:,.0f} decisions ({per_single - per_double:.1f} per report): "
          f"{1000 * cost1 / saved:.2f} per 1,000 decisions saved (same currency)")  # fmt: skip


def _comparison(
    n_docs: int, n_facts: int, tally: dict[str, int], per_single: float, per_double: float,
    agreed: Any, union: Any, a: Any, b: Any,
) -> None:  # fmt: skip
    """The table: single extraction plus full review against double plus disagreements."""
    rows = [
        ("calls per report", "1", "2"),
        ("decisions per report (mean)", f"{per_single:.1f} (every fact of A)",
         f"{per_double:.1f} (differs, only A, only B)"),
        ("a person reviews", "100% of facts", f"{_p(1 - tally['agreed'] / n_facts)} of facts"),
        ("facts accepted unseen, per report", "none",
         f"{tally['agreed'] / n_docs:.1f}: {_p(agreed.prf(True)[0])} correct strict, "
         f"{_p(agreed.prf()[0])} by name, {_p(agreed.prf(cited=True)[0])} cited"),
        ("wrong items left in, per report (scored items)", "none (if the reviewer is right)",
         f"{agreed.fp_strict / n_docs:.1f} strict, {agreed.fp_relaxed / n_docs:.1f} by name, "
         f"{(agreed.fp_relaxed - agreed.cited_pairs) / n_docs:.1f} cited"),
        ("recall before a person adds anything", f"{_p(a.prf()[1])} (A)",
         f"{_p(union.prf()[1])} (union; B alone {_p(b.prf()[1])})"),
        ("precision with no review at all (A)",
         f"{_p(a.prf(True)[0])} strict, {_p(a.prf()[0])} by name, "
         f"{_p(a.prf(cited=True)[0])} cited", "-"),
    ]  # fmt: skip
    print("| | single extraction + full review | double extraction + review of disagreements |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def _fam(family: str) -> str:
    return "article" if family.startswith("article") else family.split(".")[-1]


if __name__ == "__main__":
    main()
