"""F1 single vs multi-pass with a capable reader, on the long gold cases (offline replay).

Two stores of *reference answers* (imported, not API recordings; each manifest
says how they were made) hold a capable reader's answers to the pipeline's exact
requests for the same prompts:

* ``fixtures/recordings/reference-claude``: one request per report (single pass);
* ``fixtures/recordings/reference-claude-multipass``: the multi-pass requests of
  the three longest reports that have a single-pass answer too — the plan, then
  one fill per patient and one for the document-level lists — exported round by
  round (``caseextract export --passes multi [--answers STORE]``), each answered
  by a separate session that saw only that request.

Both are replayed through ``caseextract eval`` (validation, merge, grounding and
scoring as in a run) and scored against the same gold labels. Printed per case:
calls, the characters of JSON the reader wrote (all passes, and the largest one
answer: what has to fit the completion budget), and F1 by name / cited / strict.

    .venv/bin/python bench/passes_reference.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from _common import ROOT, print_header, replayed_eval, table

SINGLE = ROOT / "fixtures" / "recordings" / "reference-claude"
MULTI = ROOT / "fixtures" / "recordings" / "reference-claude-multipass"


def answers_by_case(store: Path) -> dict[str, list[int]]:
    """Characters of each answer (the tool call's arguments) in a store, by document."""
    from caseextract.llm.recording import RecordingStore

    sizes: dict[str, list[int]] = {}
    manifest = json.loads((store / "manifest.json").read_text(encoding="utf-8"))
    for name, info in manifest["answers"].items():
        case = info.get("document", name)
        data = RecordingStore.read(store / info["recording"])
        message = data["response"]["body"]["choices"][0]["message"]
        calls = message.get("tool_calls") or []
        text = calls[0]["function"]["arguments"] if calls else message.get("content") or ""
        sizes.setdefault(case, []).append(len(text))
    return sizes


def scored(store: Path, passes: str, cases: list[str], out: Path) -> dict[str, dict]:
    report = replayed_eval(store, out, "--passes", passes, *[f"--case={c}" for c in cases])
    return {c["case_id"]: c["totals"] for c in report["per_case"]} | {"ALL": report["micro"]}


def main() -> None:
    print_header("F1 single vs multi-pass, reference answers, long gold cases")
    multi_sizes = answers_by_case(MULTI)
    single_sizes = answers_by_case(SINGLE)
    cases = sorted(multi_sizes)
    with tempfile.TemporaryDirectory() as tmp:
        single = scored(SINGLE, "single", cases, Path(tmp) / "single")
        multi = scored(MULTI, "multi", cases, Path(tmp) / "multi")
    rows = []
    for case in [*cases, "ALL"]:
        for arm, figures, sizes in (
            ("single", single, single_sizes),
            ("multi", multi, multi_sizes),
        ):
            t = figures[case]
            got = sizes.get(case) or [n for c in cases for n in sizes.get(c, [])]
            calls = len(got)
            rows.append(
                [case[:6], arm, calls, f"{sum(got):,}", f"{max(got):,}", f"{t['f1']:.3f}",
                 f"{t['f1_cited']:.3f}", f"{t['f1_strict']:.3f}", t["pred"], t["gold"]]
            )  # fmt: skip
    header = ["case", "arm", "calls", "answer chars", "largest", "F1", "cited", "strict"]
    print(table(rows, [*header, "pred", "gold"]))
    print()
    print("answer chars / 4 is about the answer's tokens; the default budget is 8,192")


if __name__ == "__main__":
    main()
