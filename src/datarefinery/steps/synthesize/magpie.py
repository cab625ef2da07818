r"""``magpie``: instructions written by an aligned model from its own chat template (Magpie,
Xu et al. 2024, arXiv 2406.08464), then answered by the same model.

Each pair takes two calls. The first is a raw completion of the template's *pre-query* (the text
before a user's words, e.g. ``<|im_start|>user\n`` in ChatML, after the system turn): an aligned
model continues it with a plausible user request and stops at the end of the turn. The second is an
ordinary chat call that answers that request. A ``system_prompt`` steers what kind of requests come
out; the template is the model's own (``Backend.chat_template()``) unless ``chat_template`` gives
one.

Instructions that are empty or too short, that leak template markup (``<|im_start|>``, a role
name on its first line), that ran out of tokens, or that repeat an earlier one are rejected with
that reason; so are empty or truncated responses.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError, RequestRejectedError
from datarefinery.llm.base import ChatTemplate, Message, Request, Response, SamplingParams
from datarefinery.llm.chat_template import PreQuery, render_pre_query
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import ModelStep, Output, StepConfig, StepContext, gather_or_cancel
from datarefinery.steps.synthesize.generation import GenerationStep

_ROLES = {"system", "user", "assistant", "human", "gpt", "model"}


class MagpieConfig(StepConfig):
    count: int = Field(
        default=10, ge=1, le=1_000_000, description="pairs to make, rejects included"
    )
    system_prompt: str | None = Field(
        default=None, description="the system turn of the pre-query: steers the domain"
    )
    chat_template: str | None = Field(
        default=None, description="Jinja chat template; default: the model's, from the backend"
    )
    instruction_field: str = "instruction"
    response_field: str = "response"
    temperature: float | None = Field(default=None, ge=0, le=2, description="for instructions")
    instruction_max_tokens: int = Field(default=128, ge=8, le=4096)
    response_temperature: float | None = Field(default=None, ge=0, le=2)
    response_max_tokens: int | None = Field(default=None, ge=1, description="default: llm's")
    min_chars: int = Field(default=8, ge=1, description="shorter instructions are rejected")
    keep_truncated: bool = Field(
        default=False, description="keep responses that hit response_max_tokens"
    )


class Magpie(GenerationStep[MagpieConfig]):
    name = "magpie"
    Config = MagpieConfig
    technique = "magpie"

    def writes(self, task: TaskSpec | None) -> set[str]:
        return {self.config.instruction_field, self.config.response_field}

    def dedup_fields(self) -> list[str]:
        return [self.config.instruction_field]

    def sampling(self, **overrides: Any) -> SamplingParams:
        # Magpie needs no task; without one there are no task sampling defaults to merge.
        if self.ctx.task is None:
            return ModelStep.sampling(self, **overrides)
        return super().sampling(**overrides)

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        if self.config.instruction_field == self.config.response_field:
            raise ConfigError(
                f"step {ctx.name}: instruction_field and response_field are both "
                f"{self.config.instruction_field!r}; give them different names"
            )
        if ctx.task is not None:  # optional: it names the text fields for validate and reports
            fields = [self.config.instruction_field, self.config.response_field]
            self.require_fields(fields, "instruction_field and response_field")
        self._pre: PreQuery | None = None

    def plan(self) -> list[Record]:
        return [
            Record(
                id=stable_id(self.ctx.name, "pair", i),
                fields={},
                provenance=Provenance(
                    step=self.ctx.name, technique="plan", conditioning={"index": i}
                ),
            )
            for i in range(self.config.count)
        ]

    async def pre_query(self) -> PreQuery:
        """The rendered pre-query (once per step): the spec's template, else the backend's."""
        if self._pre is None:
            chat: ChatTemplate | None = None
            if self.config.chat_template is not None:
                chat = ChatTemplate(self.config.chat_template)
            else:
                chat = await self.ctx.require_engine().backend.chat_template()
            if chat is None:
                raise ConfigError(
                    f"step {self.ctx.name} (magpie) needs the model's chat template, and backend "
                    f"{self.ctx.require_engine().backend.kind} cannot tell it (only llama.cpp's "
                    "server reports it, under /props): give it as the step's chat_template option "
                    "(the Jinja template of the model's tokenizer_config.json)"
                )
            self._pre = render_pre_query(chat, self.config.system_prompt)
        return self._pre

    async def process(self, batch: list[Record]) -> list[Output]:
        pre = await self.pre_query()
        return await gather_or_cancel(*(self._pair(job, pre) for job in batch))

    async def _pair(self, job: Record, pre: PreQuery) -> Output:
        config = self.config
        params = self.sampling(
            temperature=config.temperature,
            max_tokens=config.instruction_max_tokens,
            stop=(pre.stop,) if pre.stop else None,
        )
        first = Request.raw(pre.prompt, params, seed=self.ctx.call_seed(job.id, "instruction"))
        provenance = self.provenance(
            self.technique,
            {"index": job.provenance.conditioning["index"]},
            hashlib.sha256(pre.prompt.encode("utf-8")).hexdigest()[:12],
        )
        outcome = await self._call(first)
        instruction = outcome.text.strip() if isinstance(outcome, Response) else ""
        record = Record(job.id, {config.instruction_field: instruction}, provenance)
        problem = outcome if isinstance(outcome, tuple) else self._check(outcome, pre)
        if problem is None:
            problem = await self._answer(record, instruction)
        output: Output = record if problem is None else Rejected(record, self.ctx.name, *problem)
        self.report([output])
        return output

    async def _call(self, request: Request) -> Response | tuple[str, str]:
        try:
            return await self.ctx.require_engine().complete(request)
        except RequestRejectedError as exc:
            return "backend_refused", str(exc)

    def _check(self, reply: Response, pre: PreQuery) -> tuple[str, str] | None:
        """Why a written instruction is unusable, or ``None``."""
        text = reply.text.strip()
        if not text:
            return "empty_instruction", "the model ended the user turn at once"
        leaked = [m for m in pre.markup if m in text]
        first_line = text.splitlines()[0].strip().rstrip(":").lower()
        if leaked or first_line in _ROLES:
            what = ", ".join(leaked) if leaked else f"role name {first_line!r}"
            return "template_leak", f"the instruction contains template markup ({what})"
        if reply.finish_reason == "length":
            limit = self.config.instruction_max_tokens
            return "truncated_instruction", f"no end of turn within {limit} tokens"
        if len(text) < self.config.min_chars:
            return "too_short", f"{len(text)} characters (min_chars {self.config.min_chars})"
        return None

    async def _answer(self, record: Record, instruction: str) -> tuple[str, str] | None:
        """Ask the model to answer ``instruction`` as a chat; sets the response on ``record``."""
        config = self.config
        system = [Message("system", config.system_prompt)] if config.system_prompt else []
        request = Request(
            messages=(*system, Message("user", instruction)),
            params=self.sampling(
                temperature=config.response_temperature, max_tokens=config.response_max_tokens
            ),
            seed=self.ctx.call_seed(record.id, "response"),
        )
        outcome = await self._call(request)
        if isinstance(outcome, tuple):
            return outcome
        record.fields[config.response_field] = outcome.text.strip()
        if not outcome.text.strip():
            return "empty_response", "the model gave no answer"
        if outcome.finish_reason == "length" and not config.keep_truncated:
            limit = request.params.max_tokens
            return "truncated_response", f"the answer hit max_tokens={limit} (keep_truncated)"
        return None
