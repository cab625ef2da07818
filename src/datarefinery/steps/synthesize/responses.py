"""``responses``: several candidate responses per prompt, for preference data.

Candidates come from the run's model sampled ``n`` times (each at its own temperature, from
``temperatures`` cycled or spread evenly over ``temperature_range``) or from several models, one
``llm``-style block each in ``models:`` (``n`` candidates per model), every block with its own
sampling defaults. Each candidate is a record with the prompt record's fields plus ``response``;
its provenance names the model and, in ``conditioning``, the prompt record's id (``group``), the
candidate number, the temperature and the seed, and its parent is the prompt record. Records of
one prompt share the prompt field, which is what ``judge`` (``group_by``) and ``preferences``
group them by.

A failed, refused, empty or (with ``reject_truncated``) cut-off candidate is a rejection of the
prompt record that says which candidate it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from datarefinery.config import LLMConfig, TaskSpec
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Request, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.prompts.render import load_template
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import ModelStep, Output, StepConfig, StepContext, gather_or_cancel


class ResponsesConfig(StepConfig):
    prompt_field: str | None = Field(
        default=None,
        description="the field holding the prompt; default: prompt (instruction if the task "
        "has that field and no prompt)",
    )
    response_field: str = "response"
    n: int | None = Field(
        default=None, ge=1, le=64, description="candidates per model; default 2, or 1 with models"
    )
    temperatures: list[float] | None = Field(
        default=None, min_length=1, description="one per candidate, cycled"
    )
    temperature_range: tuple[float, float] | None = Field(
        default=None, description="[low, high]: the n candidates spread evenly over it"
    )
    models: list[LLMConfig] | None = Field(
        default=None, min_length=1, description="llm blocks; default: the run's llm"
    )
    system: str | None = Field(default=None, description="a system message for every prompt")
    max_tokens: int | None = Field(default=None, ge=1)
    template: str | None = None
    reject_truncated: bool = Field(
        default=True, description="reject a response cut off at max_tokens"
    )

    @model_validator(mode="after")
    def _temperatures(self) -> ResponsesConfig:
        if self.temperatures is not None and self.temperature_range is not None:
            raise ValueError("give temperatures or temperature_range, not both")
        chosen = list(self.temperatures or ()) + list(self.temperature_range or ())
        if any(not 0 <= t <= 2 for t in chosen):
            raise ValueError("temperatures are between 0 and 2")
        if self.temperature_range is not None:
            low, high = self.temperature_range
            if low > high:
                raise ValueError("temperature_range is [low, high] with low <= high")
        return self

    def count(self) -> int:
        return self.n if self.n is not None else (1 if self.models else 2)

    def temperature(self, i: int) -> float | None:
        """Candidate ``i``'s temperature (``None``: the model block's own default)."""
        if self.temperatures:
            return self.temperatures[i % len(self.temperatures)]
        if self.temperature_range is not None:
            low, high = self.temperature_range
            steps = self.count() - 1
            return round(low + (high - low) * i / steps, 4) if steps else low
        return None


@dataclass(frozen=True)
class _Candidate:
    """One planned candidate: which model block (index, ``None``: the run's llm) and sample."""

    model_index: int | None
    block: LLMConfig
    number: int
    temperature: float


class Responses(ModelStep[ResponsesConfig]):
    name = "responses"
    Config = ResponsesConfig

    def prompt_field(self, task: TaskSpec | None) -> str:
        if self.config.prompt_field:
            return self.config.prompt_field
        if task is not None and "instruction" in task.fields and "prompt" not in task.fields:
            return "instruction"
        return "prompt"

    def reads(self, task: TaskSpec | None) -> set[str]:
        return {self.prompt_field(task)}

    def writes(self, task: TaskSpec | None) -> set[str]:
        return {self.config.response_field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.template = load_template(self.config.template or "respond")
        self.field = self.prompt_field(ctx.task)
        blocks: list[tuple[int | None, LLMConfig]] = (
            list(enumerate(self.config.models)) if self.config.models else [(None, ctx.llm)]
        )
        self.candidates = [
            _Candidate(index, block, i, self._temperature(block, i))
            for index, block in blocks
            for i in range(self.config.count())
        ]

    def _temperature(self, block: LLMConfig, i: int) -> float:
        chosen = self.config.temperature(i)
        return block.temperature if chosen is None else chosen

    def _engine(self, candidate: _Candidate) -> Engine:
        if candidate.model_index is None:
            return self.ctx.require_engine()
        return self.ctx.engine_for(candidate.block)

    def _params(self, candidate: _Candidate) -> SamplingParams:
        block = candidate.block
        return SamplingParams(
            temperature=candidate.temperature,
            top_p=block.top_p,
            max_tokens=self.config.max_tokens or block.max_tokens,
            frequency_penalty=block.frequency_penalty,
            presence_penalty=block.presence_penalty,
        )

    async def process(self, batch: list[Record]) -> list[Output]:
        async def one(record: Record) -> list[Output]:
            outputs = list(
                await gather_or_cancel(*(self._respond(record, c) for c in self.candidates))
            )
            self.report(outputs)
            return outputs

        results = await gather_or_cancel(*(one(record) for record in batch))
        return [output for outputs in results for output in outputs]

    async def _respond(self, record: Record, candidate: _Candidate) -> Output:
        engine = self._engine(candidate)
        prompt = str(record.fields.get(self.field, "") or "").strip()
        where = (
            f"candidate {candidate.number} of {engine.model_identity} "
            f"(temperature {candidate.temperature:g})"
        )
        if not prompt:
            return Rejected(record, self.ctx.name, "missing_prompt", f"no {self.field}: {where}")
        seed = self.ctx.call_seed(record.id, candidate.model_index, candidate.number)
        request = Request(
            messages=self.template.render(prompt=prompt, system=self.config.system or ""),
            params=self._params(candidate),
            seed=seed,
        )
        try:
            response = await engine.complete(request)
        except RequestRejectedError as exc:
            return Rejected(record, self.ctx.name, "backend_refused", f"{where}: {exc}")
        text = response.text.strip()
        if not text:
            return Rejected(record, self.ctx.name, "empty_response", f"{where}: empty reply")
        if response.finish_reason == "length" and self.config.reject_truncated:
            detail = f"{where}: cut off at max_tokens={request.params.max_tokens}: {text[-80:]!r}"
            return Rejected(record, self.ctx.name, "truncated", detail)
        return self._candidate_record(record, candidate, engine, seed, text)

    def _candidate_record(
        self, record: Record, candidate: _Candidate, engine: Engine, seed: int, text: str
    ) -> Record:
        conditioning: dict[str, Any] = {
            "group": record.id,
            "candidate": candidate.number,
            "temperature": candidate.temperature,
            "seed": seed,
        }
        if candidate.model_index is not None:
            conditioning["model_block"] = candidate.model_index
        return Record(
            id=stable_id(self.ctx.name, record.id, candidate.model_index, candidate.number),
            fields={**record.fields, self.config.response_field: text},
            provenance=Provenance(
                step=self.ctx.name,
                technique="responses",
                model=engine.model_identity,
                template_hash=self.template.hash,
                parent_ids=[record.id],
                conditioning=conditioning,
                source=record.provenance.source,
            ),
        )
