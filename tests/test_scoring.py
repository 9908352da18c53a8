"""The scorer on constructed predictions: each perturbation moves exactly its metrics."""

import copy

import pytest
from caseextract.evals.gold import FIXTURES, load_gold, load_gold_set
from caseextract.evals.scoring import Scorer, Status, count, text_similarity
from caseextract.schema import CaseReport

SEED = FIXTURES / "gold" / "seed-vertebroplasty-cement-leakage.json"
MULTI = FIXTURES / "gold" / "ada-09-respiratory-failure-presenting-in-h1n1-influenza.json"


@pytest.fixture(scope="module")
def seed():
    return load_gold(SEED)


def perturbed(case, change):
    data = copy.deepcopy(case.extraction.model_dump(mode="json"))
    change(data)
    return CaseReport.model_validate(data)


def families(case, pred):
    total, fams = count(Scorer(case.text).score(case.extraction, pred))
    return total, fams


def test_every_gold_case_scores_perfectly_against_itself():
    for case in load_gold_set():
        total, fams = families(case, case.extraction)
        assert total.summary()["f1"] == 1.0 and total.summary()["f1_strict"] == 1.0, case.case_id
        assert total.fp_relaxed == total.fn_relaxed == 0


def test_dropping_a_finding_lowers_findings_recall_only(seed):
    base_total, base = families(seed, seed.extraction)
    total, fams = families(seed, perturbed(seed, lambda d: d["patients"][0]["findings"].pop(0)))
    f = fams["findings"]
    assert f.fn_relaxed == 1 and f.fp_relaxed == 0
    assert f.prf()[0] == 1.0 and f.prf()[1] < 1.0
    for name, c in fams.items():
        if name != "findings":
            assert c.prf() == base[name].prf(), name


def test_wrong_age_is_a_wrong_value(seed):
    def change(d):
        d["patients"][0]["age"]["raw"] = "78-year-old"

    total, fams = families(seed, perturbed(seed, change))
    a = fams["age"]
    assert (a.tp_relaxed, a.fp_relaxed, a.fn_relaxed) == (0, 1, 1)
    entries = Scorer(seed.text).score(seed.extraction, perturbed(seed, change))
    age = [e for e in entries if e.family == "patients.age"]
    assert [e.status for e in age] == [Status.wrong_value]


def test_invented_item_is_spurious_and_ungrounded(seed):
    def change(d):
        d["patients"][0]["diagnoses"].append(
            {
                "name": "spinal epidural abscess",
                "status": "confirmed",
                "evidence": ["MRI showed a spinal epidural abscess."],
            }
        )

    total, fams = families(seed, perturbed(seed, change))
    d = fams["diagnoses"]
    assert d.fp_relaxed == 1 and d.fn_relaxed == 0
    assert d.pred_ungrounded == 1
    assert total.hallucination_rate > 0


def test_flipped_assertion_is_strict_only(seed):
    def change(d):
        d["patients"][0]["findings"][0]["assertion"] = (
            "present" if d["patients"][0]["findings"][0]["assertion"] == "absent" else "absent"
        )

    total, fams = families(seed, perturbed(seed, change))
    f = fams["findings"]
    assert f.prf()[2] == 1.0  # relaxed: still the same finding
    assert f.prf(strict=True)[2] < 1.0
    assert (f.fp_strict, f.fn_strict) == (1, 1)


def test_wrong_spinal_level_is_strict_only(seed):
    def change(d):
        for iv in d["patients"][0]["interventions"]:
            if iv["levels"]:
                iv["levels"] = ["L3"]
                break

    total, fams = families(seed, perturbed(seed, change))
    iv = fams["interventions"]
    assert iv.prf()[2] == 1.0
    assert iv.fp_strict == 1 and iv.fn_strict == 1


def test_swapped_patients_are_realigned():
    case = load_gold(MULTI)
    assert len(case.extraction.patients) >= 2
    swapped = perturbed(case, lambda d: d["patients"].reverse())
    total, _ = families(case, swapped)
    assert total.summary()["f1"] == 1.0  # patients are aligned by content, not order


def test_missing_prediction_is_all_misses(seed):
    total, _ = families(seed, None)
    assert total.tp_relaxed == 0 and total.fp_relaxed == 0
    assert total.omission_rate == 1.0


