"""Grounding that cannot be fooled: the crafted adversarial set, the gold set against
itself, and the rules one by one (informative quotes, support, assertion, article values)."""

import pytest
from caseextract.evals.gold import FIXTURES, load_gold_set
from caseextract.grounding import Aligner, FactStatus, GroundingStats, MatchStatus, ground, stats
from caseextract.grounding.assertion import assertion_conflict
from caseextract.grounding.evidence import (
    empty_reason,
    informative,
    main_value_fields,
    support_reason,
)
from caseextract.schema import CaseReport, Finding, Investigation, SexStatement, TimelineEvent
from caseextract.tasks import CementLeakage, Leak, Procedure
from caseextract.testing import adversarial
from pydantic import BaseModel


@pytest.mark.parametrize("case", adversarial.CASES, ids=[c.name for c in adversarial.CASES])
def test_each_crafted_fact_gets_its_expected_status(case):
    [judged] = adversarial.run([case])
    assert judged.status is case.expected, judged.reason


def test_adversarial_set_size_and_false_accept_rate():
    r = adversarial.rates(adversarial.run())
    assert r["cases"] >= 40 and r["must_fail"] >= 30
    kinds = {c.expected for c in adversarial.CASES}
    assert kinds == set(FactStatus)  # every status is exercised
    assert r["false_accepts"] == 0 and r["false_rejects"] == 0


def test_every_gold_fact_is_grounded_against_its_own_source():
    """False-reject rate over the gold sets: every gold fact and article value, judged
    by the same rules as a model's answer, must come out grounded."""
    judged, rejected = 0, []
    for folder in ("gold", "gold-second"):
        for case in load_gold_set(FIXTURES / folder):
            for fact in ground(case.extraction, case.text):
                judged += 1
                if not fact.grounded:
                    rejected.append((case.case_id, fact.path, fact.status.value, fact.reason))
    assert judged > 1000
    assert rejected == []


def test_word_boundaries():
    al = Aligner("Sagittal T2-weighted scan at 100 Tz You 1st Rd; cement (L1).")
    assert al.align("2").status is MatchStatus.not_found  # inside "T2"
    assert al.align("0").status is MatchStatus.not_found  # inside "100"
    assert al.align("1").status is MatchStatus.not_found  # inside "1st", "L1"
    assert al.align("ment").status is MatchStatus.not_found  # inside "cement"
    hit = al.align("T2")
    assert hit.status is MatchStatus.exact and (hit.start, hit.end) == (9, 11)
    assert al.align("(L1).").status is MatchStatus.exact  # punctuation ends need no boundary


def test_scripts_without_spaces_have_boundaries_everywhere():
    al = Aligner("患者出现背痛。MRI显示L1压缩性骨折。")
    assert al.align("背痛").status is MatchStatus.exact
    assert al.align("L1压缩性骨折").status is MatchStatus.exact
    assert al.align("1").status is MatchStatus.not_found  # still inside "L1"


def test_a_negation_does_not_reach_into_the_next_quote():
    source = "Blood pressure was not measured. Fever of 39 C on arrival."
    fact = Finding(
        name="fever", evidence=["Blood pressure was not measured", "Fever of 39 C on arrival"]
    )
    [judged] = ground(fact, source)
    assert judged.status is FactStatus.grounded


def test_informative_rule():
    for quote in ("0", "7", "a", "the", "of the", "no", ",", "...", "12.5", "—"):
        assert not informative(quote), quote
    for quote in ("T2", "L1", "CT", "fever", "no fever"):
        assert informative(quote), quote
    assert informative("3", 3) and informative("2014", "2014")  # the value is that number
    assert not informative("3", "3 days")  # a number of a longer value still says nothing


def test_main_value_declared_or_inferred():
    assert main_value_fields(Finding) == ("name",)
    assert main_value_fields(Investigation) == ("name", "result")  # declared
    assert main_value_fields(TimelineEvent) == ("event", "when")  # declared
    assert main_value_fields(SexStatement) == ()  # an enum value is not inferred
    assert main_value_fields(Procedure) == ("name",)
    assert main_value_fields(Leak) == ()  # no text field: presence and numbers only


