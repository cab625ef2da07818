"""The base of the verified rewrite steps (``pii_rewrite``, ``detox_rewrite``): model steps whose
verb is ``refine``, one record in and one record or rejection out. ``refine`` asks, checks the
rewrite and re-asks by itself (the engine's own re-ask only covers replies that are not JSON);
each call asks for a JSON reply ``{"text": ...}`` under a length cap.
"""

from __future__ import annotations

import abc
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from datarefinery.llm.base import Message, Request
from datarefinery.records import Record
from datarefinery.steps.base import C, LLMCall, ModelStep, Output, gather_or_cancel


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


class VerifiedRewrite(ModelStep[C]):
    """A model step whose ``refine`` turns one record into one record or rejection."""

    def rewrite_call(
        self,
        record: Record,
        messages: tuple[Message, ...],
        expected: str,
        attempt: int,
        temperature: float | None,
    ) -> LLMCall[Any]:
        """The request for one attempt; ``expected`` is about what the reply should hold."""
        cap = reply_cap(expected)
        model = rewrite_reply_model(cap)
        request = Request(
            messages=messages,
            params=self.sampling(temperature=temperature, max_tokens=cap + 16),
            json_schema=model.model_json_schema(),
            seed=self.ctx.call_seed(record.id, attempt),
        )
        return LLMCall(request, model)

    @abc.abstractmethod
    async def refine(self, record: Record) -> Output:
        """Rewrite, verify, re-ask; a record that passed, or a rejection with the reason."""

    async def process(self, batch: list[Record]) -> list[Output]:
        return list(await gather_or_cancel(*(self._refine_one(record) for record in batch)))

    async def _refine_one(self, record: Record) -> Output:
        output = await self.refine(record)
        self.report([output])
        return output
