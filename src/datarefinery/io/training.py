"""Records as rows in the shapes trainers read: chat messages, ShareGPT, Alpaca, DPO pairs.

The shapes follow TRL's guide "Dataset formats and types" (as of TRL 0.24):

- ``sft-messages``: conversational language modeling, ``{"messages": [{"role", "content"}, ...]}``.
- ``dpo``: standard preference, ``{"prompt": str, "chosen": str, "rejected": str}``.
- ``dpo-messages``: conversational preference: ``prompt`` is the messages before the answer
  (system, user), ``chosen`` and ``rejected`` are one assistant message each.

and the two community shapes the common fine-tuning tools (LLaMA-Factory, Axolotl) read:

- ``sharegpt``: ``{"conversations": [{"from": "system"|"human"|"gpt", "value": str}, ...]}``.
- ``alpaca``: ``{"instruction", "input", "output"}`` as in the Stanford Alpaca release, plus
  ``system`` when the record has one.

Which record field feeds which part is an ``ExportMapping``; unset parts fall back to the first
field present among ``DEFAULT_FIELDS``. A record that lacks a part raises ``MappingProblem``
naming the field and the option that sets it: an export never leaves a record out silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from datarefinery.records import Record

Message = dict[str, str]
Row = dict[str, Any]

ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}

# The names other tools and this project's steps give each part, most usual first.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "messages": ("messages",),
    "prompt": ("prompt", "instruction", "question"),
    "response": ("response", "output", "answer"),
    "input": ("input",),
    "chosen": ("chosen",),
    "rejected": ("rejected",),
}


class ExportMapping(BaseModel):
    """Which record field holds each part of a training row (``None``: the defaults), and
    ``keep``: record fields copied into every row as they are (``id`` is the record id).
    ``system`` has no default: a system message is written only where a field is named.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: str | None = None
    prompt: str | None = None
    response: str | None = None
    system: str | None = None
    input: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    keep: tuple[str, ...] = ()

    def is_default(self) -> bool:
        return self == ExportMapping()


class MappingProblem(Exception):
    """A record cannot fill a row: ``field`` is the record field at fault, ``option`` the
    ``--NAME-field`` option (``ExportMapping`` attribute) that chooses it.
    """

    def __init__(self, field: str, option: str, message: str) -> None:
        self.field = field
        self.option = option
        self.message = message
        super().__init__(message)


def _option_hint(part: str) -> str:
    return f"set --{part}-field (mapping {part}=...)"


def _find(record: Record, mapping: ExportMapping, part: str) -> str | None:
    """The record field that holds ``part``, or ``None`` if no default field is present."""
    chosen: str | None = getattr(mapping, part)
    if chosen is not None:
        if chosen not in record.fields:
            raise MappingProblem(
                chosen,
                part,
                f"no field {chosen!r} (it has: {_present(record)}); check --{part}-field",
            )
        return chosen
    return next((name for name in DEFAULT_FIELDS[part] if name in record.fields), None)


def _present(record: Record) -> str:
    return ", ".join(sorted(record.fields)) or "no fields"


def _require(record: Record, mapping: ExportMapping, part: str) -> tuple[str, Any]:
    name = _find(record, mapping, part)
    if name is None:
        looked = ", ".join(repr(n) for n in DEFAULT_FIELDS[part])
        raise MappingProblem(
            DEFAULT_FIELDS[part][0],
            part,
            f"no {part} field (looked for {looked}; it has: {_present(record)}): "
            f"{_option_hint(part)}",
        )
    return name, record.fields[name]


