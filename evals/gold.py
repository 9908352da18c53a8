"""Gold cases: hand-made labels stored as JSON beside their source text.

A gold file is ``{"case_id", "source", "task", "labeller", "labelled_on", "notes",
"extraction"}``. ``task`` names the task the label is for —
``{"schema": "module:Class", "schema_version", "prompt_set"}`` — and defaults to the
case-report task (files written before tasks were named have none). ``extraction``
validates against that schema. ``source`` is the case text's path relative to the
gold folder's parent (``fixtures/gold/x.json`` → ``fixtures/cases/…``), or is looked
up by file name in ``cases_dir`` when one is given. ``check`` enforces the rules a
gold label must keep.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from caseextract.errors import ConfigError
from caseextract.grounding import Aligner, MatchStatus, iter_facts
from caseextract.tasks import load_model
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEFAULT_SCHEMA = "caseextract.schema:CaseReport"
DEFAULT_PROMPT_SET = "case_report"


class GoldError(ConfigError):
    """A gold folder or file that cannot be used (missing, invalid, mixed tasks)."""

    kind = "gold"


class GoldTask(BaseModel):
    """Which task a gold label is for."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)
    schema_ref: str = Field(DEFAULT_SCHEMA, alias="schema", description="module:Class")
    schema_version: str | None = None
    prompt_set: str = DEFAULT_PROMPT_SET


class GoldFile(BaseModel):
    case_id: str
    source: str = Field(description="Case text, relative to the gold folder's parent.")
    task: GoldTask = Field(default_factory=GoldTask)
    labeller: str
    labelled_on: str
    notes: str = ""
    extraction: dict


@dataclass
class GoldCase:
    case_id: str
    source_path: Path
    text: str
    extraction: BaseModel
    labeller: str
    path: Path
    task: GoldTask


def resolve_source(gold_path: Path, source: str, cases_dir: Path | None = None) -> Path:
    """Where a gold file's case text is: in ``cases_dir`` by name, else beside the gold folder."""
    if cases_dir is not None:
        candidates = [cases_dir / Path(source).name, cases_dir / source]
    else:
        folder = gold_path.resolve().parent
        candidates = [folder.parent / source, folder / source]
    for path in candidates:
        if path.is_file():
            return path
    where = cases_dir if cases_dir is not None else gold_path.parent.parent
    raise GoldError(
        f"{gold_path.name}: its source {source!r} is not in {where}; "
        "pass --cases DIR (the folder holding the case texts)"
    )


def read_gold_file(path: Path) -> GoldFile:
    try:
        return GoldFile.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, json.JSONDecodeError) as exc:
        raise GoldError(f"{path}: not a gold file ({_short(exc)})") from None


def load_gold(
    path: Path, model: type[BaseModel] | None = None, cases_dir: Path | None = None
) -> GoldCase:
    """One gold case; the response model is the file's own task unless ``model`` is given."""
    raw = read_gold_file(path)
    model = model or load_model(raw.task.schema_ref)
    source = resolve_source(path, raw.source, cases_dir)
    try:
        extraction = model.model_validate(raw.extraction)
    except ValidationError as exc:
        raise GoldError(
            f"{path.name}: its labels do not fit {model.__name__} "
            f"(the file names the task {raw.task.schema_ref}): {_short(exc)}"
        ) from None
    return GoldCase(
        case_id=raw.case_id,
        source_path=source,
        text=source.read_text(encoding="utf-8"),
        extraction=extraction,
        labeller=raw.labeller,
        path=path,
        task=raw.task,
    )


def gold_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise GoldError(f"no gold folder at {folder}: pass --gold DIR")
    paths = sorted(folder.glob("*.json"))
    if not paths:
        raise GoldError(f"no gold files (*.json) in {folder}: pass --gold DIR")
    return paths


def gold_task(folder: Path) -> GoldTask:
    """The one task every gold file in ``folder`` is for (an error if they differ)."""
    tasks = {read_gold_file(p).task for p in gold_files(folder)}
    if len(tasks) > 1:
        names = ", ".join(sorted(t.schema_ref for t in tasks))
        raise GoldError(f"{folder} mixes gold files of several tasks ({names}); one task a folder")
    return tasks.pop()


def load_gold_set(
    folder: Path | None = None,
    model: type[BaseModel] | None = None,
    cases_dir: Path | None = None,
) -> list[GoldCase]:
    folder = folder or FIXTURES / "gold"
    return [load_gold(p, model, cases_dir) for p in gold_files(folder)]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:3])


def check(
    path: Path, model: type[BaseModel] | None = None, cases_dir: Path | None = None
) -> list[str]:
    """Problems with one gold file: schema errors and quotes not found in the source."""
    try:
        case = load_gold(path, model, cases_dir)
    except ConfigError as exc:
        return [f"{path.name}: {exc}"]
    problems = []
    aligner = Aligner(case.text)
    for fact_path, fact in iter_facts(case.extraction):
        for quote in fact.evidence:
            status = aligner.align(quote).status
            if status not in (MatchStatus.exact, MatchStatus.normalised):
                problems.append(f"{path.name}: {fact_path}: quote not in source: {quote!r}")
        if not fact.evidence and fact_path != "article":
            problems.append(f"{path.name}: {fact_path}: no evidence")
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(FIXTURES.glob("gold*/*.json"))
    bad = 0
    for path in paths:
        problems = check(path)
        bad += bool(problems)
        for line in problems:
            print(line)
        if not problems:
            case = load_gold(path)
            n = sum(1 for _ in iter_facts(case.extraction))
            print(f"{path.parent.name}/{path.name}: ok ({n} facts)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
