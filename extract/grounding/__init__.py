"""Grounding: the model writes the quote, this package finds it and judges the fact.

``align`` finds a quote's character span in the source; ``evidence`` decides whether
the quotes carry content and state the fact's main value; ``assertion`` whether they
state it with the fact's own assertion; ``values`` grounds article values that carry
no quotes (title, DOI, names); ``facts`` walks an extraction and gives each fact its
``status`` (``FactStatus``). The names below are the package's public face; modules
inside the package import each other directly, never through this file.
"""

from caseextract.grounding.align import Aligner, Alignment, MatchStatus, fold
from caseextract.grounding.facts import (
    LEAD_CHARS,
    GroundingStats,
    ground,
    iter_facts,
    iter_models,
    judge_fact,
    number_mismatches,
    stats,
    ungrounded_message,
)
from caseextract.grounding.status import REASK_STATUSES, FactStatus, GroundedFact

__all__ = [
    "LEAD_CHARS",
    "REASK_STATUSES",
    "Aligner",
    "Alignment",
    "FactStatus",
    "GroundedFact",
    "GroundingStats",
    "MatchStatus",
    "fold",
    "ground",
    "iter_facts",
    "iter_models",
    "judge_fact",
    "number_mismatches",
    "stats",
    "ungrounded_message",
]
