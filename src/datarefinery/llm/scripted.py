"""A backend whose answers a test writes: for fast unit tests of step logic, never the only test
of a feature a user runs. ``schema_reply`` makes a script that answers any request with JSON
fitting its schema, so a test says only what matters to it (``text=``) and gets valid replies
for the rest.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

from datarefinery.llm.base import Backend, ChatTemplate, Request, Response, Usage

Reply = str | Response | Exception
Script = Callable[[Request], Reply]
UsageOf = Callable[[Request, str], Usage]


# ChatML, the template of SmolLM2, Qwen and many others: what a scripted model "speaks" unless a
# test gives it another (or ``None``, a backend that cannot tell its template).
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def word_usage(request: Request, text: str) -> Usage:
    """One token a word: cheap, and always below what any real tokenizer counts."""
    prompt = sum(len(m.content.split()) for m in request.messages)
    prompt += len((request.prompt or "").split())
    return Usage(prompt, max(1, len(text.split())))


def byte_usage(request: Request, text: str) -> Usage:
    """A byte-level tokenizer's worst case: a token for every UTF-8 byte of the prompt's content
    and of the reply (at most ``max_tokens``, where a real model stops). Far above the usual
    four characters a token, so tests of the budget can catch an estimate that is too low.
    """
    completion = max(1, len(text.encode("utf-8")))
    return Usage(request.prompt_bytes(), min(completion, request.params.max_tokens))


TextFn = Callable[[str, Request, int], str]


class ScriptedBackend(Backend):
    """Answers from a list (in call order, cycling is an error) or from a function of the request.

    A reply may be text, a full ``Response``, or an exception to raise (e.g. a
    ``RetryableBackendError`` to exercise retries). ``requests`` records every request received.
    ``usage`` says what a text reply costs (``word_usage`` by default; ``byte_usage`` or any
    function of the request and the reply text). ``chat_template`` is what ``chat_template()``
    reports (ChatML by default).
    """

    kind = "scripted"

    def __init__(
        self,
        replies: Iterable[Reply] | Script,
        *,
        name: str = "scripted",
        delay_s: float = 0.0,
        usage: UsageOf = word_usage,
        chat_template: str | None = CHATML,
    ) -> None:
        self._script: Script | None = replies if callable(replies) else None
        self._queue: list[Reply] = [] if callable(replies) else list(replies)
        self._name = name
        self._delay_s = delay_s
        self._usage = usage
        self._chat_template = chat_template
        self.requests: list[Request] = []

    @property
    def identity(self) -> str:
        return self._name

    async def chat_template(self) -> ChatTemplate | None:
        if self._chat_template is None:
            return None
        return ChatTemplate(self._chat_template)

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        if self._script is not None:
            reply = self._script(request)
        else:
            if not self._queue:
                raise AssertionError(
                    f"ScriptedBackend ran out of replies after {len(self.requests) - 1} calls"
                )
            reply = self._queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Response):
            return reply
        return Response(text=reply, usage=self._usage(request, reply), model=self._name)


def default_text(name: str, request: Request, index: int) -> str:
    """``"<field> number <index> for call <seed>"``: differs by field, list item and call."""
    return f"{name} number {index} for call {request.seed}"


def schema_reply(text: TextFn = default_text) -> Callable[[Request], str]:
    """A ``ScriptedBackend`` script: fills every string with ``text(field, request, index)``,
    every enum with its first value, every list with its ``minItems`` items.
    """

    def reply(request: Request) -> str:
        schema = request.json_schema or {}
        return json.dumps(_fill(schema, schema, request, "value", 0))

    def _fill(
        node: dict[str, Any], root: dict[str, Any], request: Request, name: str, i: int
    ) -> Any:
        if "$ref" in node:
            node = root["$defs"][node["$ref"].split("/")[-1]]
        if "enum" in node:
            return node["enum"][0]
        kind = node.get("type")
        if kind == "object":
            return {
                key: _fill(child, root, request, key, i)
                for key, child in node.get("properties", {}).items()
            }
        if kind == "array":
            return [
                _fill(node["items"], root, request, name, j) for j in range(node.get("minItems", 1))
            ]
        if kind == "integer":
            return i
        if kind == "boolean":
            return True
        return text(name, request, i)

    return reply
