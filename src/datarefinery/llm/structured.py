"""Turning a model's text into a validated object.

Models wrap JSON in reasoning (``<think>...</think>``), code fences or chatter; constrained decoding
avoids most of that, but hosted APIs and unconstrained backends do not. ``parse_reply`` strips what
is safe to strip, finds the JSON value, and validates it with pydantic. Failures carry a reason code
and a message short enough to send back to the model in a re-ask.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"^.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """Why a reply could not become an object: ``reason`` is ``invalid_json`` or ``schema``."""

    reason: str
    message: str


def strip_wrappers(text: str) -> str:
    """Remove reasoning blocks and code fences around a JSON reply."""
    text = _THINK_BLOCK.sub("", text)
    # A reply that starts mid-reasoning (the opening tag was in the prompt) keeps only what follows.
    if "</think>" in text.lower():
        text = _THINK_OPEN.sub("", text, count=1)
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    return text.strip()


def extract_json(text: str) -> Any:
    """Parse the first JSON object or array in ``text`` (after ``strip_wrappers``).

    Raises ``ValueError`` with a message fit for a re-ask when there is none.
    """
    cleaned = strip_wrappers(text)
    if not cleaned:
        raise ValueError("the reply was empty")
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError:
        pass
    # Repair: a raw line break or tab inside a string (models writing numbered steps do this where
    # no grammar holds them) is kept as the character it is meant to be.
    decoder = json.JSONDecoder(strict=False)
    try:
        return decoder.decode(cleaned)
    except json.JSONDecodeError:
        pass
    for start, char in enumerate(cleaned):
        if char in "{[":
            try:
                value, _ = decoder.raw_decode(cleaned, start)
            except json.JSONDecodeError:
                continue
            return value
    try:
        json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg} at char {exc.pos})") from None
    raise ValueError("the reply holds no JSON object")  # pragma: no cover - loads would have parsed


def parse_reply(text: str, model: type[BaseModel]) -> BaseModel | ParseFailure:
    """Validate a reply against ``model``; a ``ParseFailure`` says why it did not fit."""
    try:
        value = extract_json(text)
    except ValueError as exc:
        return ParseFailure("invalid_json", str(exc))
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        return ParseFailure("schema", _short_validation_message(exc))


def _short_validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(p) for p in error["loc"]) or "(root)"
        parts.append(f"{loc}: {error['msg']}")
    return "; ".join(parts)


def reask_message(failure: ParseFailure) -> str:
    """The user turn sent after an invalid reply."""
    return (
        f"Your reply could not be used: {failure.message}. "
        "Answer again with only a JSON object that follows the required format."
    )


def schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent to the backend for constrained decoding (a fresh copy each call)."""
    return copy.deepcopy(_schema(model))


@functools.lru_cache(maxsize=256)
def _schema(model: type[BaseModel]) -> dict[str, Any]:
    # Generating the schema took ~0.4 ms a call, a tenth of a record's cost against a fast server;
    # reply models are built once per step, so one per class is enough.
    return model.model_json_schema()


# llama.cpp turns ``maxLength: n`` into n nested optional rules and refuses the grammar somewhere
# between 1,000 and 1,200 ("number of rules that are going to be repeated ... exceeds sane
# defaults"), on the embedded backend and in llama.cpp's server alike. Above this bound a string
# is decoded unbounded: ``max_tokens`` stops a runaway, and the reply model still checks the length.
GRAMMAR_MAX_LENGTH = 500


def decodable_schema(schema: dict[str, Any], bound: int = GRAMMAR_MAX_LENGTH) -> dict[str, Any]:
    """``schema`` without string length bounds above ``bound``, for building a decoding grammar.

    Only for decoding: the reply is still validated against the full schema's model.
    """
    if isinstance(schema, dict):
        loosened: dict[str, Any] = {}
        for key, value in schema.items():
            if key in ("maxLength", "minLength") and isinstance(value, int) and value > bound:
                continue
            loosened[key] = _loosen(value, bound)
        return loosened
    return schema


def _loosen(value: Any, bound: int) -> Any:
    if isinstance(value, dict):
        return decodable_schema(value, bound)
    if isinstance(value, list):
        return [_loosen(item, bound) for item in value]
    return value
