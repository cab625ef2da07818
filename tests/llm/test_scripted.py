from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from datarefinery.llm import Message, Request, ScriptedBackend, schema_reply
from datarefinery.llm.base import Response
from datarefinery.llm.structured import schema_of


class Item(BaseModel):
    text: str
    label: Literal["positive", "negative"]


class Batch(BaseModel):
    items: list[Item] = Field(min_length=2)
    count: int
    ok: bool


def _request(seed: int) -> Request:
    return Request((Message("user", "go"),), json_schema=schema_of(Batch), seed=seed)


def test_schema_reply_fills_every_field_and_validates() -> None:
    reply = schema_reply()(_request(7))
    batch = Batch.model_validate_json(reply)
    assert [i.text for i in batch.items] == ["text number 0 for call 7", "text number 1 for call 7"]
    assert {i.label for i in batch.items} == {"positive"}  # an enum's first value
    assert batch.count == 0 and batch.ok is True


def test_schema_reply_takes_the_text_it_is_given() -> None:
    script = schema_reply(lambda name, request, index: f"{name}-{index}-{request.seed}")
    assert json.loads(script(_request(3)))["items"][1]["text"] == "text-1-3"


def test_scripted_backend_answers_from_a_list_then_refuses() -> None:
    backend = ScriptedBackend(["first", Response(text="second")])
    assert asyncio.run(backend.complete(_request(1))).text == "first"
    assert asyncio.run(backend.complete(_request(2))).text == "second"
    with pytest.raises(AssertionError, match="ran out of replies after 2 calls"):
        asyncio.run(backend.complete(_request(3)))
    assert len(backend.requests) == 3
