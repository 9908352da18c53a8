"""The two-extraction pages of the review app (``caseextract review A --second B``).

Routes, added to the app by ``build_app(..., second=...)`` behind the same guard:

* ``GET /pairs`` (``/`` leads here)  documents: agreed, differs, only A, only B, undecided
* ``GET /pair/{n}``                  disagreements first, A and B side by side, both quotes
* ``GET /api/pair/{n}``              the two panes again after a decision
* ``POST /api/pair/{n}/decide``      ``{key, action: a|b|edit|reject, value?}`` → 200 / 422
* ``GET /pair/{n}/gold.json``        the gold file, refused (409) while a disagreement is open

The request body is read by the function the app gives (``read_json``), so the
app's own limits on bodies apply here too.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html import escape
from typing import Any

from caseextract.documents import safe_filename
from caseextract.errors import ExtractError, ReviewError
from caseextract.review.second import Pair, SecondExtraction
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

ReadJson = Callable[[Request], Awaitable[dict[str, Any] | JSONResponse]]
_env = Environment(
    loader=PackageLoader("caseextract.review", "templates"),
    autoescape=select_autoescape(["html"]),
)


def pair_source_html(text: str, pairs: list[Pair]) -> str:
    """The source, escaped, with A's quotes and B's in ``<mark>``s naming their cards."""
    events: dict[int, list[tuple[int, str, int]]] = {}
    for n, pair in enumerate(pairs):
        for start, end, side in pair.spans():
            if 0 <= start < end <= len(text):
                events.setdefault(start, []).append((n, side, 1))
                events.setdefault(end, []).append((n, side, -1))
    cuts = sorted({0, len(text), *events})
    active: dict[tuple[int, str], int] = {}
    out: list[str] = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        for n, side, delta in events.get(a, []):
            active[(n, side)] = active.get((n, side), 0) + delta
            if active[(n, side)] <= 0:
                del active[(n, side)]
        piece = escape(text[a:b], quote=False)
        if not active:
            out.append(piece)
            continue
        ids = sorted({n for n, _ in active})
        sides = "".join(sorted({s for _, s in active}))
        cls = f"hl side-{sides}"
        cls += " open" if any(pairs[i].status != "agreed" for i in ids) else ""
        out.append(f'<mark class="{cls}" data-f="{" ".join(map(str, ids))}">{piece}</mark>')
    return "".join(out)


def _script_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _tally(second: SecondExtraction, n: int, pairs: list[Pair]) -> dict[str, int]:
    counts = dict.fromkeys(("agreed", "differs", "only_a", "only_b"), 0)
    for p in pairs:
        counts[p.status] = counts.get(p.status, 0) + 1
    counts["undecided"] = sum(1 for p in pairs if p.decision is None)
    counts["open"] = sum(1 for p in pairs if p.decision is None and p.status != "agreed")
    return counts


class SecondPages:
    def __init__(self, second: SecondExtraction, read_json: ReadJson) -> None:
        self.second, self.read_json = second, read_json

    @staticmethod
    def _n(request: Request) -> int:
        try:
            return int(request.path_params["n"])
        except ValueError:
            raise ReviewError("bad document number") from None

    def parts(self, n: int) -> dict[str, Any]:
        session = self.second.session
        record = session.record(n)
        pairs = self.second.pairs(n)
        src = session.source(record)
        return {
            "record": record,
            "pairs": pairs,
            "source": src,
            "source_html": pair_source_html(src.text, pairs) if src.text else "",
            "counts": _tally(self.second, n, pairs),
            "warnings": self.second.agreement(n).get("warnings") or [],
        }

    def _page(self, name: str, **context: Any) -> HTMLResponse:
        ctx = {"session": self.second.session, "second": self.second, **context}
        return HTMLResponse(_env.get_template(name).render(**ctx))

    async def index(self, request: Request) -> Response:
        rows = []
        for n, record in enumerate(self.second.session.records):
            counts = _tally(self.second, n, self.second.pairs(n))
            rows.append({"n": n, "record": record, "counts": counts})
        return self._page("pairs.html", rows=rows)

    async def document(self, request: Request) -> Response:
        n = self._n(request)
        ctx = self.parts(n)
        data = _script_json([p.to_json() for p in ctx["pairs"]])
        total = len(self.second.session.records)
        return self._page("pair.html", n=n, total=total, pairs_json=data, **ctx)

    async def document_parts(self, request: Request) -> Response:
        ctx = self.parts(self._n(request))
        cards = _env.get_template("pair_cards.html").render(second=self.second, **ctx)
        data = [p.to_json() for p in ctx["pairs"]]
        body = {"source": ctx["source_html"], "cards": cards, "counts": ctx["counts"]}
        return JSONResponse({**body, "data": data})

    async def decide(self, request: Request) -> Response:
        n = self._n(request)
        body = await self.read_json(request)
        if isinstance(body, JSONResponse):
            return body
        value = body.get("value")
        try:
            decision = self.second.decide(
                n, str(body.get("key", "")), str(body.get("action", "")), value
            )
        except ExtractError as exc:
            errors = getattr(exc, "errors", [str(exc)])
            return JSONResponse({"error": str(exc), "errors": errors}, status_code=422)
        return JSONResponse({"ok": True, "decision": decision.model_dump(mode="json")})

    async def gold(self, request: Request) -> Response:
        n = self._n(request)
        try:
            gold = self.second.gold(n)
        except ExtractError as exc:
            errors = getattr(exc, "errors", [str(exc)])
            return JSONResponse({"error": str(exc), "errors": errors}, status_code=409)
        name = safe_filename(str(self.second.session.record(n).document.id))
        body = json.dumps(gold, indent=1, ensure_ascii=False) + "\n"
        disposition = f'attachment; filename="{name}.gold.json"'
        return Response(body, media_type="application/json",
                        headers={"content-disposition": disposition})  # fmt: skip

    def routes(self) -> list[Route]:
        return [
            Route("/", lambda request: RedirectResponse("/pairs")),  # the index, in this mode
            Route("/pairs", self.index),
            Route("/pair/{n}", self.document),
            Route("/pair/{n}/gold.json", self.gold),
            Route("/api/pair/{n}", self.document_parts),
            Route("/api/pair/{n}/decide", self.decide, methods=["POST"]),
        ]


def second_routes(second: SecondExtraction, read_json: ReadJson) -> list[Route]:
    return SecondPages(second, read_json).routes()
