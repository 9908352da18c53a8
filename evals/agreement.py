"""Inter-annotator agreement between two independent labellings of the same cases.

Agreement is the F1 of one labelling scored against the other (symmetric for
F1), field family by field family, relaxed (same items) and strict (same items
with the same attributes). Run: ``python -m caseextract.evals.agreement [DIR_A DIR_B]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from caseextract.evals.gold import FIXTURES, load_gold
from caseextract.evals.scoring import Counts, Scorer, count


def agreement(dir_a: Path, dir_b: Path) -> tuple[Counts, dict[str, Counts], list[str]]:
    total, families, cases = Counts(), {}, []
    for path_b in sorted(dir_b.glob("*.json")):
        path_a = dir_a / path_b.name
        if not path_a.exists():
            continue
        a, b = load_gold(path_a), load_gold(path_b)
        t, fams = count(Scorer(a.text).score(a.extraction, b.extraction))
        total.add(t)
        for name, c in fams.items():
            families.setdefault(name, Counts()).add(c)
        cases.append(f"{a.case_id}: F1 {t.prf()[2]:.3f}, cited {t.prf(cited=True)[2]:.3f}, "
                     f"strict {t.prf(True)[2]:.3f} ({t.gold} vs {t.pred} items)")  # fmt: skip
    return total, families, cases


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def main(argv: list[str]) -> int:
    dir_a = Path(argv[0]) if argv else FIXTURES / "gold"
    dir_b = Path(argv[1]) if len(argv) > 1 else FIXTURES / "gold-second"
    total, families, cases = agreement(dir_a, dir_b)
    print(f"cases: {len(cases)}")
    for line in cases:
        print(f"- {line}")
    print("\n| family | items A | items B | agreement F1 | cited F1 | strict F1 |")
    print("|---|---|---|---|---|---|")
    for name, c in [("**all**", total), *sorted(families.items())]:
        print(f"| {name} | {c.gold} | {c.pred} | {_f(c.prf()[2])} | "
              f"{_f(c.prf(cited=True)[2])} | {_f(c.prf(True)[2])} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