@pytest.mark.parametrize(
    ("value", "quote", "how"),
    [
        ("back pain", "had back pains", "words"),
        ("distension", "The abdomen was not distended.", "words"),
        ("oxacillin", "treated with oxacilin 2g/day", "words"),  # same first 6 letters
        ("haemoglobin", "low hemoglobin level", "fuzzy"),
        ("computed tomography", "CT showed cement", "acronym"),
        ("RPGN", "rapidly progressive glomerulonephritis", "acronym"),
        ("white blood cell count", "revealed leukocytosis", "words"),
        ("2 years", "At follow-up 2 years after leakage", "numbers"),
        ("L1", "compression fracture of L1", "words"),
        ("paralysis", "She denied fever and chills.", None),
        ("78-year-old", "An 87-year-old female patient", None),
        ("headache", "The head CT was normal.", None),
        ("L1", "a T1-weighted image", None),  # a level is a word, not the number 1
        ("paralysis 2 days after", "discharged 2 days later", None),  # units state nothing
        ("87-year-old", "An 87-year-old female patient", "numbers"),
    ],
)
def test_support(value, quote, how):
    assert support_reason(value, quote) == how


@pytest.mark.parametrize(
    ("name", "assertion", "quote", "conflict"),
    [
        ("fever", "present", "He denied fever, chills and weight loss.", True),
        ("weight loss", "present", "He denied fever, chills and weight loss.", True),
        ("fever", "absent", "He denied fever, chills and weight loss.", False),
        ("fever", "present", "No cough, but fever of 39 C.", False),  # "but" ends the scope
        ("effusion", "present", "Pleural effusion was ruled out.", True),
        ("effusion", "absent", "Pleural effusion was seen.", True),
        ("obesity", "absent", "A 62-year-old, non-obese woman", False),
        ("deficit", "absent", "Neurological examination was normal.", False),
        ("able to walk", "present", "She was unable to walk.", False),  # value negates itself
    ],
)
def test_assertion_check_both_ways(name, assertion, quote, conflict):
    fact = Finding(name=name, assertion=assertion, evidence=[quote])
    assert (assertion_conflict(fact, name, quote) is not None) is conflict


def test_empty_rules_are_declared_per_model():
    report = CaseReport.model_validate({"article": {"title": "x"}, "patients": []})
    assert empty_reason(report, 0) == "no patients extracted"
    one = CaseReport.model_validate({"article": {}, "patients": [{"label": "Case 1"}]})
    assert "0 fact(s)" in empty_reason(one, 0)
    assert empty_reason(one, 1) is None
    assert empty_reason(CementLeakage(), 0) is not None
    assert empty_reason(CementLeakage(), 2) is None

    class Plain(BaseModel):  # a user's model without evidence fields
        drug: str | None = None
        doses: list[str] = []

    assert empty_reason(Plain(), 0) == "nothing extracted"
    assert empty_reason(Plain(drug="morphine"), 0) is None


def test_article_values_count_as_facts():
    text = adversarial.SOURCE
    report = CaseReport.model_validate(
        {
            "article": {
                "title": "Intradural cement leakage after vertebroplasty",
                "year": 2014,
                "authors": [{"name": "Chia-Hui Chen"}, {"name": "Jane Doe"}],
            },
            "patients": [{"label": "Patient"}],
        }
    )
    facts = ground(report, text, Aligner(text, prompt=adversarial.PROMPT))
    s = stats(facts)
    assert (s.facts, s.values, s.grounded, s.ungrounded_facts) == (4, 4, 3, 1)
    [bad] = [f for f in facts if not f.grounded]
    assert bad.path == "article.authors[1].name" and bad.status is FactStatus.ungrounded
    title = next(f for f in facts if f.path == "article.title")
    assert text[title.alignments[0].start : title.alignments[0].end] == report.article.title


def test_stats_of_records_written_before_the_statuses_read_as_before():
    old = {"facts": 4, "quotes": 5, "exact": 4, "not_found": 1, "ungrounded_facts": 1}
    s = GroundingStats.from_dict({**old, "a_key_from_later": 1})
    assert (s.grounded, s.rate, s.values) == (3, 0.75, 0)
    line = s.describe()
    for part in ("4 facts and values", "3 grounded (75%)", "1 ungrounded", "0 unsupported"):
        assert part in line
