"""Standalone HTML pages for reviewers: evidence in its source, and diffs against gold.

Pages are self-contained (inline CSS, no scripts, no external resources) and
every piece of text from a report or a model is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from typing import Any

from caseextract.grounding import Aligner, GroundingStats
from caseextract.records import ResultRecord, fact_label

_CSS = """
body{font:14px/1.5 system-ui,sans-serif;margin:0;color:#1d2430}
header{padding:12px 20px;background:#24364f;color:#fff}
header h1{font-size:18px;margin:0}
header p{margin:2px 0 0;opacity:.85}
main{display:grid;grid-template-columns:minmax(0,1.2fr) minmax(0,1fr);gap:0}
section{padding:16px 20px;overflow:auto;max-height:calc(100vh - 70px)}
.source{white-space:pre-wrap;font-family:Georgia,serif;font-size:15px;border-right:1px solid #ddd}
mark{border-radius:3px;padding:0 1px}
mark.a{background:#ffe58a} mark.b{background:#b8e1ff} mark.a.b{background:#c9f0b0}
mark.fuzzy{outline:2px dotted #c77700}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:4px 6px;
vertical-align:top;text-align:left} th{background:#f5f6f8}
.st-match{color:#137333}.st-wrong_value{color:#b06000}.st-missed{color:#a50e0e}
.st-spurious{color:#7b1fa2}.bad{background:#fde8e8}
.q{color:#555;font-size:12px} a{color:#1a56a8;text-decoration:none}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px}
h2{font-size:15px;margin:18px 0 6px}
"""


@dataclass(frozen=True)
class Highlight:
    start: int
    end: int
    anchor: str  # id of the row it links to
    layer: str  # "a" or "b" (e.g. predicted / gold)
    title: str
    fuzzy: bool = False


def highlighted_source(text: str, spans: Iterable[Highlight]) -> str:
    """The text, escaped, with possibly overlapping spans wrapped in <mark> links."""
    spans = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    cuts = sorted({0, len(text), *(s.start for s in spans), *(s.end for s in spans)})
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        piece = escape(text[a:b])
        cover = [s for s in spans if s.start <= a and s.end >= b]
        if not cover:
            out.append(piece)
            continue
        layers = " ".join(sorted({s.layer for s in cover}))
        fuzzy = " fuzzy" if any(s.fuzzy for s in cover) else ""
        title = escape("; ".join(dict.fromkeys(s.title for s in cover)))
        first = cover[0]
        out.append(
            f'<a href="#{first.anchor}"><mark class="{layers}{fuzzy}" '
            f'title="{title}">{piece}</mark></a>'
        )
    return "".join(out)


def _page(title: str, subtitle: str, left: str, right: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f'<main><section class="source">{left}</section><section>{right}</section></main>'
        f"</body></html>\n"
    )


def render_record(record: ResultRecord, source_text: str) -> str:
    """A result record with every evidence span highlighted and linked to its field.

    Facts whose status is not ``grounded`` (ungrounded, uninformative, unsupported,
    assertion conflict, copied from the prompt) are listed first, with the reason, and
    so are grounded facts flagged for review (support found only through a weak cue).
    """
    facts = record.grounding.facts if record.grounding else []
    spans, rows, flagged = [], [], []
    for i, fact in enumerate(facts):
        anchor = f"f{i}"
        status = fact.get("status") or ("grounded" if fact["grounded"] else "ungrounded")
        value = _fact_value(record.extraction or {}, fact["path"])
        for q in fact["quotes"]:
            if q.get("start") is not None:
                spans.append(
                    Highlight(
                        q["start"], q["end"], anchor, "a", fact["path"], q["status"] == "fuzzy"
                    )
                )
        statuses = ", ".join(q["status"] for q in fact["quotes"])
        label = "value" if fact.get("kind") == "value" else "evidence"
        quotes = "<br>".join(f"“{escape(q['quote'])}”" for q in fact["quotes"])
        problems = [fact["reason"]] if fact.get("reason") else []
        problems += fact.get("number_mismatches") or []
        if fact.get("review"):
            problems.append(f"for review: {fact['review']}")
        detail = "; ".join(problems)
        row = (
            f'<tr id="{anchor}" class="{"" if status == "grounded" else "bad"}"><td>'
            f"{escape(fact['path'])}</td><td>{escape(value)}</td><td><b>{escape(status)}</b>"
            f"<br>{escape(label)}: {escape(statuses)}"
            f"{'<br><b>' + escape(detail) + '</b>' if detail else ''}</td>"
            f'<td class="q">{quotes}</td></tr>'
        )
        (rows if status == "grounded" and not fact.get("review") else flagged).append(row)
    g = record.grounding.stats if record.grounding else {}
    head = "<tr><th>field</th><th>value</th><th>status</th><th>evidence</th></tr>"
    right = (
        f"<p>{escape(GroundingStats.from_dict(g).describe())}.</p>"
        f"<h2>Flagged facts ({len(flagged)})</h2>"
        + (f"<table>{head}{''.join(flagged)}</table>" if flagged else "<p>None.</p>")
        + f"<h2>Grounded facts ({len(rows)})</h2><table>{head}{''.join(rows)}</table>"
    )
    sub = (
        f"model {record.model_name} · prompt {record.prompt_version} · schema "
        f"{record.schema_name} v{record.schema_version} · status {record.status}"
    )
    if record.status == "empty" and record.error:
        sub += f" ({record.error.message})"
    return _page(
        f"Evidence: {record.document.id}", sub, highlighted_source(source_text, spans), right
    )


def _fact_value(extraction: dict[str, Any], path: str) -> str:
    node: Any = extraction
    for part in path.replace("]", "").replace("[", ".").split("."):
        if part in ("", "$"):
            continue
        try:
            node = node[int(part)] if part.isdigit() else node[part]
        except (KeyError, IndexError, TypeError):
            return ""
    return fact_label(node)


def render_diff(
    case_id: str, entries: list[dict[str, Any]], source_text: str, subtitle: str = ""
) -> str:
    """Gold vs predicted, field by field, with both sets of quotes in the source."""
    aligner = Aligner(source_text)
    spans, rows = [], []
    for i, e in enumerate(entries):
        anchor = f"e{i}"
        for layer, key in (("b", "gold_quotes"), ("a", "pred_quotes")):
            for q in e.get(key) or []:
                al = aligner.align(q)
                if al.start is not None:
                    spans.append(
                        Highlight(
                            al.start,
                            al.end,
                            anchor,
                            layer,
                            f"{e['family']} ({'gold' if layer == 'b' else 'predicted'})",
                            al.status.value == "fuzzy",
                        )
                    )
        status = e["status"] + (" · ungrounded" if e.get("pred_grounded") is False else "")
        gq = "<br>".join(f"“{escape(q)}”" for q in e.get("gold_quotes") or [])
        pq = "<br>".join(f"“{escape(q)}”" for q in e.get("pred_quotes") or [])
        rows.append(
            f'<tr id="{anchor}"><td>{escape(e["family"])}<br><span class="q">'
            f'{escape(e.get("unit") or "")}</span></td><td class="st-{e["status"]}">'
            f"{escape(status)}</td><td>{escape(e.get('gold') or '')}<div class=q>{gq}</div></td>"
            f"<td>{escape(e.get('pred') or '')}<div class=q>{pq}</div>"
            f"<div class=q>{escape(e.get('note') or '')}</div></td></tr>"
        )
    legend = (
        '<p class="legend"><span style="background:#b8e1ff">gold quote</span>'
        '<span style="background:#ffe58a">predicted quote</span>'
        '<span style="background:#c9f0b0">both</span></p>'
    )
    table = (
        "<table><tr><th>field</th><th>status</th><th>gold</th><th>predicted</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return _page(
        f"Diff against gold: {case_id}",
        subtitle,
        highlighted_source(source_text, spans),
        legend + table,
    )
