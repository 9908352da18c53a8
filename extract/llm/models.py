"""What is known of OpenAI's model families, as data: one row per family, each cited.

``FAMILIES`` is the table ``params`` reads (and ``caseextract.testing.conformance``
enforces): for each family, the Chat Completions budget parameter and the default
budget this project sends, whether a temperature other than the default is
accepted, the reasoning efforts it takes, whether function tools are accepted on
``/v1/chat/completions`` (and under which effort), and the output limit.
``SHUTDOWNS`` holds the shutdown dates the openai SDK announces, per model name.
``family_of`` finds a name's row (a ``provider/`` prefix and ``ft:`` are ignored;
dated snapshots share their family's row);
``shutdown_notice`` is the one-line warning a run prints for a model that is
leaving (or has left).

Checked on 2026-12-07 against the openai SDK 3.63.0 (the newest wheel:
``types/shared/chat_model.py``, ``types/shared/reasoning_effort.py``) and the public
reports quoting the API's own answers (cited per row). No API key exists here:
nothing in this table was measured against api.openai.com by this project.

Tools on Chat Completions (``chat_tools``):

- ``always``: function tools are accepted with any effort;
- ``without_effort``: accepted only when no effort is sent (or ``none``);
- ``effort_none``: accepted only with ``reasoning_effort: "none"`` (the family's
  default effort applies when none is sent, and it is refused);
- ``never``: the family takes no ``none`` effort, so tools need ``/v1/responses``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

REASONING = "reasoning"
CHAT = "chat"
ALL_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# openai SDK 3.63.0, types/shared/reasoning_effort.py: the values the API knows at all
SDK_TYPES = "openai-python 3.63.0 types/shared/chat_model.py"
DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"


@dataclass(frozen=True)
class Family:
    """One model family's row."""

    name: str
    pattern: str  # regular expression on the lower-case model name
    kind: str  # reasoning or chat
    budget: int  # the default completion budget this project sends
    temperature: bool  # a temperature other than the default (1) is accepted
    efforts: tuple[str, ...]  # reasoning efforts accepted (empty: the parameter is refused)
    chat_tools: str  # always / without_effort / effort_none / never (see the module doc)
    max_output: int  # output-token limit (the model's page); the budget stays below it
    source: str
    budget_param: str = "max_completion_tokens"  # on Chat Completions; Responses: max_output_tokens

    def matches(self, name: str) -> bool:
        return re.match(self.pattern, name) is not None

    def tools_on_chat(self, effort: str | None) -> bool:
        """Whether ``/v1/chat/completions`` takes function tools with this effort sent."""
        if self.chat_tools == "always":
            return True
        if self.chat_tools == "without_effort":
            return effort in (None, "none")
        if self.chat_tools == "effort_none":
            return effort == "none"
        return False


# Reasoning budgets: answers to this schema run to 6–8k tokens and the hidden reasoning
# tokens count against the same budget (https://developers.openai.com/api/docs/guides/reasoning).
REASONING_BUDGET = 32768
CHAT_BUDGET = 8192

FAMILIES: tuple[Family, ...] = (
    Family(
        "gpt-6-astra",
        r"^gpt-6(\.\d+)?-astra",
        REASONING,
        REASONING_BUDGET,
        False,
        ("low", "medium", "high", "xhigh", "max"),
        "never",
        128000,
        # no 'none' or 'minimal', 'max' accepted: The-PR-Agent/pr-agent#3259 (clamps
        # none/minimal to low for Astra), QwenLM/qwen-code#11295 (low..max measured);
        # tools on Chat Completions refused: Wei-Shaw/sub2api#6740 (error body quoted)
        "The-PR-Agent/pr-agent#3259; QwenLM/qwen-code#11295; Wei-Shaw/sub2api#6740",
    ),
    Family(
        "gpt-6",
        r"^gpt-6([.\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("none", "low", "medium", "high", "xhigh", "max"),
        "effort_none",
        128000,
        # the same 400 as gpt-5.6 even without an effort, unless 'none': issue 24 and the
        # guide (checked 2026-12-07); efforts as gpt-5.6 (not measured for gpt-6 here)
        f"{SDK_TYPES} (names); GEMISIS/leviath#333; BerriAI/litellm#34569 (as gpt-5.6)",
    ),
    Family(
        "gpt-5.6",
        r"^gpt-5\.6([.\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("none", "low", "medium", "high", "xhigh", "max"),
        "effort_none",
        128000,
        # 400 "Function tools with reasoning_effort are not supported for gpt-5.6-terra in
        # /v1/chat/completions. To use function tools, use /v1/responses or set
        # reasoning_effort to 'none'." with no effort sent: GEMISIS/leviath#333,
        # BerriAI/litellm#34569 (none → 200, low → 400, unset → 400); efforts: no
        # 'minimal' (bolna-ai/bolna#852), 'max' (anomalyco/opencode#36135, block/buzz#1806)
        "GEMISIS/leviath#333; BerriAI/litellm#34569; bolna-ai/bolna#852; block/buzz#1806",
    ),
    Family(
        "gpt-5.2-5.5",
        r"^gpt-5\.[2-5]([.\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("none", "low", "medium", "high", "xhigh"),
        "without_effort",
        128000,
        # 400 "Function tools with reasoning_effort are not supported for gpt-5.4 in
        # /v1/chat/completions. Please use /v1/responses instead.": pipecat-ai/pipecat#4043,
        # openai/openai-openapi#541, livekit/agents#5088 (drops the effort: accepted);
        # xhigh from 5.2 (stdapi-ai/stdapi.ai#8), no 'max' (block/buzz#1806), no 'minimal'
        "pipecat-ai/pipecat#4043; openai/openai-openapi#541; livekit/agents#5088",
    ),
    Family(
        "gpt-5.1",
        r"^gpt-5\.1([.\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("none", "low", "medium", "high"),
        "always",
        128000,
        # no 'minimal' (bolna-ai/bolna#852), no 'xhigh' (The-PR-Agent/pr-agent#3271)
        "bolna-ai/bolna#852; The-PR-Agent/pr-agent#3271",
    ),
    Family(
        "gpt-5",
        r"^gpt-5([\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("minimal", "low", "medium", "high"),
        "always",
        128000,
        # minimal..high, no xhigh (The-PR-Agent/pr-agent#3271); the model pages (128k output)
        "https://platform.openai.com/docs/models/gpt-5; The-PR-Agent/pr-agent#3271",
    ),
    Family(
        "o-series",
        r"^o[1-9]([.\-_]|$)",
        REASONING,
        REASONING_BUDGET,
        False,
        ("low", "medium", "high"),
        "always",
        100000,
        # measured on /v1/responses: o1, o3-mini "low,medium,high" (enricoros/big-AGI#1159)
        "enricoros/big-AGI#1159; https://platform.openai.com/docs/models/o3",
    ),
    Family(
        "gpt-4.1",
        r"^gpt-4\.1",
        CHAT,
        CHAT_BUDGET,
        True,
        (),
        "always",
        32768,
        "https://platform.openai.com/docs/models/gpt-4.1",
    ),
    Family(
        "gpt-4o",
        r"^(gpt-4o|chatgpt-4o)",
        CHAT,
        CHAT_BUDGET,
        True,
        (),
        "always",
        16384,
        "https://platform.openai.com/docs/models/gpt-4o-mini",
    ),
    Family(
        "gpt-4 / gpt-3.5",
        r"^(gpt-4|gpt-3\.5|gpt-35|chatgpt-)",
        CHAT,
        CHAT_BUDGET,
        True,
        (),
        "always",
        4096,
        "https://platform.openai.com/docs/models/gpt-4-turbo",
    ),
)

