"""The judge accepts the forms the prompt asks for (issue 25), and the prompt and the
judge's cue tables (grounding/cues.toml) name the same forms.

Every report sentence below is crafted for this test (in the forms the issue lists,
in our own words); none is copied from a corpus report."""

import re
from pathlib import Path

import pytest
from caseextract.grounding import FactStatus, ground
from caseextract.grounding import cues as cue_tables
from caseextract.grounding.evidence import informative
from caseextract.schema import (
    Article,
    Author,
    CaseReport,
    Diagnosis,
    Figure,
    Finding,
    HistoryItem,
    Intervention,
)

REPO = Path(__file__).resolve().parents[1]

CRAFTED_REPORT = (
    "On arrival she was tachycardic and hypotensive, with a pulse, 72 beats/minute at rest "
    "after fluids; hypotension (85/50 mmHg) persisted. Her temp 39.2 °C. She looked pale. "
    "RR 22/min, SpO2 91% on room air, GCS 15. The abdomen soft, nontender and nondistended. "
    "Her face was symmetric and sensation was intact in all limbs. She had normal "
    "intelligence. The knee was found to be stable. Her personal and family histories were "
    "uneventful. Imaging favoured portal vein thrombosis rather than cirrhosis. There was a "
    "lack of symptoms of hyperthyroidism. A painless swelling of the neck was seen. She "
    "remained hemodynamically stable. Sarcoidosis was differentiated from tuberculosis by "
    "culture. Lymphoma was excluded. Non-invasive blood pressure was 110/70 mmHg. She was "
    "given diasepam 5 mg. Both corneas were clear. She had no past history of TB.\n"
    "Figure 2. Chest radiograph showing a right lower lobe opacity.\n"
    "A. B. Quill, MD, FAANEM. doi: 10.1186/1752-1947-1-26\n"
)


def finding(name, quote, assertion="present"):
    return Finding(name=name, assertion=assertion, evidence=[quote])


FORMS = [
    # vital signs named by the sign, quoted in clinical shorthand
    finding("heart rate", "pulse, 72 beats/minute"),
    finding("heart rate", "she was tachycardic"),
    finding("blood pressure", "hypotensive"),
    finding("blood pressure", "hypotension (85/50 mmHg)"),
    finding("temperature", "Her temp 39.2 °C"),
    finding("respiratory rate", "RR 22/min"),
    finding("oxygen saturation", "SpO2 91% on room air"),
    finding("Glasgow coma scale", "GCS 15"),
    # an adjective for the noun
    finding("pallor", "She looked pale"),
    # absent findings from normal-examination wording
    finding("abdominal tenderness", "The abdomen soft, nontender and nondistended", "absent"),
    finding("abdominal distension", "The abdomen soft, nontender and nondistended", "absent"),
    finding("facial asymmetry", "Her face was symmetric", "absent"),
    finding("sensory deficit", "sensation was intact in all limbs", "absent"),
    finding("intellectual disability", "She had normal intelligence", "absent"),
    finding("knee instability", "The knee was found to be stable", "absent"),
    finding("corneal opacity", "Both corneas were clear", "absent"),
    # negation cues the judge did not know: "lack of", a "-less" adjective, stable
    finding("hyperthyroidism", "lack of symptoms of hyperthyroidism", "absent"),
    finding("neck pain", "A painless swelling of the neck", "absent"),
    finding("swelling", "A painless swelling of the neck"),
    finding("hemodynamic instability", "She remained hemodynamically stable", "absent"),
    # no negation where there is none
    finding("blood pressure", "Non-invasive blood pressure was 110/70 mmHg"),
    HistoryItem(
        kind="family",
        description="family history",
        assertion="absent",
        evidence=["Her personal and family histories were uneventful"],
    ),
    HistoryItem(
        kind="condition",
        description="tuberculosis",
        assertion="absent",
        evidence=["She had no past history of TB"],
    ),
    # ruled out in contrastive wording
    Diagnosis(name="cirrhosis", status="ruled_out", evidence=["rather than cirrhosis"]),
    Diagnosis(
        name="tuberculosis",
        status="ruled_out",
        evidence=["Sarcoidosis was differentiated from tuberculosis by culture"],
    ),
    Diagnosis(name="lymphoma", status="ruled_out", evidence=["Lymphoma was excluded"]),
    # a drug misspelt in the source
    Intervention(kind="medication", name="diazepam", evidence=["given diasepam 5 mg"]),
    # a patient label added to a caption value
    Figure(
        label="Figure 2",
        shows="right lower lobe opacity (Case 2)",
        evidence=["Chest radiograph showing a right lower lobe opacity"],
    ),
]


