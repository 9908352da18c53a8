"""Prompt sets: a folder of Jinja2 templates, rendered by us, never by instructor.

A prompt set holds ``system.j2`` and ``user.j2``. Templates are rendered with
``StrictUndefined`` (a missing variable is an error, not an empty string). The
document is passed as a *value*: Jinja does not re-read what it inserts, so a
report containing ``{{ … }}`` or ``{% … %}`` reaches the model byte for byte.
The prompt version is a hash of the set's files, recorded in every result.

Multi-pass extraction (``caseextract.passes``) adds ``passes/plan.j2`` and
``passes/fill.j2``: instructions appended to the system message of each pass.
A set without them uses the generic ones in ``_shared/passes/``. They do not
change ``version`` (single-pass requests stay byte-identical); ``passes_version``
hashes the single-pass files together with the pass templates used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from ..errors import PromptError

PROMPTS_DIR = Path(__file__).resolve().parent
REQUIRED = ("system.j2", "user.j2")
PASS_TEMPLATES = ("passes/plan.j2", "passes/fill.j2")
SHARED_DIR = PROMPTS_DIR / "_shared"
DEFAULT_PROMPT_SET = "case_report"


@dataclass(frozen=True)
class PromptSet:
    name: str
    folder: Path
    version: str
    _env: Environment

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages for one document."""
        try:
            system = self._env.get_template("system.j2").render(**variables).strip()
            user = self._env.get_template("user.j2").render(**variables).strip()
        except TemplateError as exc:
            raise PromptError(f"prompt set {self.name!r}: {exc}") from None
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def render_pass(self, template: str, **variables: Any) -> str:
        """One of ``PASS_TEMPLATES`` (the set's own, else the shared one), rendered."""
        try:
            text = self._env.get_template(template).render(**variables).strip()
        except TemplateError as exc:
            raise PromptError(f"prompt set {self.name!r}: {template}: {exc}") from None
        return re.sub(r"\n{3,}", "\n\n", text)

    @property
    def passes_version(self) -> str:
        """Hash of the single-pass files and the pass templates this set uses."""
        digest = hashlib.sha256(self.version.encode())
        for name in PASS_TEMPLATES:
            try:
                source = self._env.loader.get_source(self._env, name)[0]  # type: ignore[union-attr]
            except TemplateError as exc:
                raise PromptError(f"prompt set {self.name!r}: {name}: {exc}") from None
            digest.update(name.encode() + b"\0" + source.encode() + b"\0")
        return digest.hexdigest()[:12]


def _version(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.j2")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def available() -> list[str]:
    """The prompt sets shipped with caseextract."""
    return sorted(
        p.name for p in PROMPTS_DIR.iterdir() if all((p / f).is_file() for f in REQUIRED)
    )


def load_prompt_set(name_or_path: str | Path = DEFAULT_PROMPT_SET) -> PromptSet:
    """A shipped set by name (``case_report``) or any folder holding system.j2 and user.j2."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        folder = PROMPTS_DIR / str(name_or_path)
    if not folder.is_dir():
        raise PromptError(
            f"prompt set {str(name_or_path)!r} does not exist: use one of "
            f"{', '.join(available())}, or a folder holding {' and '.join(REQUIRED)}"
        )
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise PromptError(f"prompt set {str(name_or_path)!r}: missing {', '.join(missing)}")
    env = Environment(
        loader=FileSystemLoader([str(folder), str(SHARED_DIR)]),
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    return PromptSet(folder.name, folder, _version(folder), env)
