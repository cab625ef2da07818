"""``label``: LLM labeling of records with self-consistency.

Each record is labeled ``k`` times (one seed each, under an enum schema of the task's labels); the
majority label is written to the task's label field and the share of valid answers that agree
with it goes to ``scores["label_agreement"]``, a confidence score downstream steps can filter or
route on. A record with no valid answer is rejected (``no_label``); one below ``min_agreement``
is rejected (``low_agreement``), or kept for people to review with ``route`` (see
``steps.routing``; the score is ``label_agreement``). A label the record had before is kept in
provenance (``conditioning.previous_label``), so labeling a gold set measures agreement with it.
"""

from __future__ import annotations

import dataclasses

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.prompts.render import resolve_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import ModelStep, Output, StepConfig, StepContext, gather_or_cancel
from datarefinery.steps.routing import ROUTE_HELP, Route, route_kept, route_or_reject
from datarefinery.steps.voting import vote


class LabelConfig(StepConfig):
    k: int = Field(default=5, ge=1, le=50, description="samples per record")
    fields: list[str] | None = Field(
        default=None, description="fields shown to the model; default: every non-label field"
    )
    min_agreement: float = Field(default=0.0, ge=0, le=1)
    template: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int = Field(default=32, ge=8, description="a label reply is a few tokens")
    route: Route = Field(default=False, description=ROUTE_HELP)


class Label(ModelStep[LabelConfig]):
    name = "label"
    Config = LabelConfig

    def inputs(self, task: TaskSpec | None) -> list[str]:
        if self.config.fields is not None:
            return list(self.config.fields)
        return task.content_fields if task else []

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self.inputs(task))

    def writes(self, task: TaskSpec | None) -> set[str]:
        label = task.label_field if task else None
        return {label} if label else set()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        if task.label_field is None:
            raise ConfigError(f"step {ctx.name} writes labels: the task needs a label field")
        self.label_field = task.label_field
        self.input_fields = self.inputs(task)
        self.template = resolve_template(
            "label", self.config.template, task.templates, ctx.base_dir
        )

    async def process(self, batch: list[Record]) -> list[Output]:
        return list(await gather_or_cancel(*(self._label(r) for r in batch)))

    async def _label(self, record: Record) -> Output:
        result = await vote(
            self.ctx.require_engine(),
            self.template,
            self.ctx.require_task(),
            record,
            input_fields=self.input_fields,
            k=self.config.k,
            params=self.sampling(
                temperature=self.config.temperature, max_tokens=self.config.max_tokens
            ),
            seeds=[self.ctx.call_seed(record.id, i) for i in range(self.config.k)],
        )
        output: Output
        if result.label is None:
            detail = f"no valid answer in {result.samples} samples"
            output = Rejected(record, self.ctx.name, "no_label", detail)
        else:
            labeled = self._labeled(record, result.label, result.agreement, result.votes)
            route = self.config.route
            if result.agreement < self.config.min_agreement:
                detail = (
                    f"{result.agreement:.2f} of the answers agree on {result.label!r} "
                    f"(min_agreement {self.config.min_agreement}); votes {result.votes}"
                )
                rejection = Rejected(labeled, self.ctx.name, "low_agreement", detail)
                output = route_or_reject(route, rejection, "label_agreement", result.agreement)
            else:
                name = self.ctx.name
                output = route_kept(route, labeled, name, "label_agreement", result.agreement)
        self.report([output])
        return output

    def _labeled(
        self, record: Record, label: str, agreement: float, votes: dict[str, int]
    ) -> Record:
        conditioning = dict(record.provenance.conditioning)
        previous = record.fields.get(self.label_field)
        if previous not in (None, ""):
            conditioning["previous_label"] = previous
        conditioning["label_votes"] = votes
        conditioning["labeled_by"] = {
            "step": self.ctx.name,
            "model": self.ctx.require_engine().model_identity,
            "template_hash": self.template.hash,
        }
        provenance = dataclasses.replace(record.provenance, conditioning=conditioning)
        fields = {**record.fields, self.label_field: label}
        scores = {**record.scores, "label_agreement": round(agreement, 4)}
        return Record(record.id, fields, provenance, scores)
