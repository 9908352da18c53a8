"""The review web app: Starlette + Jinja2 templates + one plain script, on 127.0.0.1.

Routes (all pages escape every piece of report or model text):

* ``GET /``                       documents, with facts, problems and review counts
* ``GET /doc/{n}``                one document: source with evidence, facts to decide
* ``GET /api/doc/{n}``            the two panes again (HTML) after a decision
* ``POST /api/doc/{n}/decide``    ``{path, action, value?, offset?}`` → 200, or 422 + errors
* ``GET /doc/{n}/gold.json | record.jsonl | record.csv``   exports of the reviewed document
* ``GET /adjudicate``, ``POST /api/adjudicate/take``       two reviewers side by side

Guards: the server binds to 127.0.0.1 only; every request must name this server
in ``Host`` (no DNS rebinding), and every request that changes something must
carry an ``Origin`` (or ``Referer``) of this server and a JSON body, so a page
from elsewhere open in the reviewer's browser cannot post decisions (CSRF).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from caseextract.documents import safe_filename
from caseextract.errors import ExtractError
from caseextract.review.second import SecondExtraction
from caseextract.review.session import Disagreement, ReviewSession, taken_from
from caseextract.review.state import FactView, ReviewError, document_facts
from caseextract.store import csv_text
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY = 2_000_000  # one decision with its fact (a few kB); far below what strains memory
MAX_DEPTH = 32  # a fact is an object of lists of objects: a few levels
_env = Environment(
    loader=PackageLoader("caseextract.review", "templates"),
    autoescape=select_autoescape(["html"]),
)


def source_html(text: str, facts: list[FactView]) -> str:
    """The source, escaped, with each evidence span in a ``<mark>`` naming its facts."""
    events: dict[int, list[tuple[int, int]]] = {}
    for n, fact in enumerate(facts):
        for start, end, _status in fact.spans:
            if 0 <= start < end <= len(text):
                events.setdefault(start, []).append((n, 1))
                events.setdefault(end, []).append((n, -1))
    cuts = sorted({0, len(text), *events})
    active: dict[int, int] = {}
    out: list[str] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        for n, delta in events.get(a, []):
            active[n] = active.get(n, 0) + delta
            if active[n] <= 0:
                del active[n]
        piece = escape(text[a:b], quote=False)
        if not active:
            out.append(piece)
            continue
        ids = sorted(active)
        cls = "hl" + (" multi" if len(ids) > 1 else "")
        cls += " problem" if any(facts[i].problems for i in ids) else ""
        cls += " rejected" if all(facts[i].state == "rejected" for i in ids) else ""
        out.append(f'<mark class="{cls}" data-f="{" ".join(map(str, ids))}">{piece}</mark>')
    return "".join(out)


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can close it."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Guard:
    """Refuse requests whose Host or Origin is not this server (ASGI middleware)."""

    SAFE = {"GET", "HEAD", "OPTIONS"}

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        reason = self.refusal(scope["method"], headers)
        if reason:
            await JSONResponse({"error": reason}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, headers: dict[str, str]) -> str | None:
        if headers.get("host", "") not in self.hosts:
            return "unknown Host: this server answers only to its own address"
        if headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request refused"
        if method in self.SAFE:
            return None
        origin = headers.get("origin") or ""
        if not origin and headers.get("referer"):
            parts = urlsplit(headers["referer"])
            origin = f"{parts.scheme}://{parts.netloc}"
        if origin.removeprefix("http://") not in self.hosts:
            return "request from another origin refused"
        if not headers.get("content-type", "").startswith("application/json"):
            return "only JSON requests are accepted"
        return None


def allowed_hosts(port: int) -> set[str]:
    return {f"127.0.0.1:{port}", f"localhost:{port}"}


def _render(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)


def _counts(facts: list[FactView]) -> dict[str, int]:
    counts = {"facts": len(facts), "problems": sum(bool(f.problems) for f in facts)}
    for f in facts:
        counts[f.state] = counts.get(f.state, 0) + 1
    return counts


def _too_large() -> JSONResponse:
    message = f"the body is larger than the {MAX_BODY:,}-byte limit for one decision"
    return JSONResponse({"errors": [message]}, status_code=413)


def _depth_ok(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Is ``value`` nested at most ``limit`` deep? (iterative: no recursion to exhaust)"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    """The request's JSON object, or the 400/413 that says why there is none.

    The body is read as it streams, at most ``MAX_BODY`` bytes (a longer announced
    length is refused before any of it is read), and nested at most ``MAX_DEPTH``."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return _too_large()
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            return _too_large()
    try:
        body = json.loads(bytes(data))
    except (ValueError, RecursionError):
        return JSONResponse({"errors": ["the body is not JSON"]}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"errors": ["the body is not a JSON object"]}, status_code=400)
    if not _depth_ok(body):
        message = f"the body is nested more than {MAX_DEPTH} deep"
        return JSONResponse({"errors": [message]}, status_code=400)
    return body


