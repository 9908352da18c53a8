"""What the judge says of one fact: its status, the reason, its quotes' alignments."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from caseextract.grounding.align import Alignment


class FactStatus(str, Enum):
    grounded = "grounded"
    ungrounded = "ungrounded"
    uninformative = "uninformative"
    unsupported = "unsupported"
    assertion_conflict = "assertion_conflict"
    from_prompt = "from_prompt"


REASK_STATUSES = frozenset(
    {
        FactStatus.ungrounded,
        FactStatus.uninformative,
        FactStatus.unsupported,
        FactStatus.from_prompt,
    }
)


@dataclass
class GroundedFact:
    """One fact of an extraction with the alignment of each of its quotes.

    ``kind`` is ``fact`` (an object with evidence quotes) or ``value`` (an
    article-level value grounded by itself; its one alignment is the value).
    ``review`` is set on a grounded fact whose support the judge found only
    through a weak cue (``grounding.evidence.WEAK_REASONS``): it is not re-asked,
    and the record and the review app show why a person should look.
    """

    path: str
    alignments: list[Alignment]
    number_mismatches: list[str] = field(default_factory=list)
    status: FactStatus = FactStatus.grounded
    reason: str | None = None
    kind: str = "fact"
    review: str | None = None  # grounded, but only through a weak cue: why to look

    @property
    def grounded(self) -> bool:
        return self.status is FactStatus.grounded

    @property
    def needs_reask(self) -> bool:
        return self.status in REASK_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "status": self.status.value,
            "reason": self.reason,
            "review": self.review,
            "grounded": self.grounded,
            "number_mismatches": self.number_mismatches,
            "quotes": [
                {**asdict(a), "status": a.status.value, "quote": a.quote} for a in self.alignments
            ],
        }
