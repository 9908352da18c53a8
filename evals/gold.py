"""Gold cases: hand-made labels stored as JSON beside their source text.

A gold file is ``{"case_id", "source", "labeller", "labelled_on", "notes",
"extraction"}`` where ``extraction`` validates against the task's response
model and ``source`` is the path of the case text relative to the gold file's
``fixtures`` folder. ``check`` enforces the rules a gold label must keep.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from caseextract.grounding import Aligner, MatchStatus, iter_facts
from caseextract.schema import CaseReport
from pydantic import BaseModel, Field, ValidationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class GoldFile(BaseModel):
    case_id: str
    source: str = Field(description="Case text, relative to fixtures/.")
    labeller: str
    labelled_on: str
    notes: str = ""
    extraction: dict


@dataclass
class GoldCase:
    case_id: str
    source_path: Path
    text: str
    extraction: BaseModel
    labeller: str
    path: Path


def load_gold(path: Path, model: type[BaseModel] = CaseReport) -> GoldCase:
    raw = GoldFile.model_validate_json(path.read_text(encoding="utf-8"))
    source = FIXTURES / raw.source
    return GoldCase(
        case_id=raw.case_id,
        source_path=source,
        text=source.read_text(encoding="utf-8"),
        extraction=model.model_validate(raw.extraction),
        labeller=raw.labeller,
        path=path,
    )


def load_gold_set(
    folder: Path | None = None, model: type[BaseModel] = CaseReport
) -> list[GoldCase]:
    folder = folder or FIXTURES / "gold"
    return [load_gold(p, model) for p in sorted(folder.glob("*.json"))]


def check(path: Path, model: type[BaseModel] = CaseReport) -> list[str]:
    """Problems with one gold file: schema errors and quotes not found in the source."""
    try:
        case = load_gold(path, model)
    except (ValidationError, OSError, json.JSONDecodeError) as exc:
        return [f"{path.name}: {exc}"]
    problems = []
    aligner = Aligner(case.text)
    for fact_path, fact in iter_facts(case.extraction):
        for quote in fact.evidence:
            status = aligner.align(quote).status
            if status not in (MatchStatus.exact, MatchStatus.normalised):
                problems.append(f"{path.name}: {fact_path}: quote not in source: {quote!r}")
        if not fact.evidence and fact_path != "article":
            problems.append(f"{path.name}: {fact_path}: no evidence")
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((FIXTURES / "gold").glob("*.json"))
    bad = 0
    for path in paths:
        problems = check(path)
        bad += bool(problems)
        for line in problems:
            print(line)
        if not problems:
            case = load_gold(path)
            n = sum(1 for _ in iter_facts(case.extraction))
            print(f"{path.name}: ok ({n} facts)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
