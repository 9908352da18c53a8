"""The review server over real HTTP: 127.0.0.1 only, Host and Origin checked, exports."""

from __future__ import annotations

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
        assert status == 200 and payload.decode().startswith("document,")
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