@pytest.mark.parametrize("fact", FORMS, ids=lambda f: f"{type(f).__name__}-{f.evidence[0][:30]}")
def test_the_forms_the_prompt_asks_for_are_grounded(fact):
    [judged] = ground(fact, CRAFTED_REPORT)
    assert judged.status is FactStatus.grounded, judged.reason


WRONG = [
    # crafted wrong facts the new cues must not let through
    (finding("fever", "Her face was symmetric"), FactStatus.unsupported),
    (finding("facial asymmetry", "Her face was symmetric"), FactStatus.assertion_conflict),
    (finding("neck pain", "A painless swelling of the neck"), FactStatus.assertion_conflict),
    (finding("abdominal tenderness", "The abdomen soft, nontender"), FactStatus.assertion_conflict),
    (finding("cirrhosis", "rather than cirrhosis", "present"), FactStatus.assertion_conflict),
    (finding("blood pressure", "Her temp 39.2 °C"), FactStatus.unsupported),
]


@pytest.mark.parametrize("fact,expected", WRONG, ids=lambda x: getattr(x, "name", str(x)))
def test_the_new_cues_keep_wrong_facts_out(fact, expected):
    [judged] = ground(fact, CRAFTED_REPORT)
    assert judged.status is expected, judged.reason


def test_a_misspelt_drug_is_grounded_but_flagged_for_review():
    fact = Intervention(kind="medication", name="diazepam", evidence=["given diasepam 5 mg"])
    [judged] = ground(fact, CRAFTED_REPORT)
    assert judged.grounded and judged.review and "fuzzy" in judged.review
    assert judged.to_dict()["review"] == judged.review


def test_a_doi_alone_is_informative():
    assert informative("10.1186/1752-1947-1-26")
    assert informative("doi: 10.1186/1752-1947-1-26")
    assert not informative("1752-1947")


def test_article_evidence_of_a_doi_and_an_author_with_degrees_are_grounded():
    report = CaseReport(
        article=Article(
            doi="10.1186/1752-1947-1-26",
            authors=[Author(name="A. B. Quill, MD, FAANEM")],
            evidence=["doi: 10.1186/1752-1947-1-26"],
        ),
        patients=[],
    )
    judged = {f.path: f for f in ground(report, CRAFTED_REPORT)}
    assert all(f.grounded for f in judged.values()), [f.reason for f in judged.values()]
    assert "article.authors[0].name" in judged


def test_an_author_with_degrees_the_source_does_not_print_is_still_found():
    report = CaseReport(article=Article(authors=[Author(name="A. B. Quill, MD, PhD")]), patients=[])
    [name] = [f for f in ground(report, CRAFTED_REPORT) if f.path.endswith("name")]
    assert name.grounded
    report = CaseReport(article=Article(authors=[Author(name="C. Quill, MD")]), patients=[])
    [name] = [f for f in ground(report, CRAFTED_REPORT) if f.path.endswith("name")]
    assert not name.grounded  # another person


# ------------------------------------------------- the prompt and the tables agree


def _quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]+)"', text)


def test_the_forms_the_prompt_names_are_in_the_judges_tables():
    """The prompt's rules name a vital sign by the sign and a normal examination as an
    absent finding; each form they quote is one the tables accept."""
    system = (REPO / "prompts" / "case_report" / "system.j2").read_text(encoding="utf-8")
    labelling = (REPO / "evals" / "LABELLING.md").read_text(encoding="utf-8")
    [vital] = [line for line in system.splitlines() if "Vital signs" in line]
    signs = [q for q in _quoted(vital) if q in cue_tables.SIGNS]
    assert signs == ["heart rate"], vital  # the prompt names the sign the tables know
    for text in (system, " ".join(labelling.split())):
        [normal, *_] = [s for s in re.split(r"(?<=\.)\s", text) if "examination was normal" in s]
        example = " ".join(_quoted(normal)).casefold().split()
        assert any(cue == (w,) for w in example for cue in cue_tables.NORMAL_CUES), normal
    negated = [q for q in _quoted(system) if q.startswith(("no ", "denied "))]
    assert negated and all(q.split()[0] in {c[0] for c in cue_tables.PRE_NEGATION} for q in negated)


def test_every_sign_in_the_tables_is_a_finding_the_prompt_asks_for():
    """Each sign the tables hold is a vital sign (LOINC name), and each word that states
    it is read as that sign by the judge."""
    for sign, forms in cue_tables.SIGNS.items():
        for form in forms:
            quote = f"She was {form} on arrival"
            [judged] = ground(finding(sign, quote), quote)
            assert judged.status is FactStatus.grounded, (sign, form, judged.reason)


def test_every_table_names_its_source():
    tables = cue_tables.tables()
    for name in ("negation", "normality", "signs", "abbreviations", "adjectives", "contrast"):
        assert name in tables and tables["sources"][name], name