def test_null_handling(seed):
    # gold null + predicted value = spurious; both null is not counted
    def change(d):
        d["article"]["doi"] = "10.1000/invented"

    assert seed.extraction.article.doi is None
    entries = Scorer(seed.text).score(seed.extraction, perturbed(seed, change))
    doi = [e for e in entries if e.family == "article.doi"]
    assert [e.status for e in doi] == [Status.spurious]
    base = Scorer(seed.text).score(seed.extraction, seed.extraction)
    assert not [e for e in base if e.family == "article.doi"]


def test_subset_similarity_is_gated():
    assert text_similarity("back pain", "acute back pain") >= 80
    assert text_similarity("pain", "back pain with acute deterioration of the lower limbs") < 80
    assert text_similarity("Vertebroplasty", "vertebroplasty") == 100


def _rename_back_pain(name, evidence=None):
    def change(d):
        item = d["patients"][0]["findings"][0]
        assert item["name"] == "back pain"
        item["name"] = name
        if evidence is not None:
            item["evidence"] = evidence

    return change


def test_other_name_same_citation_is_a_cited_hit_only(seed):
    pred = perturbed(seed, _rename_back_pain("dorsalgia"))
    total, fams = families(seed, pred)
    f = fams["findings"]
    assert (f.fn_relaxed, f.fp_relaxed, f.cited_pairs) == (1, 1, 1)
    s = f.summary()
    assert s["f1"] < 1.0 and s["f1_cited"] == 1.0 and s["f1_strict"] < 1.0
    assert total.summary()["f1_cited"] > total.summary()["f1"]
    entries = [e for e in Scorer(seed.text).score(seed.extraction, pred) if e.cited_with]
    assert {(e.status, e.cited_with) for e in entries} == {
        (Status.missed, "dorsalgia"),
        (Status.spurious, "back pain"),
    }
    assert all("cites the same text" in e.note for e in entries)


def test_other_name_other_citation_stays_a_miss(seed):
    quote = ["Intradural cement leakage after vertebroplasty"]
    pred = perturbed(seed, _rename_back_pain("dorsalgia", quote))
    f = families(seed, pred)[1]["findings"]
    assert f.cited_pairs == 0
    assert f.summary()["f1_cited"] == f.summary()["f1"] < 1.0


def test_finer_items_citing_one_gold_item_pair_once(seed):
    def change(d):
        findings = d["patients"][0]["findings"]
        findings.pop(0)  # "back pain", quoting the whole first sentence
        findings.append({"name": "lumbago", "evidence": ["had back pain"]})
        findings.append({"name": "acute deterioration", "evidence": ["acute deterioration"]})

    f = families(seed, perturbed(seed, change))[1]["findings"]
    assert (f.fn_relaxed, f.fp_relaxed, f.cited_pairs) == (1, 2, 1)
    p, r, _ = f.prf(cited=True)
    assert r == 1.0 and p < 1.0  # the extra split item stays spurious


def test_every_gold_case_scores_perfectly_cited_too():
    for case in load_gold_set():
        total, _ = families(case, case.extraction)
        assert total.summary()["f1_cited"] == 1.0 and total.cited_pairs == 0, case.case_id


def test_report_and_baseline_carry_the_cited_figure(seed):
    from caseextract.evals import report as rep
    from caseextract.evals.report_model import EvalReport

    pred = perturbed(seed, _rename_back_pain("dorsalgia"))
    total, fams = families(seed, pred)
    report = EvalReport.model_validate({
        "info": {"model": "crafted"},
        "prompt_version": "p",
        "schema": "CaseReport",
        "schema_version": "1.1",
        "cases": 1,
        "extracted": 1,
        "micro": total.summary(),
        "macro": {"f1_over_families": None, "f1_over_cases": None},
        "families": {k: v.summary() for k, v in fams.items()},
        "per_case": [],
    })  # fmt: skip
    card = rep.markdown(report)
    f = fams["findings"].summary()
    assert (
        f"| findings | {f['precision']:.3f} | {f['recall']:.3f} | {f['f1']:.3f} | 1.000 |" in card
    )
    micro = families(seed, seed.extraction)[0].summary()
    base = report.model_copy(update={"micro": report.micro.model_validate(micro)})
    rows = {(r.scope, r.metric): r for r in rep.compare(report, base)}
    assert rows[("overall (micro)", "f1_cited")].delta > rows[("overall (micro)", "f1")].delta
