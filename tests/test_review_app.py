"""The review server over real HTTP: 127.0.0.1 only, Host and Origin checked, exports."""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from caseextract.review.app import running
from caseextract.review.session import ReviewSession

from conftest import SEED
from helpers import crafted_answer, crafted_record


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "results.jsonl"
    path.write_text(crafted_record(crafted_answer(), SEED).to_line(), encoding="utf-8")
    return path


def _call(url: str, method: str, path: str, body: dict | None = None, **headers: str):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, data, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, payload


def test_requests_from_elsewhere_are_refused(results):
    session = ReviewSession(results, "ana")
    with running(session) as url:
        own = urlsplit(url).netloc
        body = {"path": "article", "action": "accept"}
        json_ct = {"content_type": "application/json"}
        # DNS rebinding: a page at evil.example resolving to 127.0.0.1
        status, _ = _call(url, "GET", "/", Host=f"evil.example:{urlsplit(url).port}")
        assert status == 403
        # CSRF: a form or fetch from another origin, or without any origin at all
        status, _ = _call(
            url, "POST", "/api/doc/0/decide", body, Origin="http://evil.example", **json_ct
        )
        assert status == 403
        status, _ = _call(url, "POST", "/api/doc/0/decide", body, **json_ct)
        assert status == 403
        status, _ = _call(
            url,
            "POST",
            "/api/doc/0/decide",
            body,
            Origin=f"http://{own}",
            content_type="text/plain",
        )
        assert status == 403  # a simple cross-site form post cannot send JSON
        status, _ = _call(
            url,
            "POST",
            "/api/doc/0/decide",
            body,
            Origin=f"http://{own}",
            Sec_Fetch_Site="cross-site",
            **json_ct,
        )
        assert status == 403
        assert not session.review.path.exists()  # nothing was saved
        status, payload = _call(
            url, "POST", "/api/doc/0/decide", body, Origin=f"http://{own}", **json_ct
        )
        assert status == 200 and json.loads(payload)["decision"]["action"] == "accept"
        assert len(session.log().decisions) == 1


def test_exports_over_http(results):
    session = ReviewSession(results, "ana")
    with running(session) as url:
        status, payload = _call(url, "GET", "/doc/0/gold.json")
        assert status == 409 and b"not reviewed" in payload
        for fact in session.facts(0):
            session.decide(0, fact.path, "accept")
        status, payload = _call(url, "GET", "/doc/0/gold.json")
        assert status == 200 and json.loads(payload)["labeller"] == "reviewed by ana"
        status, payload = _call(url, "GET", "/doc/0/record.jsonl")
        assert status == 200 and json.loads(payload)["review"]["facts"] == {"accepted": 6}
        status, payload = _call(url, "GET", "/doc/0/record.csv")
        assert status == 200 and next(csv.reader(payload.decode().splitlines()))[0] == "document"
        assert _call(url, "GET", "/doc/0/../../etc/passwd")[0] == 404
        assert _call(url, "GET", "/doc/7")[0] == 404


