"""Keep API keys out of everything the program writes or prints."""

from __future__ import annotations

import logging
import os
import re

_KNOWN: set[str] = set()
_KEY_SHAPES = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-\.]{8,})")


def register(secret: str | None) -> None:
    """Remember a secret so that ``redact`` removes it wherever it appears."""
    if secret and len(secret) >= 4:
        _KNOWN.add(secret)


def redact(text: str, *extra: str | None) -> str:
    for secret in [*_KNOWN, *(e for e in extra if e and len(e) >= 4)]:
        text = text.replace(secret, "[redacted]")
    return _KEY_SHAPES.sub("[redacted]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


def register_from_env() -> None:
    register(os.environ.get("OPENAI_API_KEY"))
    register(os.environ.get("AZURE_OPENAI_API_KEY"))