def _text(value: Any, field: str, part: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MappingProblem(field, part, f"the {part} must be text, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise MappingProblem(field, part, f"the {part} is empty")
    return text


def parse_messages(value: Any, field: str, part: str = "messages") -> list[Message]:
    """A list of ``{role, content}`` (or its JSON text, as CSV holds it), checked."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise MappingProblem(field, part, f"not a JSON list of messages: {exc.msg}") from None
    if not isinstance(value, list) or not value:
        raise MappingProblem(field, part, "expected a non-empty list of {role, content} messages")
    messages: list[Message] = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise MappingProblem(field, part, f"message {number} is not a {{role, content}} object")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise MappingProblem(
                field, part, f"message {number}: role {role!r} is not one of {', '.join(ROLES)}"
            )
        if not isinstance(content, str):
            raise MappingProblem(field, part, f"message {number}: content must be text")
        messages.append({"role": role, "content": content})
    return messages


def _maybe_messages(value: Any, field: str, part: str) -> list[Message] | None:
    """``value`` as messages when it is a list (or the JSON text of a list of messages), else
    ``None``: a text that merely starts like JSON stays text.
    """
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            return parse_messages(value, field, part)
        except MappingProblem:
            return None
    if isinstance(value, list):
        return parse_messages(value, field, part)
    return None


def _system(record: Record, mapping: ExportMapping) -> list[Message]:
    if mapping.system is None:
        return []
    name = _find(record, mapping, "system")
    assert name is not None  # _find returns the named field or raises
    value = record.fields[name]
    if value is None or value == "":
        return []
    return [{"role": "system", "content": _text(value, name, "system")}]


def _user_text(record: Record, mapping: ExportMapping) -> str:
    name, value = _require(record, mapping, "prompt")
    text = _text(value, name, "prompt")
    input_name = _find(record, mapping, "input")
    extra = record.fields.get(input_name) if input_name else None
    if extra not in (None, ""):
        text = f"{text}\n\n{_text(extra, str(input_name), 'input')}"
    return text


def _uses_messages(record: Record, mapping: ExportMapping) -> bool:
    if mapping.messages is not None:
        return True
    explicit_parts = mapping.prompt is not None or mapping.response is not None
    return not explicit_parts and "messages" in record.fields


def conversation(record: Record, mapping: ExportMapping) -> list[Message]:
    """The record's chat: its messages field, else system? + user (prompt, input) + assistant."""
    if _uses_messages(record, mapping):
        name, value = _require(record, mapping, "messages")
        messages = _system(record, mapping) + parse_messages(value, name)
        if not any(m["role"] == "assistant" for m in messages):
            raise MappingProblem(name, "messages", "has no assistant message to train on")
        return messages
    user = {"role": "user", "content": _user_text(record, mapping)}
    name, value = _require(record, mapping, "response")
    return [
        *_system(record, mapping),
        user,
        {"role": "assistant", "content": _text(value, name, "response")},
    ]


def sft_messages_row(record: Record, mapping: ExportMapping) -> Row:
    return {"messages": conversation(record, mapping)}


def sharegpt_row(record: Record, mapping: ExportMapping) -> Row:
    turns = conversation(record, mapping)
    return {
        "conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in turns]
    }


def alpaca_row(record: Record, mapping: ExportMapping) -> Row:
    if not _uses_messages(record, mapping):
        prompt_name, prompt = _require(record, mapping, "prompt")
        response_name, response = _require(record, mapping, "response")
        input_name = _find(record, mapping, "input")
        extra = record.fields.get(input_name) if input_name else None
        row: Row = {
            "instruction": _text(prompt, prompt_name, "prompt"),
            "input": "" if extra is None else str(extra),
            "output": _text(response, response_name, "response"),
        }
        system = _system(record, mapping)
    else:
        turns = conversation(record, mapping)
        system = [m for m in turns if m["role"] == "system"]
        rest = [m for m in turns if m["role"] != "system"]
        if [m["role"] for m in rest] != ["user", "assistant"] or len(system) > 1:
            raise MappingProblem(
                mapping.messages or "messages",
                "messages",
                f"a conversation of {len(turns)} messages does not fit Alpaca (one instruction, "
                "one output): use --format sft-messages or sharegpt",
            )
        row = {"instruction": rest[0]["content"], "input": "", "output": rest[1]["content"]}
    if system:
        row["system"] = system[0]["content"]
    return row


def dpo_row(record: Record, mapping: ExportMapping) -> Row:
    if mapping.system is not None:
        raise MappingProblem(
            mapping.system, "system", "standard dpo rows have no system: use --format dpo-messages"
        )
    row: Row = {}
    for part in ("prompt", "chosen", "rejected"):
        name, value = _require(record, mapping, part)
        if _maybe_messages(value, name, part) is not None:
            raise MappingProblem(
                name, part, f"the {part} holds messages: use --format dpo-messages"
            )
        row[part] = _text(value, name, part)
    return row


def dpo_messages_row(record: Record, mapping: ExportMapping) -> Row:
    name, value = _require(record, mapping, "prompt")
    prompt = _maybe_messages(value, name, "prompt")
    if prompt is None:
        prompt = [{"role": "user", "content": _text(value, name, "prompt")}]
    row: Row = {"prompt": _system(record, mapping) + prompt}
    for part in ("chosen", "rejected"):
        name, value = _require(record, mapping, part)
        answer = _maybe_messages(value, name, part)
        if answer is None:
            answer = [{"role": "assistant", "content": _text(value, name, part)}]
        row[part] = answer
    return row


def with_kept(row: Row, record: Record, mapping: ExportMapping) -> Row:
    """``row`` plus the ``keep`` fields; a name the row already has is refused."""
    for name in mapping.keep:
        if name in row:
            raise MappingProblem(name, "keep", f"--keep {name} would overwrite the row's {name!r}")
        if name == "id":
            row[name] = record.id
        elif name in record.fields:
            row[name] = record.fields[name]
        elif name in record.scores:
            row[name] = record.scores[name]
        else:
            raise MappingProblem(
                name, "keep", f"no field or score {name!r} to keep (it has: {_present(record)})"
            )
    return row


SHAPES: dict[str, Callable[[Record, ExportMapping], Row]] = {
    "sft-messages": sft_messages_row,
    "sharegpt": sharegpt_row,
    "alpaca": alpaca_row,
    "dpo": dpo_row,
    "dpo-messages": dpo_messages_row,
}