def test_cli_serves_on_loopback_only(results, tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "caseextract", "review", str(results), "--reviewer", "ana",
         "--no-browser", "--sources", str(SEED.parent)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        url = None
        for _ in range(20):
            line = proc.stderr.readline()
            if "serving at" in line:
                url = line.split("serving at ")[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:")
        port = urlsplit(url).port
        listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
        local = [row.split()[1] for row in listening if row.split()[3] == "0A"]  # LISTEN
        assert f"0100007F:{port:04X}" in local  # 127.0.0.1 only, not 0.0.0.0
        assert f"00000000:{port:04X}" not in local
        status, payload = _call(url, "GET", "/doc/0")
        assert status == 200 and b"An 87-year-old female patient" in payload
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)


def test_cli_exports_gold_and_corrected_records(results, tmp_path):
    from caseextract.cli import app
    from caseextract.evals.gold import check as check_gold
    from typer.testing import CliRunner

    cli = CliRunner()
    session = ReviewSession(results, "ana")
    none_yet = cli.invoke(app, ["review", str(results), "--reviewer", "ana", "--export-jsonl", "x"])
    assert none_yet.exit_code == 2 and "no decisions yet" in none_yet.output
    session.decide(0, "patients[0].interventions[0]", "reject")
    gold_dir, jsonl, table = tmp_path / "gold", tmp_path / "fixed.jsonl", tmp_path / "fixed.csv"
    args = ["review", str(results), "--reviewer", "ana", "--export-gold", str(gold_dir)]
    args += ["--export-jsonl", str(jsonl), "--export-csv", str(table)]
    partly = cli.invoke(app, args)
    assert partly.exit_code == 0 and "5 facts are not reviewed yet" in " ".join(
        partly.output.split()
    )
    assert not list(gold_dir.glob("*.json"))  # no gold file from a half-reviewed document
    fixed = json.loads(jsonl.read_text())
    assert [i["name"] for i in fixed["extraction"]["patients"][0]["interventions"]] == [
        "laminectomy"
    ]
    for fact in session.facts(0):
        if fact.state == "undecided":
            session.decide(0, fact.path, "accept")
    done = cli.invoke(app, args)
    assert done.exit_code == 0, done.output
    (gold,) = gold_dir.glob("*.json")
    assert json.loads(gold.read_text())["labeller"] == "reviewed by ana"
    assert check_gold(gold) == []
    (row,) = csv.DictReader(table.open(encoding="utf-8"))
    assert row["patient.interventions"] == "laminectomy"
    assert not results.with_name("fixed.jsonl.tmp").exists()


def test_cli_bad_input_is_a_clear_error(results, tmp_path):
    from caseextract.cli import app
    from typer.testing import CliRunner

    cli = CliRunner()
    missing = cli.invoke(app, ["review", str(tmp_path / "nope.jsonl"), "--no-browser"])
    assert missing.exit_code == 2 and "no results file" in missing.output
    adj = ["review", "--adjudicate", str(tmp_path / "a.review"), str(tmp_path / "b.review")]
    nofile = cli.invoke(app, adj)
    assert nofile.exit_code == 2 and "no review file" in nofile.output
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    bad = cli.invoke(app, ["review", str(garbage), "--no-browser"])
    assert bad.exit_code == 2 and "no readable record" in bad.output


def test_failed_and_empty_records_are_listed_and_open(results):
    from caseextract.records import ErrorInfo, ResultRecord

    failed = ResultRecord(status="failed", error=ErrorInfo(kind="truncated", message="cut"))
    failed.document.id = "broken"
    empty = ResultRecord(status="empty", extraction={"article": {}, "patients": []})
    empty.document.id = "nothing-stated"
    with results.open("a", encoding="utf-8") as fh:
        fh.write(failed.to_line() + empty.to_line())
    session = ReviewSession(results, "ana")
    with running(session) as url:
        status, page = _call(url, "GET", "/")
        assert status == 200 and b"broken" in page and b"truncated" not in page
        assert b"cut" in page and b"nothing-stated" in page
        for n in (1, 2):
            status, page = _call(url, "GET", f"/doc/{n}")
            assert status == 200 and b"No facts in this record" in page
            assert b"source text not found" in page


def test_report_text_cannot_inject_script(tmp_path):
    evil = "</script><script>alert(1)</script><!--"
    answer = crafted_answer(
        findings=[
            {"name": evil, "evidence": ["The patient could walk with no neurologic deficit."]}
        ]
    )
    results = tmp_path / "results.jsonl"
    results.write_text(crafted_record(answer, SEED).to_line(), encoding="utf-8")
    with running(ReviewSession(results, "ana")) as url:
        status, page = _call(url, "GET", "/doc/0")
    assert status == 200 and b"<script>alert(1)" not in page
    data = page.split(b'<script id="facts-data" type="application/json">')[1]
    data = data.split(b"</script>")[0]
    assert any(f["label"] == evil for f in json.loads(data))  # intact once parsed


def test_reviewer_name_from_the_environment(results, tmp_path):
    from caseextract.cli import app
    from typer.testing import CliRunner

    ReviewSession(results, "zoe").decide(0, "article", "accept")
    out = tmp_path / "zoe.jsonl"
    args = ["review", str(results), "--export-jsonl", str(out)]
    done = CliRunner().invoke(app, args, env={"CASEEXTRACT_REVIEWER": "zoe"})
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["review"]["reviewers"] == ["zoe"]


def _raw_post(url: str, path: str, data: bytes):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    origin = f"http://{parts.netloc}"
    conn.request("POST", path, data, {"Origin": origin, "Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, json.loads(payload)


def test_a_body_that_is_not_a_json_object_is_a_clear_400(results):
    """Both POST endpoints, in review and in adjudication mode; nothing is saved."""
    session = ReviewSession(results, "cy")
    with running(session, disagreements=[], reviewers=("ana", "ben")) as url:
        for path in ("/api/doc/0/decide", "/api/adjudicate/take"):
            status, payload = _raw_post(url, path, b"{not json")
            assert status == 400 and payload["errors"] == ["the body is not JSON"], path
            status, payload = _raw_post(url, path, b"[1, 2]")
            assert status == 400 and payload["errors"] == ["the body is not a JSON object"]
        status, payload = _raw_post(url, "/api/adjudicate/take", b'{"document": "x"}')
        assert status == 422 and payload["errors"] == ["no such decision to take"]
    assert not session.review.path.exists()


@pytest.mark.parametrize(
    "body",
    [
        b'{"path": "article", "action": "accept", "offset": "abc"}',
        b'{"path": "article", "action": "accept", "offset": 1e400}',
        b'{"path": "article", "action": "accept", "offset": [1]}',
        b'{"path": "article", "action": "edit", "value": ' + b'{"a": ' * 100_000 + b"1"
        + b"}" * 100_000 + b"}",
    ],
    ids=["offset abc", "offset 1e400", "offset list", "value 100000 deep"],
)  # fmt: skip
def test_values_of_the_wrong_type_are_a_clear_4xx(results, body):
    session = ReviewSession(results, "cy")
    with running(session) as url:
        status, payload = _raw_post(url, "/api/doc/0/decide", body)
        assert status in (400, 422) and payload["errors"], payload
        status, _ = _call(url, "GET", "/", Host=urlsplit(url).netloc)
        assert status == 200  # the server goes on
    assert not session.review.path.exists()


def test_a_body_over_the_limit_is_refused_unread(results):
    from caseextract.review.app import MAX_BODY

    session = ReviewSession(results, "cy")
    note = b'{"path": "article", "action": "accept", "note": "' + b"x" * MAX_BODY + b'"}'
    with running(session) as url:
        parts = urlsplit(url)
        origin = {"Origin": f"http://{parts.netloc}", "Content-Type": "application/json"}
        # chunked: no length announced, the server counts while it reads
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        chunks = (note[i : i + 65536] for i in range(0, len(note), 65536))
        conn.request("POST", "/api/doc/0/decide", chunks, origin, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413 and b"limit" in response.read()
        conn.close()
        # a length of 512 MB announced: refused before any of it is read
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.putrequest("POST", "/api/doc/0/decide")
        for k, v in {**origin, "Content-Length": str(512 * 1024 * 1024)}.items():
            conn.putheader(k, v)
        conn.endheaders(b'{"path": "article", ')
        response = conn.getresponse()
        assert response.status == 413
        conn.close()
    assert not session.review.path.exists()


def test_the_page_serves_only_sources_it_may(tmp_path):
    secret = tmp_path / "private" / "notes.txt"
    secret.parent.mkdir()
    secret.write_text("PRIVATE NOTES the review page must not show\n")
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "seed.txt").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    record = crafted_record(crafted_answer(), sources / "seed.txt")
    lines = []
    for n, path in enumerate([str(secret), "../private/notes.txt", "/etc/passwd"]):
        doc = record.model_copy(deep=True)
        doc.document.id, doc.document.path = f"doc{n}", path
        lines.append(doc.to_line())
    edited = record.model_copy(deep=True)
    edited.document.id, edited.document.path = "seed", str(sources / "seed.txt")
    edited.document.sha256 = "0" * 64  # the file on disk is not the text extracted
    lines.append(edited.to_line())
    out = tmp_path / "out" / "results.jsonl"
    out.parent.mkdir()
    out.write_text("".join(lines), encoding="utf-8")
    for given in (sources, None):
        session = ReviewSession(out, "cy", sources=given)
        for n in range(4):
            src = session.source(session.record(n))
            assert src.text is None, (given, n, src.path)
        if given is not None:
            assert "content hash" in session.source(session.record(3)).warning
        with running(session) as url:
            for n in range(4):
                status, page = _call(url, "GET", f"/doc/{n}", Host=urlsplit(url).netloc)
                assert status == 200 and b"PRIVATE" not in page and b"root:" not in page
    good = tmp_path / "out" / "good.jsonl"
    good.write_text(record.to_line(), encoding="utf-8")
    assert ReviewSession(good, "cy", sources=sources).source(record).text  # a true source
