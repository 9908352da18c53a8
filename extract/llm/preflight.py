"""``caseextract check``: one small request with the run's own settings, before a big run.

``check(settings)`` sends one request for a two-sentence document (``CHECK_TEXT``)
with a small response model (``CheckAnswer``) through the same ``ModelClient`` path
a run takes: the same API (``/v1/responses`` or ``/v1/chat/completions``), mode,
budget parameter, temperature, reasoning effort and strict schema. Only the budget
is capped at ``CHECK_BUDGET`` (so the check spends under 1,000 tokens: about 300
in, at most ``CHECK_BUDGET`` out) and re-asks are off. The exchange is recorded in
a temporary folder, read back and deleted, so the report shows exactly what was
sent and answered: which API, the parameters sent, the model the server names,
whether the schema was enforced by the server (``strict: true`` accepted) or only
validated here, and the cached tokens. A refusal comes back as the run would meet
it: a typed error whose message is one line saying what to change.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caseextract.errors import ExtractError, OutputTruncated
from caseextract.llm.client import ModelClient
from caseextract.llm.recording import RecordingStore, read_exchanges
from caseextract.llm.types import ModelSettings
from pydantic import BaseModel, Field

CHECK_BUDGET = 640
CHECK_TEXT = (
    "A 72-year-old man developed fever two days after knee replacement surgery. "
    "Blood cultures grew Staphylococcus aureus."
)
CHECK_SYSTEM = (
    "You extract data from a short clinical case report. Fill the schema from the report "
    "only; quote the report word for word as evidence. Answer in JSON."
)
_NOT_PARAMETERS = ("messages", "input", "tools", "tool_choice", "response_format", "text")


class CheckAnswer(BaseModel):
    """What the check's two-sentence report says."""

    age_years: int | None = Field(None, description="The patient's age in years, if stated.")
    finding: str = Field(description="The main finding, in a few words.")
    evidence: list[str] = Field(
        default_factory=list, description="Verbatim quotes from the report supporting it."
    )


@dataclass
class CheckReport:
    """What one check request showed."""

    where: str
    api_path: str | None = None  # the path the request went to
    mode: str = ""
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    model: str | None = None  # as the server names it
    enforced: bool = False  # the server took a strict schema
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    answer: dict[str, Any] | None = None
    note: str | None = None
    error: ExtractError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def _strict(body: dict[str, Any]) -> bool:
    tools = body.get("tools") or []
    if tools:
        tool = tools[0]
        return (tool.get("function") or tool).get("strict") is True
    fmt = body.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("strict") is True


def check(settings: ModelSettings) -> CheckReport:
    """Send the check request with ``settings`` (budget capped, no re-asks) and report."""
    budget = settings.max_tokens if isinstance(settings.max_tokens, int) else CHECK_BUDGET
    sent = dataclasses.replace(settings, max_tokens=min(budget, CHECK_BUDGET), reasks=0)
    report = CheckReport(where=sent.where, mode=sent.instructor_mode)
    messages = [
        {"role": "system", "content": CHECK_SYSTEM},
        {"role": "user", "content": f"REPORT:\n{CHECK_TEXT}"},
    ]
    with tempfile.TemporaryDirectory(prefix="caseextract-check-") as folder:
        client = ModelClient(sent, RecordingStore(Path(folder), "record"))
        try:
            ext = client.extract(messages, CheckAnswer)
            report.answer = ext.value.model_dump()
        except OutputTruncated as exc:  # accepted; only the check's small cap was reached
            report.note = (
                f"the answer reached the check's cap of {CHECK_BUDGET} tokens ({exc}); "
                f"the run's own budget is {settings.max_tokens}"
            )
        except ExtractError as exc:
            report.error = exc
        finally:
            client.close()
        for exchange in read_exchanges(Path(folder)):
            body = exchange.request_body if isinstance(exchange.request_body, dict) else {}
            report.api_path = _path(exchange)
            report.parameters = {k: v for k, v in body.items() if k not in _NOT_PARAMETERS}
            report.parameters.pop("model", None)
            report.enforced = _strict(body) and exchange.status == 200
            if exchange.status == 200:
                report.model = exchange.model
            usage = exchange.usage
            report.prompt_tokens += usage.prompt_tokens
            report.completion_tokens += usage.completion_tokens
            report.cached_tokens += usage.cached_tokens
            report.cache_write_tokens += usage.cache_write_tokens
    return report


def _path(exchange: Any) -> str | None:
    data = RecordingStore.read(exchange.path)
    return (data.get("request") or {}).get("path")
