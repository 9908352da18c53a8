"""Quotes aligned to spans of the original text."""

import pytest
from caseextract.grounding import Aligner, MatchStatus, ground, number_mismatches, stats
from caseextract.schema import Age, CaseReport, Intervention

SOURCE = (
    "Intradural cement leakage after vertebroplasty. An 87-year-old female patient had "
    "back pain. Emergent computed tomography revealed cement from T12 to L2 level. "
    "The compres-\nsion fracture of L1 was treated. Serum level was 5 \u00b5g/L \u2013 "
    "normal. \u03b2-blocker was stopped; Mme Lef\u00e8vre agreed. The ﬁnal result: "
    "back pain resolved."
)


def span(a):
    return SOURCE[a.start : a.end]


def test_exact():
    a = Aligner(SOURCE).align("An 87-year-old female patient")
    assert a.status is MatchStatus.exact
    assert span(a) == "An 87-year-old female patient"


def test_normalised_case_whitespace_and_line_break_hyphenation():
    a = Aligner(SOURCE).align("the  COMPRESSION fracture of L1")
    assert a.status is MatchStatus.normalised
    assert span(a) == "The compres-\nsion fracture of L1"


def test_normalised_dashes_ligatures_and_micro_sign():
    al = Aligner(SOURCE)
    a = al.align("Serum level was 5 \u03bcg/L - normal")  # Greek mu, ASCII hyphen
    assert a.status is MatchStatus.normalised
    assert span(a) == "Serum level was 5 \u00b5g/L \u2013 normal"
    b = al.align("The final result")
    assert b.status is MatchStatus.normalised and span(b) == "The ﬁnal result"


def test_non_ascii_offsets_slice_the_original():
    al = Aligner(SOURCE)
    for quote in ("\u03b2-blocker was stopped", "Mme Lef\u00e8vre agreed"):
        a = al.align(quote)
        assert a.status is MatchStatus.exact
        assert SOURCE[a.start : a.end] == quote
    a = al.align("Mme Lefevre agreed")  # accents are not folded away: only a fuzzy match
    assert a.status is MatchStatus.fuzzy


def test_fuzzy_with_score_above_threshold():
    a = Aligner(SOURCE).align("Emergent computed tomografy revealed cement from T12 to L2")
    assert a.status is MatchStatus.fuzzy
    assert a.score >= 90
    assert "computed tomography revealed cement" in span(a)


def test_not_found():
    a = Aligner(SOURCE).align("The patient was treated with morphine for ten days.")
    assert a.status is MatchStatus.not_found and a.start is None


def test_short_quotes_are_not_fuzzy_matched():
    assert Aligner(SOURCE).align("back pian").status is MatchStatus.not_found


def test_repeated_quote_is_chosen_deterministically():
    al = Aligner(SOURCE)
    first = al.align("back pain")
    assert first.occurrences == 2
    assert first.start == SOURCE.index("back pain")
    later = al.align("back pain", after=first.end)
    assert later.start == SOURCE.rindex("back pain")


def test_number_mismatch_flagged():
    age = Age(raw="78-year-old", evidence=["An 87-year-old female patient"])
    assert number_mismatches(age) and "78" in number_mismatches(age)[0]
    ok = Age(raw="87-year-old", evidence=["An 87-year-old female patient"])
    assert number_mismatches(ok) == []


def test_levels_must_follow_from_the_quote():
    good = Intervention(
        name="laminectomy",
        kind="surgery",
        levels=["T12 to L2"],
        evidence=["laminectomy from T12 to L2"],
    )
    assert number_mismatches(good) == []  # L1 follows from the range
    bad = Intervention(
        name="laminectomy", kind="surgery", levels=["L3"], evidence=["laminectomy from T12 to L2"]
    )
    assert "L3" in number_mismatches(bad)[0]


def test_ground_a_whole_extraction_and_count():
    report = CaseReport.model_validate(
        {
            "article": {
                "title": "Intradural cement leakage after vertebroplasty",
                "evidence": ["Intradural cement leakage after vertebroplasty"],
            },
            "patients": [
                {
                    "label": "Patient",
                    "age": {"raw": "87-year-old", "evidence": ["An 87-year-old female patient"]},
                    "findings": [
                        {"name": "back pain", "evidence": ["had back PAIN."]},
                        {"name": "fever", "evidence": ["high fever of 39 C was recorded"]},
                    ],
                }
            ],
        }
    )
    facts = ground(report, SOURCE)
    s = stats(facts)
    # the title counts as a value of its own, grounded by itself (not a quote)
    assert (s.facts, s.values, s.quotes) == (5, 1, 4)
    assert (s.exact, s.normalised, s.not_found, s.ungrounded_facts) == (2, 1, 1, 1)
    assert [f.path for f in facts if not f.grounded] == ["patients[0].findings[1]"]
    assert s.rate == pytest.approx(0.8)
