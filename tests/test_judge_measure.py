"""The judge measured on independent facts (fixtures/judge, see its MANIFEST.md).

The goals are issue 25's: at most 0.3% of correct facts rejected, at most 2 documents
in 16 with any false reject, and no more false accepts on the wrong facts than on the
crafted adversarial set (0 of 45). Goals not met today are marked ``xfail(strict=True)``
with the figure measured: the assertion is the goal itself, and the day it holds the
mark must go (a strict xfail that passes fails the suite). ``test_no_set_gets_worse``
keeps each set at least as good as it was measured when the data came in.
"""

import pytest
from caseextract.evals.judge import DATA, measure
from caseextract.testing import adversarial

GOAL_REJECT_RATE = 0.003
GOAL_DOCUMENTS_IN_16 = 2

# measured when the data came in (python -m caseextract.evals.judge): set → most allowed
MEASURED = {
    ("dev", "correct"): 0,
    ("dev", "correct-b"): 0,
    ("dev", "wrong"): 30,
    ("test", "correct"): 3,
    ("test", "correct-b"): 3,
    ("test", "wrong"): 44,
}


@pytest.fixture(scope="module")
def results():
    return {(r.split, r.name): r for r in measure(DATA)}


def _goals_hold(rs):
    facts = sum(r.facts for r in rs)
    rejected = sum(len(r.wrong_way) for r in rs)
    docs = sum(r.documents for r in rs)
    hit = sum(r.documents_hit for r in rs)
    assert rejected <= GOAL_REJECT_RATE * facts, f"{rejected} of {facts} correct facts rejected"
    assert hit * 16 <= GOAL_DOCUMENTS_IN_16 * docs, f"{hit} of {docs} documents hit"


def test_every_set_is_there_and_counted(results):
    assert set(results) == set(MEASURED)
    assert sum(r.facts for k, r in results.items() if k[1] != "wrong") > 1000
    for split in ("dev", "test"):
        assert set(results[split, "wrong"].kinds) == {
            "flipped",
            "not_stated",
            "swapped",
            "wrong_number",
        }


def test_no_set_gets_worse(results):
    for key, most in MEASURED.items():
        assert len(results[key].wrong_way) <= most, (key, results[key].line())


def test_dev_correct_facts_meet_the_goals(results):
    _goals_hold([results["dev", "correct"], results["dev", "correct-b"]])


@pytest.mark.xfail(
    strict=True,
    reason="goal not met on the held-out split: 3/496 and 3/185 correct facts "
    "rejected (0.60%, 1.62%), in 3 of 8 and 2 of 3 documents",
)
def test_held_out_correct_facts_meet_the_goals(results):
    _goals_hold([results["test", "correct"], results["test", "correct-b"]])


@pytest.mark.xfail(
    strict=True,
    reason="goal not met: the judge checks that quotes state a fact's main value with "
    "its assertion; 30/60 (dev) and 44/65 (test) wrong-but-plausible facts pass it",
)
@pytest.mark.parametrize("split", ["dev", "test"])
def test_wrong_facts_are_accepted_no_more_than_adversarial_ones(results, split):
    adv = adversarial.rates(adversarial.run())
    wrong = results[split, "wrong"]
    assert len(wrong.wrong_way) / wrong.facts <= adv["false_accepts"] / adv["must_fail"]
