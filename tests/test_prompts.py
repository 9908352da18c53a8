import json
import re
from pathlib import Path

import pytest
from caseextract.documents import Document
from caseextract.errors import PromptError
from caseextract.prompts import load_prompt_set
from caseextract.tasks import default_task
from caseextract.testing import FakeOpenAIServer, Reply, crafted_tool_completion

from helpers import CRAFTED_SEED_ANSWER, client_for

REPO = Path(__file__).resolve().parents[1]

TRICKY = (
    "Report with template syntax: {{ x }} and {% if patient %}kept{% endif %} "
    "and {# comment #} and {{ document }} — all literal.\nAn 87-year-old female patient."
)


def test_missing_variable_fails(tmp_path):
    (tmp_path / "system.j2").write_text("Schema {{ schema_name }}")
    (tmp_path / "user.j2").write_text("{{ document }} {{ not_given }}")
    prompts = load_prompt_set(tmp_path)
    with pytest.raises(PromptError, match="not_given"):
        prompts.render(document="x", schema_name="S")


def test_missing_template_file_is_a_clear_error(tmp_path):
    (tmp_path / "system.j2").write_text("x")
    with pytest.raises(PromptError, match="user.j2"):
        load_prompt_set(tmp_path)


def test_version_changes_with_the_templates(tmp_path):
    (tmp_path / "system.j2").write_text("a")
    (tmp_path / "user.j2").write_text("{{ document }}")
    v1 = load_prompt_set(tmp_path).version
    (tmp_path / "system.j2").write_text("b")
    assert load_prompt_set(tmp_path).version != v1


def test_template_syntax_in_a_document_reaches_the_server_byte_identical(tmp_path):
    task = default_task()
    doc = Document("tricky", tmp_path / "t.txt", TRICKY, "0", "utf-8")
    reply = Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))
    with FakeOpenAIServer(default=reply) as server:
        client = client_for(server.base_url)
        client.extract(task.messages(doc), task.response_model)
        sent = server.requests[0]["messages"]
    user = sent[-1]["content"]
    assert TRICKY in user
    system = sent[0]["content"]
    assert system == task.messages(doc)[0]["content"]  # instructor did not rewrite it
    assert "{{" not in system and "{%" not in system
    assert json.dumps(TRICKY)[1:-1] in json.dumps(sent)


def _families_in_labelling() -> list[str]:
    """Bold bullet heads of the "What is one item" section of evals/LABELLING.md."""
    text = (REPO / "evals" / "LABELLING.md").read_text(encoding="utf-8")
    section = text.split("## What is one item", 1)[1].split("\n## ", 1)[0]
    return [m.lower() for m in re.findall(r"^- \*\*([A-Za-z -]+)\*\*", section, flags=re.M)]


def _families_in_prompt() -> list[str]:
    """Bullet heads of the "What one item is" part of the case-report system prompt."""
    text = (REPO / "prompts" / "case_report" / "system.j2").read_text(encoding="utf-8")
    section = text.split("What one item is:", 1)[1].split("{%", 1)[0]
    return [m.lower() for m in re.findall(r"^- ([A-Za-z -]+):", section, flags=re.M)]


def test_prompt_and_labelling_rules_name_the_same_families():
    """The prompt tells the model the labelling policy family by family.

    A family ruled on in the labelling rules but missing from the prompt (or the
    other way round) means the scorecard measures a difference in instructions.
    Patients and follow-up are ruled in the prompt's general rules and schema.
    """
    labelling = set(_families_in_labelling()) - {"patients", "follow-up"}
    prompt = set(_families_in_prompt())
    assert labelling, "no families found in evals/LABELLING.md"
    assert prompt == labelling, (sorted(prompt - labelling), sorted(labelling - prompt))
