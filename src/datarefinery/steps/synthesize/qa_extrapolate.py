"""``qa_extrapolate``: S3's error extrapolation for extractive QA. Each input record (a question
a small QA model got wrong, with its context, gold answer and the model's answer in
``scores.predicted``) yields ``k`` new question/answer pairs on the same context, asked like it.

The classifier's ``extrapolate`` keeps a label and rejects any written field that follows the
example's words; here there is no label, and a new question may well share its answer with the
example, so only the question is checked for a near copy (``near_copy``). Whether the answer is a
span of the context is ``qa_span``'s check, which follows this step in the loop.
"""

from __future__ import annotations

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Record, Rejected, stable_id
from datarefinery.steps.base import (
    Failure,
    LLMCall,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.synthesize.extrapolate import copied_share
from datarefinery.steps.synthesize.planned import copies_instructions
from datarefinery.steps.writing import TextWritingStep, item_model, text_budget

_FIELDS = ("context", "question", "answer")
_WRITTEN = ("question", "answer")


class QAExtrapolateConfig(StepConfig):
    k: int = Field(default=2, ge=1, le=20, description="new questions per example")
    max_copied: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="reject a question whose words follow the example question's in order for "
        "more than this share of its length (a near copy)",
    )
    template: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class QAExtrapolate(TextWritingStep[QAExtrapolateConfig]):
    name = "qa_extrapolate"
    Config = QAExtrapolateConfig
    technique = "qa_extrapolate"
    written = list(_WRITTEN)  # noqa: RUF012  # read-only: the fields every reply fills

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(_FIELDS)

    def writes(self, task: TaskSpec | None) -> set[str]:
        return set(self.written)

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        missing = [f for f in _FIELDS if f not in task.content_fields]
        if missing:
            raise ConfigError(
                f"step {ctx.name} writes extractive QA records: the task needs the fields "
                f"context, question and answer (missing {missing})"
            )
        self.template = self.prompt("qa_extrapolate", self.config.template)
        self.model = item_model(task, self.written)

    async def process(self, batch: list[Record]) -> list[Output]:
        results = await gather_or_cancel(*(self._extrapolate(r) for r in batch))
        return [output for outputs in results for output in outputs]

    async def _extrapolate(self, example: Record) -> list[Output]:
        outputs = list(
            await gather_or_cancel(*(self._one(example, i) for i in range(self.config.k)))
        )
        self.report(outputs)
        return outputs

    async def _one(self, example: Record, index: int) -> Output:
        task = self.ctx.require_task()
        messages = self.template.render(
            task=task,
            context=example.fields["context"],
            question=example.fields["question"],
            answer=example.fields["answer"],
            predicted=example.scores.get("predicted", ""),
            fields={n: task.fields[n] for n in self.written},
        )
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        request = Request(
            messages=messages,
            params=self.sampling(
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens or text_budget(task, self.written, 1, floor),
            ),
            json_schema=schema_of(self.model),
            seed=self.ctx.call_seed(example.id, index),
        )
        record = Record(
            id=stable_id(example.id, self.ctx.name, index),
            fields={"context": example.fields["context"]},
            provenance=self.provenance(
                self.technique,
                {"example_id": example.id, "variant": index},
                self.template.hash,
                parents=[example.id],
            ),
        )
        answer = await self.ask(LLMCall(request, self.model))
        if isinstance(answer, Failure):
            return answer.reject(record, self.ctx.name)
        record.fields.update({n: getattr(answer.value, n) for n in self.written})
        problem = self.check(example, record)
        return Rejected(record, self.ctx.name, *problem) if problem else record

    def check(self, example: Record, record: Record) -> tuple[str, str] | None:
        empty = self.empty_fields({n: record.fields[n] for n in self.written})
        if empty:
            return "empty", f"empty fields {empty}"
        problem = copies_instructions(self.ctx.require_task(), record, self.written)
        if problem is not None:
            return problem
        share = copied_share(str(record.fields["question"]), str(example.fields["question"]))
        if share > self.config.max_copied:
            return "near_copy", f"{share:.0%} of the question follows the example's word order"
        return None