def test_the_record_and_the_review_app_say_why_a_fact_is_flagged_for_review():
    from caseextract.grounding import stats
    from caseextract.review.state import fact_problems

    fact = Intervention(kind="medication", name="diazepam", evidence=["given diasepam 5 mg"])
    judged = ground(fact, CRAFTED_REPORT)
    entry = judged[0].to_dict()
    assert entry["status"] == "grounded" and "weakly" in entry["review"]
    assert any(p.startswith("for review:") for p in fact_problems(entry))
    assert stats(judged).review == 1 and "1 flagged for review" in stats(judged).describe()


def test_a_reask_quotes_the_fact_and_says_what_to_fix():
    from caseextract.grounding import ungrounded_message
    from caseextract.schema import Patient

    report = CaseReport(
        article=Article(),
        patients=[
            Patient(
                label="Patient",
                findings=[
                    finding("cough", "She looked pale"),  # unsupported: re-asked
                    finding("heart rate", "she was tachycardic"),  # the prompt's form: kept
                    finding("pallor", "She looked pale", "absent"),  # conflict: flagged only
                ],
            )
        ],
    )
    facts = ground(report, CRAFTED_REPORT)
    message = ungrounded_message(facts, extraction=report)
    [line] = [x for x in message.splitlines() if x.startswith("- ")]
    assert '{"name": "cough", "assertion": "present"}' in line
    assert '["She looked pale"]' in line and "Fix: quote the words of the report" in line
    assert "heart rate" not in message and "findings[2]" not in message


def test_a_measured_result_the_quote_contradicts_is_unsupported():
    from caseextract.schema import Investigation

    source = "The serum ferritin was 7.7 ng/ml. Figure 4 Withdrawal protocol for opioids."
    wrong = Investigation(
        kind="laboratory", name="serum ferritin", result="42 ng/ml", evidence=[source[:33]]
    )
    right = Investigation(
        kind="laboratory", name="serum ferritin", result="7.7 ng/ml", evidence=[source[:33]]
    )
    assert [f.status for f in ground(wrong, source)] == [FactStatus.unsupported]
    assert [f.status for f in ground(right, source)] == [FactStatus.grounded]
    # a long value whose numbers are a detail is grounded, flagged for review
    figure = Figure(
        label="Fig. 4",
        shows="Withdrawal protocol for opioids with a 250 mg/day starting dose weaned daily",
        evidence=["Figure 4 Withdrawal protocol for opioids."],
    )
    [judged] = ground(figure, source)
    assert judged.grounded and "numbers unstated" in judged.review


def test_a_hedged_diagnosis_marked_confirmed_conflicts():
    source = "She was referred with a suspicion of colonic tumour. Colitis was confirmed."
    hedged = Diagnosis(name="colonic tumour", status="confirmed", evidence=[source[:51]])
    assert [f.status for f in ground(hedged, source)] == [FactStatus.assertion_conflict]
    suspected = Diagnosis(name="colonic tumour", status="suspected", evidence=[source[:51]])
    assert [f.status for f in ground(suspected, source)] == [FactStatus.grounded]
    confirmed = Diagnosis(name="colitis", status="confirmed", evidence=["Colitis was confirmed"])
    assert [f.status for f in ground(confirmed, source)] == [FactStatus.grounded]


def test_a_result_the_quotes_negate_conflicts():
    from caseextract.schema import Investigation

    source = "The tuberculin test was negative. Culture showed no growth after two days."
    for result, quote in (("positive", source[:32]), ("growth of E. coli", source[34:73])):
        fact = Investigation(kind="laboratory", name="test", result=result, evidence=[quote])
        assert [f.status for f in ground(fact, source)] == [FactStatus.assertion_conflict]
    for result, quote in (("negative", source[:32]), ("no growth", source[34:73])):
        fact = Investigation(kind="laboratory", name="test", result=result, evidence=[quote])
        assert [f.status for f in ground(fact, source)] == [FactStatus.grounded]


def test_a_bare_pmid_quoted_for_the_article_is_informative():
    source = "Case report. PMID: 17456789"
    report = CaseReport(article=Article(pmid="17456789", evidence=["17456789"]), patients=[])
    assert all(f.grounded for f in ground(report, source))
    other = CaseReport(article=Article(pmid="17456789", evidence=["Case"]), patients=[])
    assert any(f.status is FactStatus.uninformative for f in ground(other, "Case 3 17456789"))


def test_a_value_with_word_numbers_and_a_quote_with_none_is_judged_once():
    from caseextract.grounding.evidence import support_reason

    assert support_reason("one bottle of eye drops", "bought eye drops") == "numbers unstated"
    assert support_reason("two fractures", "a dry cough") is None
