"""``caseextract.extract``: the notebook entry point runs the pipeline on one report."""

import caseextract
import pytest
from caseextract.errors import NonRetryableError
from caseextract.testing import (
    CRAFTED_SEED_ANSWER,
    FakeOpenAIServer,
    Reply,
    crafted_error,
    crafted_tool_completion,
)

from conftest import SEED


@pytest.fixture
def server():
    # crafted: the hand-written seed answer, not a model's output
    with FakeOpenAIServer(default=Reply(body=crafted_tool_completion(CRAFTED_SEED_ANSWER))) as s:
        yield s


def test_a_path_gives_the_record_run_would_write(server):
    record = caseextract.extract(SEED, base_url=server.base_url, reasks=0)
    assert record.status == "ok"
    assert record.document.id == "seed-vertebroplasty-cement-leakage"
    assert record.prompt_set == "case_report" and record.schema_name == "CaseReport"
    facts = {f["path"]: f for f in record.grounding.facts}
    assert facts["patients[0].findings[0]"]["status"] == "grounded"
    assert facts["patients[0].findings[0]"]["quotes"][0]["start"] is not None


def test_the_text_itself_is_a_report_too(server, seed_text):
    record = caseextract.extract(seed_text, base_url=server.base_url, reasks=0)
    assert record.status == "ok" and record.document.id == "text"
    assert record.grounding.stats["grounded"] >= 5


def test_a_refused_request_raises_the_typed_error_without_the_key():
    key = "sk-test-api-secret-0123456789"
    refusal = crafted_error(401, "Incorrect API key provided")
    with FakeOpenAIServer(default=refusal) as s, pytest.raises(NonRetryableError) as info:
        caseextract.extract(SEED, base_url=s.base_url, api_key=key, reasks=0, http_retries=0)
    assert key not in str(info.value)


def test_another_task_by_its_class(server):
    from caseextract.tasks import CementLeakage

    cement = {"age": CRAFTED_SEED_ANSWER["patients"][0]["age"], "procedures": []}
    with FakeOpenAIServer(
        default=Reply(body=crafted_tool_completion(cement, tool_name="CementLeakage"))
    ) as s:
        record = caseextract.extract(
            SEED, base_url=s.base_url, schema=CementLeakage, prompt_set="cement_leakage", reasks=0
        )
    assert record.schema_name == "CementLeakage" and record.schema_version == "cement-1.0"
