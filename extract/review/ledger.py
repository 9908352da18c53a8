"""Token ledger: what runs and recordings spent, per model; prices only from the user."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..store import read_records


@dataclass
class Spend:
    documents: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float
    currency: str = "USD"

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1e6


def load_prices(path: Path) -> dict[str, Price]:
    """``[models."name"] input_per_million = …, output_per_million = …, currency = "USD"``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    models = data.get("models")
    if not isinstance(models, dict):
        raise ValueError('expected a [models."<name>"] table')
    out = {}
    for name, entry in models.items():
        try:
            out[name] = Price(
                float(entry["input_per_million"]),
                float(entry["output_per_million"]),
                str(entry.get("currency", "USD")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model {name!r}: {exc}") from None
    return out


def ledger_from_results(paths: Iterable[Path]) -> dict[str, Spend]:
    rows: dict[str, Spend] = {}
    for path in paths:
        for record in read_records(path):
            name = record.get("model_returned") or record.get("model") or "unknown model"
            spend = rows.setdefault(name, Spend())
            usage = record.get("usage") or {}
            spend.documents += 1
            spend.calls += record.get("attempts", 0)
            spend.prompt_tokens += usage.get("prompt_tokens", 0)
            spend.completion_tokens += usage.get("completion_tokens", 0)
    return rows


def ledger_from_recordings(folder: Path) -> dict[str, Spend]:
    rows: dict[str, Spend] = {}
    docs: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == "manifest.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        body = (data.get("response") or {}).get("body") or {}
        # an error response names no model: count it under the model that was asked
        request = (data.get("request") or {}).get("body") or {}
        asked = request.get("model") if isinstance(request, dict) else None
        name = (data.get("provenance") or {}).get("model") or asked or "unknown model"
        spend = rows.setdefault(name, Spend())
        usage = body.get("usage") or {} if isinstance(body, dict) else {}
        spend.calls += 1
        spend.prompt_tokens += usage.get("prompt_tokens", 0) or 0
        spend.completion_tokens += usage.get("completion_tokens", 0) or 0
        docs.setdefault(name, set()).add(
            (data.get("parts") or {}).get("document (user message)", "")
        )
    for name, seen in docs.items():
        rows[name].documents = len(seen)
    return rows
