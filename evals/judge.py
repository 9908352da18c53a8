"""The evidence judge measured on facts written by people who never saw it.

A judge data folder (``fixtures/judge`` by default; its ``MANIFEST.md`` says who
wrote what) holds ``cases/*.txt`` (corpus reports no gold case uses) and, for
each split (``dev``, ``test``), up to three gold-format sets:

* ``correct``, ``correct-b``: correct facts labelled from ``evals/LABELLING.md``
  alone (``-b``: a second labeller on some of the same reports). Every fact and
  article value must come out ``grounded``; any other status is a *false reject*.
* ``wrong``: wrong-but-plausible facts (a real quote that does not state the fact,
  a negated quote for a present fact, a number from another sentence). The file's
  ``notes`` name each wrong fact, one a line: ``path | kind | why``; the other
  facts of the file (age, sex) are context and are not judged. A wrong fact that
  comes out accepted is a *false accept*, whether or not it carries a review flag
  (``GroundedFact.review``: support found only through a weak cue); those flagged
  are counted beside it.

A fact is *accepted* when its status is ``grounded``. Notes beside the status are
counted apart: a review flag, a number mismatch (a number of ``raw``/``dose``/...
not in the quotes).

For each set it prints the facts judged, the false-reject rate per fact and the
share of documents with any false reject (correct sets), the false-accept rate
(wrong set), and the facts flagged for review. ``--show`` lists each rejection or
accept with its reason (meant for ``dev``; the ``test`` split is the held-out
measurement, read for its counts only)::

    python -m caseextract.evals.judge [--data fixtures/judge] [--split dev] [--show]

``measure`` returns the same figures for tests.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from caseextract.evals.gold import FIXTURES, load_gold_set
from caseextract.grounding import GroundedFact, ground

DATA = FIXTURES / "judge"
SPLITS = ("dev", "test")
SETS = ("correct", "correct-b", "wrong")


@dataclass
class SetResult:
    """One set judged: counts and the facts that went the wrong way."""

    split: str
    name: str
    documents: int = 0
    facts: int = 0
    wrong_way: list[tuple[str, str, str, str]] = field(default_factory=list)
    documents_hit: int = 0
    flagged: int = 0  # accepted with a review flag
    mismatched: int = 0  # accepted with a number mismatch
    kinds: Counter[str] = field(default_factory=Counter)  # wrong set: facts per kind
    accepted_kinds: Counter[str] = field(default_factory=Counter)

    @property
    def wrong_set(self) -> bool:
        return self.name == "wrong"

    @property
    def rate(self) -> float:
        return len(self.wrong_way) / self.facts if self.facts else 0.0

    def line(self) -> str:
        n = len(self.wrong_way)
        if self.wrong_set:
            what = f"false accepts {n}/{self.facts} ({self.rate:.1%})"
            docs = (
                " ["
                + ", ".join(
                    f"{k} {self.accepted_kinds[k]}/{v}" for k, v in sorted(self.kinds.items())
                )
                + "]"
            )
        else:
            what = f"false rejects {n}/{self.facts} ({self.rate:.2%})"
            docs = f", documents with any {self.documents_hit}/{self.documents}"
        return (
            f"{self.split:<5} {self.name:<10} {self.documents:>2} docs {self.facts:>4} facts: "
            f"{what}{docs}; accepted with a review flag {self.flagged}, "
            f"with a number mismatch {self.mismatched}"
        )


_WRONG_LINE = re.compile(r"^\s*(\S+)\s*\|\s*([\w-]+)\s*\|")


def wrong_facts(path: Path) -> dict[str, str]:
    """The facts a wrong-set file names as wrong in its ``notes``: path → kind."""
    notes = json.loads(path.read_text(encoding="utf-8")).get("notes", "")
    return {m.group(1): m.group(2) for m in map(_WRONG_LINE.match, notes.splitlines()) if m}


def accepted(fact: GroundedFact) -> bool:
    """Judged clean of the statuses: ``grounded`` (a review flag or a number mismatch
    is a note beside it, counted apart)."""
    return fact.grounded


def judge_set(folder: Path, cases: Path, split: str, name: str) -> SetResult:
    """Judge every fact and article value of each gold file in ``folder`` (the wrong
    set: only the facts its notes name as wrong)."""
    out = SetResult(split, name)
    for case in load_gold_set(folder, cases_dir=cases):
        out.documents += 1
        wrong = wrong_facts(case.path) if out.wrong_set else {}
        hit = False
        for fact in ground(case.extraction, case.text):
            if out.wrong_set and fact.path not in wrong:
                continue
            out.facts += 1
            ok = accepted(fact)
            out.flagged += bool(ok and getattr(fact, "review", None))
            out.mismatched += bool(ok and fact.number_mismatches)
            if out.wrong_set:
                out.kinds[wrong[fact.path]] += 1
                out.accepted_kinds[wrong[fact.path]] += ok
            went_wrong = ok if out.wrong_set else not ok
            if went_wrong:
                hit = True
                why = getattr(fact, "review", None) or "" if out.wrong_set else fact.reason or ""
                why = "; ".join([why, *fact.number_mismatches]).strip("; ")
                out.wrong_way.append((case.case_id, fact.path, fact.status.value, why))
        out.documents_hit += hit
    return out


def measure(data: Path = DATA, splits: tuple[str, ...] = SPLITS) -> list[SetResult]:
    """Every set present under ``data`` for ``splits``, in order."""
    results = []
    for split in splits:
        for name in SETS:
            folder = data / split / name
            if folder.is_dir() and any(folder.glob("*.json")):
                results.append(judge_set(folder, data / "cases", split, name))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m caseextract.evals.judge")
    parser.add_argument("--data", type=Path, default=DATA, help="judge data folder")
    parser.add_argument("--split", choices=SPLITS, action="append", help="default: both")
    parser.add_argument("--show", action="store_true", help="list each fact that went wrong")
    args = parser.parse_args(argv)
    results = measure(args.data, tuple(args.split or SPLITS))
    if not results:
        print(f"no judge data under {args.data}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line())
        if args.show:
            for case_id, path, status, why in r.wrong_way:
                print(f"    {case_id[:28]} {path} [{status}] {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
