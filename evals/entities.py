"""Entity recall against the corpus's own annotations: a check this project did not write.

The corpus reports come with entity annotations made by the corpus's authors
(``<case>.entities.json`` beside the text: ``condition``, ``finding``, ``factor``,
``modifier``, each with a character offset and length). Entity recall is the share
of their conditions and findings that a record's evidence covers: an annotation
counts as found when any grounded quote of the record overlaps its span. It does
not depend on this project's labelling rules (what one item is, how it is named),
so it can be read beside F1 for both the gold labels and a model's records.

Run: ``python -m caseextract.evals.entities [GOLD_DIR]`` prints it per gold case
for the gold labels themselves; ``caseextract eval`` reports it for the records.
"""

from __future__ import annotations

import json
import sys
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caseextract.grounding import GroundedFact, ground
from pydantic import BaseModel

ENTITY_TYPES = ("condition", "finding")


@dataclass
class EntityRecall:
    found: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.found / self.total if self.total else None

    def add(self, other: EntityRecall) -> None:
        self.found += other.found
        self.total += other.total


def entities_path(source: Path) -> Path:
    return source.with_name(source.stem + ".entities.json")


def load_entities(
    source: Path, types: Iterable[str] = ENTITY_TYPES
) -> list[tuple[int, int]] | None:
    """The annotated spans of ``types`` for the text at ``source``; None when it has none."""
    path = entities_path(source)
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    wanted = set(types)
    spans = []
    for item in data.get("annotations") or []:
        loc = item.get("loc") or {}
        if item.get("type") in wanted and isinstance(loc.get("offset"), int):
            spans.append((loc["offset"], loc["offset"] + int(loc.get("length") or 0)))
    return sorted(spans)


def quote_spans(facts: Iterable[GroundedFact | dict]) -> list[tuple[int, int]]:
    """Spans of the grounded quotes of facts (objects or their ``to_dict`` form)."""
    spans = []
    for fact in facts:
        data = fact.to_dict() if isinstance(fact, GroundedFact) else fact
        if not data.get("grounded"):
            continue
        for quote in data.get("quotes") or []:
            if quote.get("start") is not None and quote.get("end") is not None:
                spans.append((quote["start"], quote["end"]))
    return sorted(spans)


def recall(entities: list[tuple[int, int]], spans: list[tuple[int, int]]) -> EntityRecall:
    """How many entity spans overlap at least one of ``spans``."""
    starts = [s for s, _ in spans]
    longest = max((e - s for s, e in spans), default=0)
    found = 0
    for start, end in entities:
        # candidate spans begin before the entity ends and no earlier than the longest reach
        lo = bisect_left(starts, start - longest)
        hi = bisect_left(starts, end)
        found += any(spans[k][1] > start for k in range(lo, hi))
    return EntityRecall(found, len(entities))


def gold_recall(extraction: BaseModel, text: str, source: Path) -> EntityRecall | None:
    entities = load_entities(source)
    if entities is None:
        return None
    return recall(entities, quote_spans(ground(extraction, text)))


def main(argv: list[str]) -> int:
    from caseextract.evals.gold import FIXTURES, load_gold_set

    folder = Path(argv[0]) if argv else FIXTURES / "gold"
    total = EntityRecall()
    for case in load_gold_set(folder):
        found = gold_recall(case.extraction, case.text, case.source_path)
        if found is None:
            print(f"{case.case_id}: no corpus annotations")
            continue
        total.add(found)
        print(f"{case.case_id}: {found.found} of {found.total} ({found.rate or 0:.2f})")
    print(f"all: {total.found} of {total.total} conditions and findings ({total.rate or 0:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
