"""Token ledger: what runs and recordings spent, per model; prices only from the user.

Cached prompt tokens (read from the provider's prompt cache) are part of the
prompt tokens; a price table that gives ``cached_input_per_million`` prices them
at that rate, otherwise at the input rate. Prompt tokens written to the cache
(``cache_write_tokens``, reported by the Responses API: the openai SDK's
``types/responses/response_usage.py``) are priced at ``cache_write_per_million``
when the table gives it, otherwise at the input rate. Reasoning tokens are part of the
completion tokens and priced as output, as the providers bill them.

Tokens answered through the Batch API (``record["batch"]["usage"]``) are priced
with the table's batch prices: ``batch_input_per_million`` and
``batch_output_per_million``, or ``batch_factor`` (e.g. 0.5) times the synchronous
prices. A table that says neither gives no cost for them (never a guess).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from caseextract.llm.recording import read_exchanges
from caseextract.store import read_records


@dataclass
class Spend:
    documents: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens
    cache_write_tokens: int = 0  # of prompt_tokens
    reasoning_tokens: int = 0  # of completion_tokens
    batch_prompt_tokens: int = 0  # of the above, answered through the Batch API
    batch_completion_tokens: int = 0


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float
    currency: str = "USD"
    cached_input_per_million: float | None = None  # None: cached input at the input rate
    batch_input_per_million: float | None = None
    batch_output_per_million: float | None = None
    cache_write_per_million: float | None = None  # None: cache writes at the input rate

    def cost(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        cached_tokens: int = 0,
        batch_prompt: int = 0,
        batch_completion: int = 0,
        cache_write_tokens: int = 0,
    ) -> float | None:
        """Cost of the tokens; ``None`` when batch tokens have no batch price."""
        direct_prompt = prompt_tokens - batch_prompt
        cached_rate = self.cached_input_per_million
        cached = 0 if cached_rate is None else min(cached_tokens, direct_prompt)
        write_rate = self.cache_write_per_million
        written = 0 if write_rate is None else min(cache_write_tokens, direct_prompt - cached)
        direct = (
            (direct_prompt - cached - written) * self.input_per_million
            + cached * (cached_rate or 0.0)
            + written * (write_rate or 0.0)
            + (completion_tokens - batch_completion) * self.output_per_million
        ) / 1e6
        if not (batch_prompt or batch_completion):
            return direct
        if self.batch_input_per_million is None or self.batch_output_per_million is None:
            return None
        return (
            direct
            + (
                batch_prompt * self.batch_input_per_million
                + batch_completion * self.batch_output_per_million
            )
            / 1e6
        )


def load_prices(path: Path) -> dict[str, Price]:
    """``[models."name"] input_per_million = …, output_per_million = …, currency = "USD"``,
    optionally ``cached_input_per_million = …`` and ``cache_write_per_million = …``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    models = data.get("models")
    if not isinstance(models, dict):
        raise ValueError('expected a [models."<name>"] table')
    out = {}
    for name, entry in models.items():
        try:
            cached = entry.get("cached_input_per_million")
            price_in, price_out = (
                float(entry["input_per_million"]),
                float(entry["output_per_million"]),
            )
            batch_in, batch_out = (
                entry.get("batch_input_per_million"),
                entry.get("batch_output_per_million"),
            )
            if "batch_factor" in entry and batch_in is None and batch_out is None:
                factor = float(entry["batch_factor"])
                batch_in, batch_out = price_in * factor, price_out * factor
            out[name] = Price(
                price_in,
                price_out,
                str(entry.get("currency", "USD")),
                None if cached is None else float(cached),
                None if batch_in is None else float(batch_in),
                None if batch_out is None else float(batch_out),
                None
                if entry.get("cache_write_per_million") is None
                else float(entry["cache_write_per_million"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model {name!r}: {exc}") from None
    return out


def ledger_from_results(paths: Iterable[Path]) -> dict[str, Spend]:
    rows: dict[str, Spend] = {}
    for path in paths:
        for record in read_records(path):
            spend = rows.setdefault(record.model_name, Spend())
            spend.documents += 1
            spend.calls += record.attempts
            spend.prompt_tokens += record.usage.prompt_tokens
            spend.completion_tokens += record.usage.completion_tokens
            spend.cached_tokens += record.usage.cached_tokens
            spend.cache_write_tokens += record.usage.cache_write_tokens
            spend.reasoning_tokens += record.usage.reasoning_tokens
            batch = (getattr(record, "batch", None) or {}).get("usage") or {}
            spend.batch_prompt_tokens += batch.get("prompt_tokens", 0)
            spend.batch_completion_tokens += batch.get("completion_tokens", 0)
    return rows


def ledger_from_recordings(folder: Path) -> dict[str, Spend]:
    """Tokens of every recorded exchange in ``folder``, per model (read through
    ``llm.recording.read_exchanges``); documents counted by the document each carried."""
    rows: dict[str, Spend] = {}
    docs: dict[str, set[str]] = {}
    for exchange in read_exchanges(folder):
        name = exchange.model or "unknown model"
        spend = rows.setdefault(name, Spend())
        usage = exchange.usage
        spend.calls += 1
        spend.prompt_tokens += usage.prompt_tokens
        spend.completion_tokens += usage.completion_tokens
        spend.cached_tokens += usage.cached_tokens
        spend.cache_write_tokens += usage.cache_write_tokens
        spend.reasoning_tokens += usage.reasoning_tokens
        if exchange.batch:  # caseextract batch
            spend.batch_prompt_tokens += usage.prompt_tokens
            spend.batch_completion_tokens += usage.completion_tokens
        docs.setdefault(name, set()).add(exchange.document)
    for name, seen in docs.items():
        rows[name].documents = len(seen)
    return rows
