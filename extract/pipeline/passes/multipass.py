"""Multi-pass extraction: plan, then fill; chunks for long documents; finer splits on truncation.

Contract (generic over the task; the units come from ``units.Shape``):

1. **Plan, then fill.** A first, small pass returns the plan fields (article
   metadata) and the roster of units (patients) with quotes of where each is
   described; then one pass per roster entry, and one for the document-level
   lists (figures). Every pass is a normal ``ModelClient.aextract`` call:
   validated, re-asked and grounded against the text it read. The answers merge
   (``merge``) into one value of the task's response model.
2. **Context limits.** With a context window (``--context-window``, or the local
   server's n_ctx) a document whose prompt would not fit is read in overlapping
   chunks; a patient is filled from the chunks where the roster places it.
   Chunks are slices of the original, and the merged facts are grounded against
   the whole document, so spans index the original text.
3. **Truncation recovers.** An answer cut at ``max_tokens`` splits its unit in
   two by fields (groups of families), then by text; a prompt too long for the
   context splits by text. A unit that cannot be split further fails the
   document, naming the unit and the reason; finished passes are kept. No
   document takes more than ``max_passes`` calls (``--max-passes``).
4. **When.** ``single`` is today's one call; ``multi`` always plans and fills;
   ``auto`` goes multi when the prompt plus the answer limit exceeds the
   context window, or when the expected answer (``ANSWER_RATIO`` × the
   document's tokens) exceeds ``max_tokens``, or when a single call is cut or
   refused as too long. Each pass is its own HTTP exchange (so the recording
   store replays and caches each), the record lists every pass (``passes``)
   and sums their cost; finished passes are stored (``passes.store``) and a
   resumed document does not redo them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from caseextract.documents import Document, safe_filename, tidy
from caseextract.errors import (
    ConfigError,
    ExtractError,
    InputError,
    ModelCallError,
    NonRetryableError,
    OutputTruncated,
)
from caseextract.grounding import Aligner
from caseextract.llm import CallStats, Extraction
from caseextract.pipeline.outcome import doc_info, failed_record, ok_record
from caseextract.pipeline.passes.chunks import (
    TokenCounter,
    chars_per_token,
    chunk_ranges,
    estimate_tokens,
    halves,
)
from caseextract.pipeline.passes.merge import Merger, finish, ground, merge_all, merge_roster
from caseextract.pipeline.passes.store import PassStore
from caseextract.pipeline.passes.units import LABEL, Shape, Unit
from caseextract.records import ErrorInfo, PassInfo, ResultRecord, Usage
from caseextract.redaction import redact
from caseextract.tasks import Task, fence_safe

if TYPE_CHECKING:
    from caseextract.llm.client import ModelClient
    from caseextract.store import ResultWriter


class Runner(Protocol):
    """What the passes need of the runner that calls them (``pipeline.runner.Runner``)."""

    task: Task
    client: ModelClient
    writer: ResultWriter
    passes: PassConfig | None
    preflight: Callable[[list[dict[str, str]]], None] | None


PASS_MODES = ("auto", "single", "multi")
# A capable model's complete answer runs to about as many tokens as the report
# (19–30k-character reports gave 6–8k-token answers; GUIDE §9).
ANSWER_RATIO = 1.0
PLAN_TEMPLATE, FILL_TEMPLATE = "passes/plan.j2", "passes/fill.j2"
PASS_TEXT_TOKENS = 300  # the pass instructions with a roster's quotes, at most


@dataclass
class PassConfig:
    """How documents are split into passes (see the module docstring)."""

    strategy: str = "auto"  # --passes: auto, single or multi
    context_window: int | None = None  # tokens; None = unknown (no chunking)
    count_tokens: TokenCounter | None = None  # a real tokenizer, else chars / 4
    store_dir: Path | None = None  # finished passes; None = beside the results file
    resume: bool = True  # reuse finished passes found in the store
    concurrency: int = 4  # passes of one document in flight at once
    overlap: int = 1000  # characters shared by neighbouring chunks
    min_split_chars: int = 400  # a text range this short is not halved again
    max_passes: int = 100  # model calls one document may take, splits included

    def __post_init__(self) -> None:
        if self.strategy not in PASS_MODES:
            choices = ", ".join(PASS_MODES)
            raise ConfigError(f"--passes must be one of {choices}, not {self.strategy!r}")
        if self.max_passes < 1:
            raise ConfigError("--max-passes must be 1 or more")
        if self.context_window is not None and self.context_window <= 0:
            raise ConfigError("--context-window must be a positive number of tokens")


class UnitFailed(Exception):
    def __init__(self, unit: Unit, error: ExtractError, reason: str = "") -> None:
        super().__init__(f"pass {unit.key}: {reason or error}")
        self.unit, self.error = unit, error


def is_context_overflow(exc: BaseException) -> bool:
    """A prompt too long for the context (local pre-check, or a server's 400)."""
    text = str(exc).lower()
    if isinstance(exc, InputError):
        return "too long" in text and "context" in text
    return isinstance(exc, NonRetryableError) and "too long for the model's context" in text


def _stats(data: dict[str, Any]) -> dict[str, int]:
    keys = ("attempts", "http_requests", "http_retries", "prompt_tokens", "completion_tokens")
    return {k: int(data.get(k) or 0) for k in keys}


def _schema_tokens(model: Any) -> int:
    return estimate_tokens(json.dumps(model.model_json_schema()))


@dataclass
class _Part:
    value: dict[str, Any]
    offset: int
    item: int | None  # the roster entry it fills; None = the document


@dataclass
class MultiPass:
    """The passes of one document, and the record they make."""

    runner: Runner
    doc: Document
    passes: list[PassInfo] = field(default_factory=list)
    totals: CallStats = field(default_factory=CallStats)

    def __post_init__(self) -> None:
        self.task, self.client = self.runner.task, self.runner.client
        self.cfg: PassConfig = self.runner.passes  # type: ignore[assignment]
        self.shape = Shape.of(self.task.response_model)
        self.merger = Merger(Aligner(self.doc.text))
        self.sem = asyncio.Semaphore(max(1, self.cfg.concurrency))
        self.origins = 0
        self.reserved = 0  # passes granted from --max-passes (begun or about to begin)
        self._seq = 0
        self._order: list[int] = []  # when each pass began: passes are listed in that order
        self.version = self.task.prompt_set.passes_version
        s = self.client.settings
        folder = self.cfg.store_dir
        if folder is None and self.cfg.resume:
            folder = Path(f"{self.runner.writer.path}.passes")
        scope = {
            "doc": [self.doc.id, self.doc.sha256],
            "prompt": self.version,
            "schema": [self.task.response_model.__name__, self.task.schema_version],
            "model": [s.model, s.instructor_mode, s.max_tokens, s.temperature],
        }
        self.store = PassStore(folder if self.cfg.resume else None, self.doc.sha256, scope)

    # -- planning ----------------------------------------------------------------

    def chunks(self) -> list[tuple[int, int] | None]:
        """The document ranges every pass over the whole report reads."""
        window = self.cfg.context_window
        text = self.doc.text
        if window is None:
            return [None]
        overhead = prompt_overhead(self.task, self.doc.id)
        budget = window - (self.client.settings.max_tokens or 0) - overhead
        if budget < 200:
            raise ConfigError(
                f"context window {window:,} tokens leaves no room for the report: prompt "
                f"about {overhead:,} + answer {self.client.settings.max_tokens or 0:,} tokens"
            )
        size = int(budget * chars_per_token(text, self.cfg.count_tokens) * 0.95)
        ranges = chunk_ranges(text, size, min(self.cfg.overlap, size // 4))
        return [None] if len(ranges) == 1 else list(ranges)

    def messages(self, unit: Unit, roster: list[dict[str, Any]]) -> list[dict[str, str]]:

        model = self.shape.unit_model(unit)
        start, end = unit.chunk or (0, len(self.doc.text))
        messages = self.task.prompt_set.render(
            document=fence_safe(tidy(self.doc.text[start:end])),
            document_name=safe_filename(self.doc.id),
            schema_name=model.__name__,
            extra_instructions=self.task.extra_instructions,
        )
        part = None
        if unit.chunk is not None:
            part = {"start": start, "end": end, "total": len(self.doc.text)}
        labels = [str(e.get(LABEL, "")) for e in roster]
        where = [] if unit.item is None else roster[unit.item].get("evidence") or []
        text = self.task.prompt_set.render_pass(
            PLAN_TEMPLATE if unit.kind == "plan" else FILL_TEMPLATE,
            schema_name=model.__name__,
            unit_field=self.shape.unit_field if self.shape.unit_field in unit.fields else None,
            item_name=self.shape.item_name,
            fields=[f for f in unit.fields if unit.kind != "plan" or f != self.shape.unit_field],
            label=unit.label,
            where=[fence_safe(q) for q in where],
            others=[x for i, x in enumerate(labels) if i != unit.item] if unit.label else [],
            part=part,
        )
        messages[0]["content"] += "\n\n" + text
        return messages

    # -- one pass ----------------------------------------------------------------

    def _note(
        self, unit: Unit, status: str, stats: dict[str, Any], exc: Any = None, seq: int = 0
    ) -> None:
        counts = _stats(stats)
        for key, value in counts.items():
            setattr(self.totals, key, getattr(self.totals, key) + value)
        self.totals.model = stats.get("model") or self.totals.model
        error = None
        if exc is not None:
            kind = exc.kind if isinstance(exc, ExtractError) else "internal"
            error = ErrorInfo(kind=kind, message=redact(str(exc), self.client.settings.api_key))
        self._order.append(seq)
        self.passes.append(
            PassInfo(
                unit=unit.key,
                chunk=list(unit.chunk) if unit.chunk else None,
                status=status,
                attempts=counts["attempts"],
                http_requests=counts["http_requests"],
                usage=Usage(
                    prompt_tokens=counts["prompt_tokens"],
                    completion_tokens=counts["completion_tokens"],
                    total_tokens=counts["prompt_tokens"] + counts["completion_tokens"],
                ),
                latency_s=stats.get("latency_s"),
                error=error,
            )
        )

    def split(self, unit: Unit, truncated: bool) -> list[Unit] | None:
        if truncated and (by_fields := unit.split_fields()):
            return by_fields
        start, end = unit.chunk or (0, len(self.doc.text))
        if end - start < 2 * self.cfg.min_split_chars:
            return None
        return [unit.with_chunk(c) for c in halves(start, end, self.doc.text, self.cfg.overlap)]

    async def run_unit(self, unit: Unit, roster: list[dict[str, Any]]) -> list[_Part]:
        offset = unit.chunk[0] if unit.chunk else 0
        self._seq += 1
        seq = self._seq
        stored = self.store.get(self.doc.id, unit.key)
        if stored is not None and isinstance(stored.get("value"), dict):
            self._note(unit, "resumed", stored.get("stats") or {}, seq=seq)
            return [_Part(stored["value"], offset, unit.item)]
        messages = self.messages(unit, roster)
        start, end = unit.chunk or (0, len(self.doc.text))
        try:
            async with self.sem:
                if self.runner.preflight is not None:
                    await asyncio.to_thread(self.runner.preflight, messages)
                ext = await self.client.aextract(
                    messages, self.shape.unit_model(unit), source_text=self.doc.text[start:end]
                )
        except ExtractError as exc:
            stats = exc.context.get("stats") or {}
            truncated = isinstance(exc, OutputTruncated)
            subs = self.split(unit, truncated) if truncated or is_context_overflow(exc) else None
            spent = subs is not None and not self.reserve(len(subs))
            self._note(unit, "split" if subs and not spent else "failed", stats, exc, seq)
            if spent:
                reason = f"{exc} (and the document's --max-passes {self.cfg.max_passes} is spent)"
                raise UnitFailed(unit, exc, reason) from None
            if subs:
                return await self.run_all(subs, roster)
            if truncated or is_context_overflow(exc):
                reason = f"{exc} (and the pass cannot be split further)"
                raise UnitFailed(unit, exc, reason) from None
            raise UnitFailed(unit, exc) from None
        stats = ext.stats.to_dict()
        self._note(unit, "ok", stats, seq=seq)
        value = ext.value.model_dump(mode="json")
        self.store.put(self.doc.id, unit.key, {"value": value, "stats": stats})
        return [_Part(value, offset, unit.item)]

    def reserve(self, n: int) -> bool:
        """Grant ``n`` more passes if the budget allows; check and grant in one step.

        Passes are counted when granted, not when they begin: sibling passes cut at
        the same moment each see the others' splits (no ``await`` in between), so the
        bound holds at any concurrency."""
        if self.reserved + n > self.cfg.max_passes:
            return False
        self.reserved += n
        return True

    async def run_all(self, units: list[Unit], roster: list[dict[str, Any]]) -> list[_Part]:
        """Every unit run (all of them, also when one fails); raises the first failure."""
        runs = (self.run_unit(u, roster) for u in units)
        done = await asyncio.gather(*runs, return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result
        return [p for parts in done for p in parts]  # type: ignore[union-attr]

    # -- the document ------------------------------------------------------------

    def ordered_passes(self) -> list[PassInfo]:
        return [p for _, p in sorted(zip(self._order, self.passes, strict=True), key=_first)]

    def annotate(self, parts: list[_Part]) -> list[dict[str, Any]]:
        out = []
        for part in parts:
            self.origins += 1
            out.append(self.merger.annotate(part.value, part.offset, self.origins))
        return out

    def item_chunks(self, entry: dict[str, Any], nxt: int | None, chunks: list[Any]) -> list[Any]:
        """The chunks a roster entry is described in (all when not placed)."""
        if chunks == [None]:
            return chunks
        spans = entry.get("_spans") or []
        if not spans:
            return chunks
        first = min(s for s, _ in spans)
        end = nxt if nxt is not None and nxt > first else len(self.doc.text)
        return [
            c
            for c in chunks
            if (c[0] < end and first < c[1]) or any(c[0] <= s < c[1] for s, _ in spans)
        ]

    async def extract(self) -> Extraction:
        shape = self.shape
        chunks = self.chunks()
        roster: list[dict[str, Any]] = []
        plan: dict[str, Any] = {}
        if shape.unit_field:
            fields = (*shape.plan_fields, shape.unit_field)
            units = [Unit("plan", fields, chunk=c) for c in chunks]
            self.reserved += len(units)  # the plan is always read (a too-small budget fails next)
            answers = self.annotate(await self.run_all(units, roster))
            roster = merge_roster(e for a in answers for e in a.get(shape.unit_field) or [])
            meta = ({k: v for k, v in a.items() if k in shape.plan_fields} for a in answers)
            plan = merge_all(meta) or {}
        starts = [min((s for s, _ in e.get("_spans") or []), default=None) for e in roster]
        fills: list[Unit] = []
        for i, entry in enumerate(roster):
            nxt = min((s for s in starts[i + 1 :] if s is not None), default=None)
            label = str(entry.get(LABEL, ""))
            for c in self.item_chunks(entry, nxt, chunks):
                fills.append(Unit("item", shape.item_fields, i, label, c))
        if shape.document_fields:
            fills += [Unit("document", shape.document_fields, chunk=c) for c in chunks]
        if not self.reserve(len(fills)):
            raise ConfigError(
                f"the document needs {self.reserved + len(fills)} passes (roster of {len(roster)}, "
                f"{len(chunks)} chunk(s)), more than --max-passes {self.cfg.max_passes}"
            )
        parts = await self.run_all(fills, [finish(e) for e in roster])
        by_unit: dict[int | None, list[dict[str, Any]]] = {}
        for part, answer in zip(parts, self.annotate(parts), strict=True):
            by_unit.setdefault(part.item, []).append(answer)
        value: dict[str, Any] = dict(plan)
        if shape.unit_field:
            value[shape.unit_field] = [
                {LABEL: entry.get(LABEL), **(merge_all(by_unit.get(i, [])) or {})}
                for i, entry in enumerate(roster)
            ]
        value.update(merge_all(by_unit.get(None, [])) or {})
        hints: dict[str, int] = {}
        clean = finish(value, "", hints)
        try:
            result = self.task.response_model.model_validate(clean)
        except ValueError as exc:
            raise ModelCallError(f"the merged passes do not validate: {exc}") from None
        facts = ground(result, self.merger.aligner, hints)
        return Extraction(result, self.totals, facts)


def prompt_overhead(task: Task, doc_id: str) -> int:
    """Estimated tokens of a pass's prompt without the report: templates, pass
    instructions (at most ``PASS_TEXT_TOKENS``) and the response model's schema."""
    empty = task.prompt_set.render(
        document="",
        document_name=safe_filename(doc_id),
        schema_name=task.response_model.__name__,
        extra_instructions=task.extra_instructions,
    )
    text = sum(estimate_tokens(m["content"]) for m in empty)
    return text + PASS_TEXT_TOKENS + _schema_tokens(task.response_model)


def _first(pair: tuple[int, PassInfo]) -> int:
    return pair[0]


def _wants_multi(runner: Runner, doc: Document, messages: list[dict[str, str]]) -> str | None:
    """Why ``auto`` goes multi-pass for this document before any call (None: it does not)."""
    cfg: PassConfig = runner.passes  # type: ignore[assignment]
    max_tokens = runner.client.settings.max_tokens or 0
    count = cfg.count_tokens
    doc_tokens = estimate_tokens(doc.text, count)
    if cfg.context_window is not None:
        prompt = sum(estimate_tokens(m["content"], count) for m in messages)
        prompt += _schema_tokens(runner.task.response_model)
        if prompt + max_tokens > cfg.context_window:
            window = cfg.context_window
            return f"prompt ~{prompt:,} + answer {max_tokens:,} tokens > context {window:,}"
    if max_tokens and doc_tokens * ANSWER_RATIO > max_tokens:
        expected = int(doc_tokens * ANSWER_RATIO)
        return f"expected answer ~{expected:,} tokens > max_tokens {max_tokens:,}"
    return None


async def run_passes(runner: Runner, doc: Document, messages: list[dict[str, str]]) -> ResultRecord:
    """The record of one document under ``runner.passes`` (auto or multi)."""

    cfg: PassConfig = runner.passes  # type: ignore[assignment]
    started = time.perf_counter()
    job = MultiPass(runner, doc)
    if cfg.strategy == "auto" and _wants_multi(runner, doc, messages) is None:
        single = Unit("single", ())
        job.reserved += 1  # a call like any pass: it counts against --max-passes
        try:
            if runner.preflight is not None:
                await asyncio.to_thread(runner.preflight, messages)
            ext = await runner.client.aextract(
                messages, runner.task.response_model, source_text=doc.text
            )
        except ExtractError as exc:
            if not (isinstance(exc, OutputTruncated) or is_context_overflow(exc)):
                raise
            job._note(single, "split", exc.context.get("stats") or {}, exc)
        else:
            job._note(single, "ok", ext.stats.to_dict())
            record = ok_record(runner.task, runner.client, doc, ext)
            record.passes = job.passes
            return record
    try:
        ext = await job.extract()
    except (UnitFailed, ExtractError) as exc:
        error = exc.error if isinstance(exc, UnitFailed) else exc
        message = str(exc) if isinstance(exc, UnitFailed) else str(error)
        job.totals.latency_s = round(time.perf_counter() - started, 4)
        failure = type(error)(message, **{**error.context, "stats": job.totals.to_dict()})
        record = failed_record(runner.task, runner.client, _info(doc), failure)
    else:
        job.totals.latency_s = round(time.perf_counter() - started, 4)
        record = ok_record(runner.task, runner.client, doc, ext)
        job.store.forget(doc.id, doc.sha256)  # done: its record holds everything
    record.prompt_version = job.version
    record.passes = job.ordered_passes()
    return record


def _info(doc: Document) -> Any:

    return doc_info(doc)
