"""The model boundary's plain types: settings in, statistics and the extraction out.

``ModelSettings`` is what a run asks of the model (endpoint, mode, budgets, retries);
``CallStats`` what one extraction cost, counted once per completion; ``Extraction``
the validated answer with its grounded facts. No SDK is imported here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from caseextract.errors import ConfigError
from caseextract.grounding.status import GroundedFact
from caseextract.llm import params as request_params
from caseextract.llm.models import DEFAULT_MODEL
from caseextract.redaction import public_url
from pydantic import BaseModel

PLACEHOLDER_KEY = "no-key-needed"  # local OpenAI-compatible servers ignore the key
# Characters per token where no tokenizer is at hand (English clinical text runs near 4).
CHARS_PER_TOKEN = 4.0
MAX_RESPONSE_BYTES = 20_000_000  # a full-schema answer is about 25–40 kB; 20 MB is generous
# How instructor is asked for structure (--mode); llm/client.py maps each to instructor's Mode.
INSTRUCTOR_MODE_NAMES = ("tools", "tools_strict", "json_schema", "json", "md_json")
STRICT_MODES = ("tools_strict", "json_schema")


@dataclass
class CallStats:
    """What one extraction cost: counted once per completion, re-asks included."""

    attempts: int = 0  # completions received (1 + re-asks)
    http_requests: int = 0
    http_retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens, written to the prompt cache (Responses)
    reasoning_tokens: int = 0  # of completion_tokens, spent on hidden reasoning
    latency_s: float = 0.0
    model: str | None = None  # as the server names it
    finish_reason: str | None = None
    json_repairs: int = 0  # answers whose raw control characters were escaped

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass
class ModelSettings:
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    instructor_mode: str = "tools"  # how instructor asks for structure (--mode)
    timeout: float = 120.0
    # "auto": chosen per model family and endpoint (see params); resolved on creation
    max_tokens: int | str | None = "auto"  # the completion budget; None = server default
    temperature: float | str | None = "auto"
    http_retries: int = 3
    reasks: int = 2
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    token_param: str = "auto"  # max_completion_tokens or max_tokens
    model_family: str = "auto"  # reasoning or chat, when the name does not tell
    reasoning_effort: str | None = None
    azure_endpoint: str | None = None  # Azure OpenAI: the model is the deployment name
    api_version: str | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES
    rpm: float | None = None  # client-side limits (llm/ratelimit.py); None: from headers
    tpm: float | None = None
    rate_limit_wait: float = 900.0  # seconds a call may spend on 429s (not counted as retries)
    api: str = "auto"  # responses or chat (/v1/chat/completions); "auto": see params

    def __post_init__(self) -> None:
        if self.instructor_mode not in INSTRUCTOR_MODE_NAMES:
            choices = ", ".join(INSTRUCTOR_MODE_NAMES)
            raise ConfigError(f"unknown mode {self.instructor_mode!r}; choose one of {choices}")
        if self.http_retries < 0 or self.reasks < 0:
            raise ConfigError("retry counts must be 0 or more")
        if any(v is not None and v <= 0 for v in (self.rpm, self.tpm)):
            raise ConfigError("--rpm and --tpm must be more than 0")
        if self.rate_limit_wait < 0:
            raise ConfigError("--rate-limit-wait must be 0 or more")
        if self.azure_endpoint and not self.api_version:
            raise ConfigError("Azure OpenAI needs --api-version (or OPENAI_API_VERSION)")
        p = self.params
        self.max_tokens, self.temperature, self.token_param = p.budget, p.temperature, p.token_param
        self.api = p.api

    @property
    def params(self) -> request_params.RequestParams:
        return request_params.resolve(
            self.model,
            self.base_url,
            self.azure_endpoint,
            family=self.model_family,
            token_param=self.token_param,
            budget=self.max_tokens,
            temperature=self.temperature,
            reasoning_effort=self.reasoning_effort,
            api=self.api,
            mode=self.instructor_mode,
        )

    @property
    def where(self) -> str:
        """The server, as it may be printed (credentials in the URL hidden)."""
        url = self.azure_endpoint or self.base_url
        return public_url(url) if url else "the OpenAI API"

    @property
    def key(self) -> str:
        if self.api_key:
            return self.api_key
        if self.azure_endpoint:
            raise ConfigError("no Azure OpenAI key: set AZURE_OPENAI_API_KEY")
        if self.base_url:
            return PLACEHOLDER_KEY  # local OpenAI-compatible servers ignore the key
        raise ConfigError(
            "no API key: set OPENAI_API_KEY, give --base-url for your own server, "
            "or use --local for the bundled local model (no key, no network)"
        )

    def public(self) -> dict[str, Any]:
        """Settings safe to write into results (no key). The instructor mode is written
        as ``mode`` (the ``--mode`` option), as it always was: files and readers rely on it."""
        data = asdict(self)
        data.pop("api_key")
        return {("mode" if k == "instructor_mode" else k): v for k, v in data.items()}

    @classmethod
    def from_public(cls, data: dict[str, Any], **overrides: Any) -> ModelSettings:
        """Settings from what ``public`` wrote (a manifest, an export index); keys that
        are not settings are left out. Settings written before the Responses path
        existed name no ``api``: their requests went to Chat Completions."""
        known = {f.name for f in fields(cls)}
        values = {("instructor_mode" if k == "mode" else k): v for k, v in data.items()}
        values.setdefault("api", request_params.CHAT_API)
        return cls(**{k: v for k, v in (values | overrides).items() if k in known})


@dataclass
class Extraction:
    value: BaseModel
    stats: CallStats
    facts: list[GroundedFact]