# Announced shutdown dates, per model name: openai SDK 3.63.0 types/shared/chat_model.py
# ("Deprecated values", each "Announced shutdown date: …", see DEPRECATIONS).
_SHUTDOWN_GROUPS: dict[str, tuple[str, ...]] = {
    "2027-04-01": ("gpt-5.4-nano", "gpt-5.4-nano-2026-03-17", "gpt-5.1", "gpt-5.1-2025-11-13"),
    "2026-12-11": (
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5-2025-08-07",
        "gpt-5-mini-2025-08-07",
        "gpt-5-nano-2025-08-07",
        "o3",
        "o3-2025-04-16",
    ),
    "2027-01-14": (
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4o",
        "gpt-4o-2024-11-20",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    ),
    "2026-10-23": (
        "gpt-4.1-nano",
        "gpt-4.1-nano-2025-04-14",
        "o4-mini",
        "o4-mini-2025-04-16",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o1",
        "o1-2024-12-17",
        "gpt-4o-2024-05-13",
        "gpt-4-turbo",
        "gpt-4-turbo-2024-04-09",
        "gpt-4-1106-preview",
        "gpt-4",
        "gpt-4-0613",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-0125",
    ),
    "2026-08-10": ("gpt-5.3-chat-latest", "gpt-5.2-chat-latest"),
    "2026-07-23": ("gpt-5.1-codex", "gpt-5.1-chat-latest", "gpt-5-chat-latest"),
    "2026-03-26": ("gpt-4-0125-preview", "gpt-4-turbo-preview", "gpt-4-0314"),
    "2026-02-17": ("chatgpt-4o-latest",),
    "2025-10-27": ("o1-mini", "o1-mini-2024-09-12"),
    "2025-07-28": ("o1-preview", "o1-preview-2024-09-12"),
    "2025-06-06": ("gpt-4-32k", "gpt-4-32k-0314", "gpt-4-32k-0613"),
    "2024-09-13": ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613"),
}
SHUTDOWNS: dict[str, str] = {m: day for day, names in _SHUTDOWN_GROUPS.items() for m in names}

# The default: cost-efficient (the mini tier of the current GPT-5.4 family), with no
# announced shutdown in SDK_TYPES (gpt-5.4-nano has one: 2027-04-01), and it takes
# function tools on Chat Completions without an effort, so local-style requests work too.
DEFAULT_MODEL = "gpt-5.4-mini"


def base_name(model: str) -> str:
    """The name without a ``provider/`` prefix or ``ft:`` (fine-tunes keep the base name)."""
    name = model.rsplit("/", 1)[-1].lower().removeprefix("ft:")
    return name.split(":", 1)[0]


def family_of(model: str) -> Family | None:
    """The family row for a model name, or None (local models, Azure deployments)."""
    name = base_name(model)
    return next((f for f in FAMILIES if f.matches(name)), None)


def shutdown_date(model: str) -> str | None:
    return SHUTDOWNS.get(base_name(model))


def shutdown_notice(model: str, today: dt.date | None = None) -> str | None:
    """One line naming the announced shutdown date of ``model``, or None."""
    day = shutdown_date(model)
    if day is None:
        return None
    today = today or dt.date.today()
    tense = "was shut down" if dt.date.fromisoformat(day) <= today else "shuts down"
    return (
        f"warning: {model} {tense} on {day} (announced by OpenAI, {DEPRECATIONS}); "
        f"choose a current model, e.g. --model {DEFAULT_MODEL}"
    )
