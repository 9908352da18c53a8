"""The typed result record: one definition, old files still load and resume."""

import json

from caseextract.records import RECORD_VERSION, ResultRecord, fact_label
from caseextract.store import ResultWriter, read_records

# a record as caseextract 0.1.0 wrote it, before records were typed (no record_version)
OLD_LINE = {
    "document": {"id": "doc-1", "path": "a/doc-1.txt", "sha256": "abc", "chars": 10},
    "status": "ok",
    "error": None,
    "extraction": {"patients": []},
    "grounding": {"stats": {"facts": 0}, "rate": None, "facts": []},
    "model": "gpt-4o-mini",
    "mode": "tools",
    "prompt_set": "case_report",
    "prompt_version": "9844a99b3280",
    "schema": "CaseReport",
    "schema_version": "1.1",
    "caseextract_version": "0.1.0",
    "model_returned": "gpt-4o-mini-2024-07-18",
    "attempts": 1,
    "http_requests": 1,
    "http_retries": 0,
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    "latency_s": 0.5,
    "finished_at": "2026-11-30T10:00:00+00:00",
    "a_field_from_a_newer_version": {"kept": True},
}


def test_an_old_record_loads_typed_and_round_trips_byte_for_byte_in_meaning(tmp_path):
    record = ResultRecord.from_json(OLD_LINE)
    assert record.record_version == 0
    assert record.key == ("doc-1", "abc")
    assert record.schema_name == "CaseReport"
    assert record.model_name == "gpt-4o-mini-2024-07-18"
    assert record.usage.total_tokens == 7
    again = json.loads(record.to_line())
    # fields added since are filled with their defaults; nothing of the old line is lost
    usage = {**OLD_LINE["usage"], "cached_tokens": 0, "reasoning_tokens": 0}
    usage["cache_write_tokens"] = 0
    document = {**OLD_LINE["document"], "encoding": None, "decode_errors": None}
    assert again == {**OLD_LINE, "record_version": 0, "usage": usage, "document": document}


def test_an_old_results_file_resumes(tmp_path):
    path = tmp_path / "old.jsonl"
    failed = {**OLD_LINE, "document": {**OLD_LINE["document"], "id": "doc-2"}, "status": "failed"}
    path.write_text(json.dumps(OLD_LINE) + "\n" + json.dumps(failed) + "\n", encoding="utf-8")
    with ResultWriter(path, resume=True) as writer:
        assert writer.is_done("doc-1", "abc")
        assert not writer.is_done("doc-2", "abc")  # failures are retried
    kept = list(read_records(path))
    assert [r.document.id for r in kept] == ["doc-1"]
    assert json.loads(path.read_text())["a_field_from_a_newer_version"] == {"kept": True}


def test_new_records_carry_the_version():
    assert ResultRecord(record_version=RECORD_VERSION).to_json()["record_version"] == 1


def test_fact_label_is_one_rule_for_tables_pages_and_diffs():
    assert fact_label({"name": "fever", "assertion": "absent"}) == "no fever"
    assert fact_label({"name": "gout", "status": "suspected"}) == "gout (suspected)"
    assert fact_label({"raw": "87-year-old", "evidence": ["x"]}) == "87-year-old"
    assert fact_label({"evidence": ["x"]}) == ""
