"""Prompt templates: Jinja files that render to chat messages.

A template is split into messages by lines of the form ``### system``, ``### user`` or
``### assistant``; text before the first marker is an error. Templates ship in
``datarefinery/prompts/templates`` and any step option ``template:`` may name a file path instead,
so users can override a prompt without touching code. The template hash (of its source) goes into
each record's provenance.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import jinja2

from datarefinery.errors import ConfigError
from datarefinery.llm.base import Message, Role

TEMPLATE_DIR = Path(__file__).parent / "templates"
_MARKER = re.compile(r"^###\s*(system|user|assistant)\s*$", re.MULTILINE)
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
)


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    source: str
    hash: str
    template: jinja2.Template

    def render(self, **variables: Any) -> tuple[Message, ...]:
        try:
            text = self.template.render(**variables)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"template {self.name}: {exc.message}") from None
        return split_messages(text, self.name)


def split_messages(text: str, name: str) -> tuple[Message, ...]:
    parts = _MARKER.split(text)
    if parts[0].strip():
        raise ConfigError(
            f"template {name}: text before the first '### system' / '### user' marker"
        )
    messages = []
    for role, body in zip(parts[1::2], parts[2::2], strict=True):
        body = body.strip()
        if body:
            messages.append(Message(cast(Role, role), body))
    if not messages or messages[-1].role != "user":
        raise ConfigError(f"template {name}: the last message must be a '### user' section")
    return tuple(messages)


@lru_cache(maxsize=128)
def load_template(name_or_path: str) -> PromptTemplate:
    """A shipped template by name (``zero_shot``) or a template file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".jinja" or candidate.exists():
        path = candidate
    else:
        path = TEMPLATE_DIR / f"{name_or_path}.jinja"
    if not path.is_file():
        shipped = sorted(p.stem for p in TEMPLATE_DIR.glob("*.jinja"))
        raise ConfigError(
            f"no prompt template {name_or_path!r}: give a path to a .jinja file or one of {shipped}"
        )
    source = path.read_text(encoding="utf-8")
    try:
        template = _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"template {path}, line {exc.lineno}: {exc.message}") from None
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    return PromptTemplate(name=str(name_or_path), source=source, hash=digest, template=template)


@lru_cache(maxsize=1)
def shipped_templates_digest() -> str:
    """One digest of every shipped template's name and source. A run keeps it so that resuming
    after an upgrade that changed a prompt is refused instead of mixing replies to both prompts
    (template files given by path are fingerprinted with the spec's other files).
    """
    digest = hashlib.sha256()
    for path in sorted(TEMPLATE_DIR.glob("*.jinja")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def resolve_template(
    name: str, override: str | None, overrides: dict[str, str], base_dir: Path
) -> PromptTemplate:
    """The template a step uses for its prompt ``name``.

    In order: the step's own ``template:`` option (a shipped name, or a path), the task's
    ``templates:`` entry for ``name`` (a path), the shipped template. Relative paths are relative
    to the spec's folder, not to the working directory, so a spec runs the same from anywhere.
    """
    if override is not None:
        is_path = override.endswith(".jinja") or "/" in override
        chosen = override
    elif name in overrides:
        is_path, chosen = True, overrides[name]
    else:
        is_path, chosen = False, name
    if is_path and not Path(chosen).is_absolute():
        chosen = str(base_dir / chosen)
    return load_template(chosen)
