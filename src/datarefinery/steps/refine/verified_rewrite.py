"""The base of the verified rewrite steps (``pii_rewrite``, ``detox_rewrite``): model steps whose
verb is ``refine``, one record in and one record or rejection out. ``refine`` asks, checks the
rewrite and re-asks by itself (the engine's own re-ask only covers replies that are not JSON);
each call asks for a JSON reply ``{"text": ...}`` under a length cap.

A long text is rewritten in chunks (``chunks.split_chunks``), each its own cached request and
conversation, and the joined rewrite is verified as a whole. Chunks keep a small model's rewrite
local and every request inside the context; the chunk size is the step's option, capped by what
the backend's context holds.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from datarefinery.llm.base import Message, Request
from datarefinery.llm.engine import Engine
from datarefinery.llm.structured import ParseFailure
from datarefinery.records import Record
from datarefinery.steps.base import C, LLMCall, ModelStep, Output, gather_or_cancel
from datarefinery.steps.refine.chunks import Chunk

# Sizing a chunk to the context: text costs at most a token per 2.5 characters (digits, e-mails
# and names split finely), and one chunk is paid about 2.5 times: in the prompt, in the hints,
# and in the reply.
_CHARS_PER_TOKEN = 2.5
_CHUNK_COPIES = 2.5


@lru_cache(maxsize=64)
def rewrite_reply_model(max_chars: int) -> type[BaseModel]:
    """``{"text": ...}`` with a length cap (the decoding grammar's maxLength)."""
    # The config goes in at creation: setting model_config["extra"] afterwards has no effect.
    model: type[BaseModel] = create_model(
        "RewriteReply",
        __config__=ConfigDict(extra="forbid"),
        text=(str, Field(..., min_length=1, max_length=max_chars)),
    )
    return model


def reply_cap(text: str) -> int:
    # Room for longer surrogates and a little rephrasing; bucketed so few models are built.
    return ((int(len(text) * 1.5) + 200) // 250 + 1) * 250


def chunk_limit(engine: Engine, configured: int, prompt_chars: int) -> int:
    """The chunk size in characters: ``configured``, or less where the backend's context (prompt
    of ``prompt_chars`` without the text, plus the chunk, its hints and its reply) holds less.
    """
    context = engine.backend.context_tokens
    if context is None:
        return configured
    room = context - 16 - prompt_chars / _CHARS_PER_TOKEN
    return max(100, min(configured, int(room * _CHARS_PER_TOKEN / _CHUNK_COPIES)))


@dataclass
class Part:
    """One chunk's conversation with the model: what to send next, and its latest rewrite."""

    chunk: Chunk
    expected: str
    messages: tuple[Message, ...]
    rewrite: str | None = None
    raw: str = ""
    pending: bool = True

    def reask(self, problem: str) -> None:
        """Continue the conversation with what was wrong; the next ``ask`` sends it."""
        self.messages = (*self.messages, Message("assistant", self.raw), Message("user", problem))
        self.pending = True


class VerifiedRewrite(ModelStep[C]):
    """A model step whose ``refine`` turns one record into one record or rejection."""

    def rewrite_call(
        self,
        record: Record,
        messages: tuple[Message, ...],
        expected: str,
        attempt: int,
        temperature: float | None,
        part: int = 0,
    ) -> LLMCall[Any]:
        """The request for one attempt; ``expected`` is about what the reply should hold."""
        cap = reply_cap(expected)
        model = rewrite_reply_model(cap)
        # The first part keeps the seed of an unchunked call, so short texts hit the same cache.
        seed = (
            self.ctx.call_seed(record.id, attempt)
            if part == 0
            else (self.ctx.call_seed(record.id, "part", part, attempt))
        )
        request = Request(
            messages=messages,
            # The cap counts characters; max_tokens counts tokens. A cap in tokens let a small
            # model run on for a whole context, and the engine's re-ask then resent it all.
            params=self.sampling(
                temperature=temperature, max_tokens=int(cap / _CHARS_PER_TOKEN) + 16
            ),
            json_schema=model.model_json_schema(),
            seed=seed,
        )
        return LLMCall(request, model)

    async def ask_parts(
        self, record: Record, parts: list[Part], attempt: int, temperature: float | None
    ) -> ParseFailure | None:
        """Send every pending part's conversation (concurrently); each answered part holds its
        rewrite. The first unusable reply is returned; ``RequestRejectedError`` propagates.
        """
        engine = self.ctx.require_engine()

        async def one(index: int, part: Part) -> ParseFailure | None:
            if not part.chunk.body.strip():
                part.rewrite, part.raw, part.pending = part.chunk.body, "", False
                return None
            call = self.rewrite_call(
                record, part.messages, part.expected, attempt, temperature, index
            )
            result = await engine.complete_structured(call.request, call.reply_model)
            part.messages, part.raw, part.pending = call.request.messages, result.raw_text, False
            if result.value is None:
                return result.failure or ParseFailure("invalid_reply", "no reply")
            part.rewrite = str(result.value.text)
            return None

        pending = [one(i, part) for i, part in enumerate(parts) if part.pending]
        failures = [f for f in await gather_or_cancel(*pending) if f is not None]
        return failures[0] if failures else None

    @abc.abstractmethod
    async def refine(self, record: Record) -> Output:
        """Rewrite, verify, re-ask; a record that passed, or a rejection with the reason."""

    async def process(self, batch: list[Record]) -> list[Output]:
        return list(await gather_or_cancel(*(self._refine_one(record) for record in batch)))

    async def _refine_one(self, record: Record) -> Output:
        output = await self.refine(record)
        self.report([output])
        return output
