"""The ``messages`` field type: a chat as a list of ``{"role", "content"}`` mappings, roles
``system``, ``user`` and ``assistant``.

JSONL and Parquet keep the list as it is (Parquet as ``list<struct<role, content>>``); CSV has no
lists, so the writer stores it as JSON text and ``parse_messages`` reads that text back.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ROLES = ("system", "user", "assistant")


class ChatMessage(BaseModel):
    """One message of a ``messages`` field, as structured output asks for it."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


def parse_messages(value: Any, *, max_chars: int | None = None) -> list[dict[str, str]]:
    """``value`` as a checked list of ``{"role", "content"}`` (JSON text is parsed first).

    Raises ``ValueError`` saying which message is wrong and how, e.g. ``message 2: role 'bot' is
    not one of system, user, assistant``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"expected a list of messages or its JSON text; the text is not JSON "
                f"({exc.msg} at char {exc.pos})"
            ) from None
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected a list of messages, got {type(value).__name__}")
    if not value:
        raise ValueError("holds no messages")
    checked = []
    for number, message in enumerate(value, start=1):
        checked.append(_one(number, message, max_chars))
    return checked


def _one(number: int, message: Any, max_chars: int | None) -> dict[str, str]:
    where = f"message {number}"
    if not isinstance(message, dict):
        raise ValueError(f"{where}: expected a mapping with role and content, got {message!r}")
    extra = sorted(set(message) - {"role", "content"})
    if extra:
        raise ValueError(f"{where}: unknown keys {extra} (a message has role and content)")
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise ValueError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    if role == "system" and number != 1:
        raise ValueError(f"{where}: a system message may only come first")
    if not isinstance(content, str):
        raise ValueError(f"{where}: content must be text, got {type(content).__name__}")
    if not content.strip():
        raise ValueError(f"{where}: content is empty")
    if max_chars is not None and len(content) > max_chars:
        raise ValueError(f"{where}: content has {len(content)} characters, more than {max_chars}")
    return {"role": role, "content": content}
