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
from datarefinery.records import Record
from datarefinery.steps.base import Output, StepConfig, StepContext, gather_or_cancel
from datarefinery.steps.synthesize.extrapolate import ExampleWritingStep, copied_share
from datarefinery.steps.writing import item_model

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


class QAExtrapolate(ExampleWritingStep[QAExtrapolateConfig]):
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
        fields = {"context": example.fields["context"]}
        conditioning = {"example_id": example.id, "variant": index}
        limits = self.config.temperature, self.config.max_tokens
        return await self.write_like(example, index, messages, fields, conditioning, limits)

    def copies(self, example: Record, record: Record) -> tuple[str, str] | None:
        share = copied_share(str(record.fields["question"]), str(example.fields["question"]))
        if share > self.config.max_copied:
            return "near_copy", f"{share:.0%} of the question follows the example's word order"
        return None
