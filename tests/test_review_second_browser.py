"""The two-extraction review in a real browser: Debian's Chromium driven by Playwright.

Playwright is pointed at the system Chromium (``executable_path``); it never
downloads a browser. A and B are crafted answers (``caseextract.testing.answers.
crafted_seed_pair``, written by hand, not model outputs). Screenshots land in
``$CASEEXTRACT_SCREENSHOTS`` (default: the test's tmp folder).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from caseextract.evals.compare import compare_files, source_text
from caseextract.evals.gold import check as check_gold
from caseextract.review.app import running
from caseextract.review.second import SecondExtraction
from caseextract.review.session import ReviewSession
from caseextract.testing.answers import SEED_ONLY_B_FINDING as PARALYSIS
from caseextract.testing.answers import crafted_seed_pair as answers

from conftest import SEED
from helpers import beside, crafted_record

LAMINECTOMY = "patients[0].interventions[1]"

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian package chromium not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CASEEXTRACT_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def double(tmp_path: Path) -> SecondExtraction:
    a, b = answers()
    path_a, path_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    source = beside(tmp_path, SEED)  # the review serves sources beside the results only
    path_a.write_text(crafted_record(a, source, model="model-a").to_line(), encoding="utf-8")
    path_b.write_text(crafted_record(b, source, model="model-b").to_line(), encoding="utf-8")
    docs = compare_files(path_a, path_b, source_text)
    second = SecondExtraction(
        ReviewSession(path_a, "ana"), path_b, {d.document: d.to_dict() for d in docs}
    )
    second.preaccept()
    return second


def _card(page, key: str):
    return page.locator(f'article.pair[data-key="{key}"]')


def test_agreed_facts_are_pre_accepted_and_disagreements_come_first(page, double, shots):
    with running(double.session, second=double) as url:
        page.goto(f"{url}/")  # in this mode the index is the list of pairs
        page.wait_for_url(f"{url}/pairs")
        assert page.locator("table.pairs td.open").inner_text() == "3"
        page.click("table.pairs a")
        page.wait_for_url(f"{url}/pair/0")
        cards = page.locator("article.pair")
        assert cards.count() == 8
        first = [cards.nth(i).get_attribute("class") for i in range(3)]
        assert all("state-undecided" in c and "st-agreed" not in c for c in first)
        agreed = page.locator("article.pair.st-agreed")
        assert agreed.count() == 5
        assert agreed.locator(".state").all_inner_texts() == ["agreed"] * 5
        # both quotes highlighted: A's only-A finding, B's only-B finding, shared ones
        assert page.locator("#source mark.side-a", has_text="had back pain").count() == 1
        assert page.locator("#source mark.side-b", has_text="Complete paralysis").count() == 1
        assert page.locator("#source mark.side-ab", has_text="87-year-old").count() >= 1
        lam = _card(page, LAMINECTOMY)
        assert "urgency" in lam.locator(".fields").inner_text()
        assert lam.locator(".side-a tr.diff").inner_text().startswith("urgency")
        page.screenshot(path=str(shots / "second-disagreements-first.png"))
        # an agreed fact can still be rejected, with one key
        _card(page, "patients[0].age").locator(".fhead").click()
        page.keyboard.press("r")
        page.wait_for_selector('article.pair.state-rejected[data-key="patients[0].age"]')
    states = {c.key: c.state for c in double.pairs(0)}
    assert states["patients[0].age"] == "rejected" and states["article"] == "agreed"


def test_a_disagreement_resolved_with_one_key_then_the_gold_export(page, double, shots, tmp_path):
    with running(double.session, second=double) as url:
        page.goto(f"{url}/pair/0")
        _card(page, LAMINECTOMY).locator(".fhead").click()
        page.keyboard.press("b")  # take B: no urgency
        page.wait_for_selector(f'article.pair.state-took-B[data-key="{LAMINECTOMY}"]')
        # the export is refused while a disagreement is open
        refused = page.request.get(f"{url}/pair/0/gold.json")
        assert refused.status == 409 and "2 disagreements" in refused.json()["error"]
        only_a = page.locator("article.pair.st-only_a")
        only_a.locator(".fhead").click()
        page.keyboard.press("r")
        page.wait_for_selector("article.pair.st-only_a.state-rejected")
        page.locator("article.pair.st-only_b .fhead").click()
        page.keyboard.press("b")  # the finding only B has joins A's patient
        page.wait_for_selector("article.pair.st-only_b.state-took-B")
        assert page.inner_text("#counts").endswith("0 to decide")
        page.screenshot(path=str(shots / "second-all-decided.png"))
        with page.expect_download() as info:
            page.click("#export-gold")
        target = tmp_path / "gold" / "seed-vertebroplasty-cement-leakage.json"
        target.parent.mkdir()
        info.value.save_as(target)
    sources = [(d.action, d.source) for d in double.session.log().decisions[5:]]
    assert sources == [("edit", "b"), ("reject", None), ("add", "b")]
    gold = json.loads(target.read_text())
    patient = gold["extraction"]["patients"][0]
    assert [f["name"] for f in patient["findings"]] == ["neurologic deficit", PARALYSIS["name"]]
    assert patient["interventions"][1].get("urgency") is None
    assert "5 agreed facts accepted unseen" in gold["notes"]
    assert check_gold(target, cases_dir=SEED.parent) == []


def test_edit_in_the_browser_is_checked_then_saved(page, double):
    with running(double.session, second=double) as url:
        page.goto(f"{url}/pair/0")
        _card(page, LAMINECTOMY).locator(".fhead").click()
        page.keyboard.press("e")
        page.wait_for_selector("dialog#editor[open]")
        value = json.loads(page.input_value("#edit-value"))
        assert value["urgency"] == "emergent" and value["evidence"]
        page.fill("#edit-value", json.dumps(dict(value, evidence=["not in the report"])))
        page.click("#edit-save")
        page.wait_for_selector("#edit-errors li:has-text('not in the source')")
        page.fill("#edit-value", json.dumps(dict(value, urgency="urgent")))
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(f'article.pair.state-edited[data-key="{LAMINECTOMY}"]')
    decision = double.session.log().decisions[-1]
    assert decision.source == "edited" and decision.after["value"]["urgency"] == "urgent"
