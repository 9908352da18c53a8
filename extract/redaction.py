"""Keep API keys out of everything the program writes or prints.

Secrets are the API key and the credentials inside ``--base-url`` (the password
of ``user:password@`` and the values of query parameters named like a key,
token, secret or signature). Registered once, they are replaced by
``[redacted]`` wherever they appear: records, CSV, recordings, logs, errors.
``public_url`` is a base URL fit to print.
"""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import parse_qsl, unquote, urlsplit

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


_USERINFO = re.compile(r"(?<=//)[^/@?#\s]*@")
_QUERY_VALUE = re.compile(r"([?&][^=&#\s]+=)[^&#\s]*")
_SECRET_PARAM = re.compile(r"key|token|secret|pass|sig|auth|credential|code", re.I)


def public_url(url: str) -> str:
    """``url`` with its user info and every query value replaced by ``[redacted]``."""
    return _QUERY_VALUE.sub(r"\1[redacted]", _USERINFO.sub("[redacted]@", url))


def register_url(url: str | None) -> None:
    """Register the credentials inside a base URL (password, key-like query values)."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # unparsable: the CLI refuses it; hide what looks like userinfo
        match = _USERINFO.search(url)
        password = match.group()[:-1].partition(":")[2] if match else None
        parts = None
    for value in (password, unquote(password or "")):
        register(value)
    query = parts.query if parts is not None else url.partition("?")[2]
    for raw in query.split("&"):
        name, _, value = raw.partition("=")
        if _SECRET_PARAM.search(name):
            register(value)
            register(unquote(value))
    for name, value in parse_qsl(query, keep_blank_values=False):
        if _SECRET_PARAM.search(name):
            register(value)