def _offset(body: dict[str, Any]) -> int | None:
    """The decision's ``offset``: a whole number of characters, else None."""
    value = body.get("offset") or 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 62:
        return None
    return value


def _refused(exc: ExtractError, status: int) -> JSONResponse:
    errors = getattr(exc, "errors", [str(exc)])
    return JSONResponse({"error": str(exc), "errors": errors}, status_code=status)


async def _failed(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ExtractError):
        return JSONResponse({"error": str(exc)}, status_code=404)
    raise exc


class _Pages:
    """The review app's pages and API over one review session (see ``build_app``)."""

    def __init__(
        self,
        session: ReviewSession,
        disagreements: list[Disagreement] | None,
        reviewers: tuple[str, str] | None,
    ) -> None:
        self.session, self.disagreements, self.reviewers = session, disagreements, reviewers

    @staticmethod
    def index_of(request: Request) -> int:
        try:
            return int(request.path_params["n"])
        except ValueError:
            raise ReviewError("bad document number") from None

    async def index(self, request: Request) -> Response:
        session, log = self.session, self.session.log()
        rows = []
        for n, record in enumerate(session.records):
            facts = document_facts(record, session.decisions(record, log))
            rows.append({"n": n, "record": record, "counts": _counts(facts)})
        page = _render(
            "index.html",
            session=session,
            rows=rows,
            log=log,
            adjudication=self.disagreements is not None,
        )
        return HTMLResponse(page)

    def parts(self, n: int) -> dict[str, Any]:
        record = self.session.record(n)
        facts = self.session.facts(n)
        src = self.session.source(record)
        return {
            "record": record,
            "facts": facts,
            "source": src,
            "source_html": source_html(src.text, facts) if src.text else "",
            "counts": _counts(facts),
            "lists": self.session.addable_lists(n),
            "stale": self.session.stale(record),
        }

    async def document(self, request: Request) -> Response:
        n = self.index_of(request)
        ctx = self.parts(n)
        page = _render(
            "document.html",
            n=n,
            total=len(self.session.records),
            session=self.session,
            facts_json=script_json([f.to_json() for f in ctx["facts"]]),
            **ctx,
        )
        return HTMLResponse(page)

    async def document_parts(self, request: Request) -> Response:
        ctx = self.parts(self.index_of(request))
        return JSONResponse(
            {
                "source": ctx["source_html"],
                "facts": _render("facts.html", **ctx),
                "counts": ctx["counts"],
                "data": [f.to_json() for f in ctx["facts"]],
            }
        )

    async def decide(self, request: Request) -> Response:
        n = self.index_of(request)
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        offset = _offset(body)
        if offset is None:
            message = "offset must be a whole number of characters"
            return JSONResponse({"errors": [message]}, status_code=422)
        note = body.get("note")
        try:
            decision = self.session.decide(
                n,
                str(body.get("path", "")),
                str(body.get("action", "")),
                body.get("value"),
                offset,
                note if isinstance(note, str) or note is None else str(note),
            )
        except ExtractError as exc:  # ReviewError, or e.g. an unknown schema
            return _refused(exc, 422)
        return JSONResponse({"ok": True, "decision": decision.model_dump(mode="json")})

    async def export(self, request: Request) -> Response:
        n = self.index_of(request)
        kind = request.path_params["kind"]
        if kind not in ("gold.json", "record.jsonl", "record.csv"):
            return HTMLResponse("not found", status_code=404)
        name = safe_filename(str(self.session.record(n).document.id))
        try:
            if kind == "gold.json":
                allow = request.query_params.get("partial") == "1"
                gold = self.session.gold(n, allow)
                body = json.dumps(gold, indent=1, ensure_ascii=False) + "\n"
                media = "application/json"
            elif kind == "record.jsonl":
                body, media = self.session.corrected(n).to_line(), "application/x-ndjson"
            else:
                body, media = csv_text(self.session.csv(n)), "text/csv"
        except ExtractError as exc:
            return _refused(exc, 409)
        disposition = f'attachment; filename="{name}.{kind}"'
        return Response(body, media_type=media, headers={"content-disposition": disposition})

    async def adjudicate(self, request: Request) -> Response:
        if self.disagreements is None:
            return HTMLResponse("not in adjudication mode", status_code=404)
        session = self.session
        mine = {(d.document, d.path): d for d in session.log().decisions}
        by_doc = {str(r.document.id): n for n, r in enumerate(session.records)}
        rows = []
        for d in self.disagreements:
            n = by_doc.get(d.document)
            label = d.path
            if n is not None:
                views = {v.path: v for v in session.facts(n)}
                if d.path in views:
                    label = views[d.path].label
            va, vb = (d.a.value if d.a else None) or {}, (d.b.value if d.b else None) or {}
            keys = [k for k in dict.fromkeys([*va, *vb]) if va.get(k) != vb.get(k)]
            mine_d = mine.get((d.document, d.path))
            rows.append({"d": d, "n": n, "label": label, "mine": mine_d, "changed": keys})
        page = _render("adjudicate.html", rows=rows, reviewers=self.reviewers, session=session)
        return HTMLResponse(page)

    async def take(self, request: Request) -> Response:
        if self.disagreements is None:
            return JSONResponse({"error": "not in adjudication mode"}, status_code=404)
        body = await _json_object(request)
        if isinstance(body, JSONResponse):
            return body
        found = next(
            (
                d
                for d in self.disagreements
                if d.document == body.get("document") and d.path == body.get("path")
            ),
            None,
        )
        side = body.get("side")
        chosen = (found.a if side == "a" else found.b) if found else None
        if found is None or chosen is None:
            return JSONResponse({"errors": ["no such decision to take"]}, status_code=422)
        records = self.session.records
        n = next(i for i, r in enumerate(records) if r.document.id == found.document)
        views = {v.path: v for v in self.session.facts(n)}
        spec = taken_from(chosen, views[chosen.path].value if chosen.path in views else None)
        path = chosen.path
        if spec["action"] == "add":
            path = path.rsplit("[", 1)[0]
        try:
            decision = self.session.decide(n, path, spec["action"], spec["value"], 0, spec["note"])
        except ExtractError as exc:
            return _refused(exc, 422)
        return JSONResponse({"ok": True, "decision": decision.model_dump(mode="json")})

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.index),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/doc/{n}", self.document),
            Route("/doc/{n}/{kind:str}", self.export),
            Route("/api/doc/{n}", self.document_parts),
            Route("/api/doc/{n}/decide", self.decide, methods=["POST"]),
            Route("/adjudicate", self.adjudicate),
            Route("/api/adjudicate/take", self.take, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]


def build_app(
    session: ReviewSession,
    port: int,
    disagreements: list[Disagreement] | None = None,
    reviewers: tuple[str, str] | None = None,
    second: SecondExtraction | None = None,
) -> ASGIApp:
    """The review app for ``session`` on ``port`` (127.0.0.1 only, behind the Host and
    Origin guard); with ``disagreements``, also the adjudication page of two reviews;
    with ``second``, also the two-extraction pages (``review/second_app.py``)."""
    pages = _Pages(session, disagreements, reviewers)
    handlers = {ExtractError: _failed}
    routes = pages.routes()
    if second is not None:
        from caseextract.review.second_app import second_routes

        routes = second_routes(second, _json_object) + routes
    app = Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]
    return Guard(app, allowed_hosts(port))


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 only (port 0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def _server(app: ASGIApp) -> Any:
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve until Ctrl-C."""
    _server(app).run(sockets=[sock])


@contextmanager
def running(session: ReviewSession, **kwargs: Any) -> Iterator[str]:
    """The app served from a thread on 127.0.0.1 (tests, benchmarks); yields its URL."""
    sock = bind(0)
    port = sock.getsockname()[1]
    server = _server(build_app(session, port, **kwargs))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
