"""The review app in a real browser: Debian's Chromium driven by Playwright.

Playwright is pointed at the system Chromium (``executable_path``); it never
downloads a browser. Screenshots land in ``$CASEEXTRACT_SCREENSHOTS`` (default:
the test's tmp folder) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from caseextract.evals.gold import check as check_gold
from caseextract.review.app import running
from caseextract.review.session import ReviewSession, compare

from conftest import SEED
from helpers import beside, crafted_answer, crafted_record

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian package chromium not installed (apt-get install chromium)"
)
FEVER = {"name": "fever", "evidence": ["She had a fever of 39 C on arrival."]}  # not in SEED


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
def results(tmp_path: Path) -> Path:
    answer = crafted_answer(findings=[*crafted_answer()["patients"][0]["findings"], FEVER])
    path = tmp_path / "results.jsonl"
    path.write_text(crafted_record(answer, beside(tmp_path, SEED)).to_line(), encoding="utf-8")
    return path


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CASEEXTRACT_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, errors


def _card(page, path: str):
    return page.locator(f'article.fact[data-path="{path}"]')


def test_accept_reject_and_evidence_links(page, results, shots):
    session = ReviewSession(results, "ana")
    with running(session) as url:
        page.goto(f"{url}/doc/0")
        cards = page.locator("article.fact")
        assert cards.first.get_attribute("data-path") == "patients[0].findings[1]"  # problem first
        # a highlight → its fact; a fact → its quote
        page.locator("#source mark", has_text="An 87-year-old female patient").first.click()
        assert "current" in _card(page, "patients[0].age").get_attribute("class")
        _card(page, "patients[0].interventions[1]").locator(".label").click()
        assert (
            page.locator("#source mark.current").inner_text()
            == "emergent laminectomy from T12 to L2"
        )
        # accept with the button, then the next fact is selected: reject it with "r"
        _card(page, "article").get_by_role("button", name="Accept").click()
        page.wait_for_selector('article.fact.state-accepted[data-path="article"]')
        page.keyboard.press("r")
        page.wait_for_selector("article.fact.state-rejected")
        page.screenshot(path=str(shots / "review-accept-reject.png"))
    actions = [(d.path, d.action) for d in session.log().decisions]
    assert actions[0] == ("article", "accept") and actions[1][1] == "reject"
    assert all(d.reviewer == "ana" for d in session.log().decisions)


def test_edit_with_an_invalid_value_is_refused_then_fixed(page, results, shots):
    session = ReviewSession(results, "ana")
    with running(session) as url:
        page.goto(f"{url}/doc/0")
        _card(page, "patients[0].findings[0]").locator(".label").click()
        page.keyboard.press("e")
        page.wait_for_selector("dialog#editor[open]")
        value = json.loads(page.input_value("#edit-value"))
        assert value["name"] == "neurologic deficit" and "evidence" not in value
        page.fill("#edit-value", json.dumps(dict(value, assertion="maybe")))
        page.click("#edit-save")
        page.wait_for_selector("#edit-errors li")
        assert "assertion" in page.inner_text("#edit-errors")
        page.screenshot(path=str(shots / "review-edit-invalid.png"))
        assert not session.review.path.exists()  # nothing saved
        page.fill("#edit-evidence", "She had a fever of 39 C on arrival.")
        page.fill("#edit-value", json.dumps(dict(value, assertion="present")))
        page.click("#edit-save")
        page.wait_for_selector("#edit-errors li:has-text('not in the source')")
        page.fill("#edit-evidence", "with no neurologic deficit")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector('article.fact.state-edited[data-path="patients[0].findings[0]"]')
    (d,) = session.log().decisions
    assert d.action == "edit" and d.after["value"]["assertion"] == "present"
    assert d.before["value"]["assertion"] == "absent"
    assert d.after["grounding"]["quotes"][0]["quote"] == "with no neurologic deficit"


_SELECT = """(needle) => {
  const src = document.getElementById("source");
  const walker = document.createTreeWalker(src, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const i = walker.currentNode.data.indexOf(needle);
    if (i >= 0) {
      const r = document.createRange();
      r.setStart(walker.currentNode, i);
      r.setEnd(walker.currentNode, i + needle.length);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      src.dispatchEvent(new MouseEvent("mouseup", {bubbles: true}));
      return true;
    }
  }
  return false;
}"""


def test_add_a_missed_fact_by_selecting_text(page, results, shots):
    session = ReviewSession(results, "ana")
    text = SEED.read_text()
    with running(session) as url:
        page.goto(f"{url}/doc/0")
        assert page.evaluate(_SELECT, "weakness and could not walk on her own")
        page.wait_for_selector("#add-button:not([hidden])")
        page.screenshot(path=str(shots / "review-add-selection.png"))
        page.click("#add-button button")
        page.wait_for_selector("dialog#editor[open]")
        assert page.input_value("#edit-evidence") == "weakness and could not walk on her own"
        page.select_option("#list-path", "patients[0].outcomes")
        # the selected words fill the main field of an outcome (its description)
        value = json.loads(page.input_value("#edit-value"))
        assert value == {"description": "weakness and could not walk on her own"}
        page.fill("#edit-value", json.dumps(dict(value, status="unchanged")))
        page.click("#edit-save")
        page.wait_for_selector('article.fact.state-added[data-path="patients[0].outcomes[0]"]')
        assert (
            page.locator("#source mark.current").inner_text()
            == "weakness and could not walk on her own"
        )
        page.screenshot(path=str(shots / "review-added.png"))
    (d,) = session.log().decisions
    q = d.after["grounding"]["quotes"][0]
    assert (
        d.action == "add"
        and text[q["start"] : q["end"]] == "weakness and could not walk on her own"
    )
    assert session.corrected(0).extraction["patients"][0]["outcomes"][0]["status"] == "unchanged"


def test_review_everything_by_keyboard_and_export_gold(page, results, shots, tmp_path):
    session = ReviewSession(results, "ana")
    with running(session) as url:
        page.goto(f"{url}/doc/0")
        page.keyboard.press("j")
        page.keyboard.press("k")  # back to the first fact, selected on load
        page.keyboard.press("r")  # the ungrounded fever
        page.wait_for_selector("article.fact.state-rejected")
        for n in range(1, 7):
            page.keyboard.press("a")
            page.wait_for_function(
                f"document.querySelectorAll('article.fact.state-accepted').length == {n}"
            )
        assert page.inner_text("#counts").endswith("0 undecided")
        with page.expect_download() as info:
            page.click("#export-gold")
        target = tmp_path / "gold" / "seed-vertebroplasty-cement-leakage.json"
        target.parent.mkdir()
        info.value.save_as(target)
        page.screenshot(path=str(shots / "review-all-decided.png"))
    gold = json.loads(target.read_text())
    assert gold["labeller"] == "reviewed by ana"
    assert [f["name"] for f in gold["extraction"]["patients"][0]["findings"]] == [
        "neurologic deficit"
    ]
    assert check_gold(target, cases_dir=SEED.parent) == []  # downloaded: found with --cases


def test_two_tabs_lose_nothing(browser, results):
    session = ReviewSession(results, "ana")
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    one, two = context.new_page(), context.new_page()
    with running(session) as url:
        one.goto(f"{url}/doc/0")
        two.goto(f"{url}/doc/0")  # both tabs load the same state
        _card(one, "article").get_by_role("button", name="Accept").click()
        one.wait_for_selector('article.fact.state-accepted[data-path="article"]')
        # the second tab has not seen that decision; its own must not undo it
        _card(two, "patients[0].age").get_by_role("button", name="Reject").click()
        two.wait_for_selector('article.fact.state-rejected[data-path="patients[0].age"]')
        assert _card(two, "article").get_attribute("class").count("state-accepted") == 1
        for tab, phrase in ((one, "had back pain"), (two, "acute deterioration")):
            assert tab.evaluate(_SELECT, phrase)
            tab.keyboard.press("n")
            tab.select_option("#list-path", "patients[0].findings")
            tab.click("#edit-save")
            tab.wait_for_selector("article.fact.state-added")
        one.reload()
        added = one.locator("article.fact.state-added .label").all_inner_texts()
    context.close()
    assert sorted(added) == ["acute deterioration", "had back pain"]
    log = session.log()
    assert [d.action for d in log.decisions] == ["accept", "reject", "add", "add"]
    assert len({d.path for d in log.decisions}) == 4


def test_adjudication_side_by_side(page, results, shots):
    a, b = ReviewSession(results, "ana"), ReviewSession(results, "ben")
    a.decide(0, "article", "accept")
    b.decide(0, "article", "accept")
    a.decide(0, "patients[0].findings[1]", "reject")
    b.decide(0, "patients[0].findings[1]", "accept")
    age = {"raw": "87-year-old", "evidence": ["An 87-year-old female patient"]}
    a.decide(0, "patients[0].age", "accept")
    b.decide(0, "patients[0].age", "edit", dict(age, raw="87 years"))
    agreed, differ = compare(a.log(), b.log())
    judge = ReviewSession(results, "cy")
    judge.base = agreed
    with running(judge, disagreements=differ, reviewers=("ana", "ben")) as url:
        page.goto(f"{url}/adjudicate")
        rows = page.locator("table.adjudicate tr[data-path]")
        assert rows.count() == 2
        fever = page.locator('tr[data-path="patients[0].findings[1]"]')
        assert fever.locator(".side-a").inner_text().startswith("reject")
        assert fever.locator(".side-b").inner_text().startswith("accept")
        fever.get_by_role("button", name="take ana's").click()
        page.wait_for_selector('tr[data-path="patients[0].findings[1]"] td.mine:has-text("reject")')
        page.screenshot(path=str(shots / "review-adjudicate.png"))
    (d,) = judge.log().decisions
    assert d.reviewer == "cy" and d.action == "reject" and "took ana's" in d.note
    states = {v.path: v.state for v in judge.facts(0)}
    assert states["article"] == "accepted" and states["patients[0].findings[1]"] == "rejected"


def test_keys_move_between_documents(page, tmp_path):
    copy = tmp_path / "second-report.txt"
    copy.write_text(SEED.read_text())
    results = tmp_path / "two.jsonl"
    lines = [crafted_record(crafted_answer(), p).to_line() for p in (beside(tmp_path, SEED), copy)]
    results.write_text("".join(lines), encoding="utf-8")
    with running(ReviewSession(results, "ana")) as url:
        page.goto(f"{url}/doc/0")
        page.keyboard.press("]")
        page.wait_for_url(f"{url}/doc/1")
        assert "second-report" in page.inner_text("header")
        page.keyboard.press("]")  # the last document: stays
        page.keyboard.press("[")
        page.wait_for_url(f"{url}/doc/0")
