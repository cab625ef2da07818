"""``adversarial``: adversarial filtering -- keep what a small classifier finds hard (opt-in).

A small model (TF-IDF or embedding + logistic regression) is cross-fitted over the step's input:
each record is scored by a model trained on the other folds. Records it gets wrong or is unsure of
(probability of the record's own label below ``max_confidence``) are kept; the ones it already
gets right with confidence are rejected as ``too_easy``, since they teach a learner little and
often carry the generator's easiest artifacts. Use it after a consistency check: a record the
classifier gets "wrong" may also be mislabeled.
"""

from __future__ import annotations

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.models.crossfit import out_of_fold_proba
from datarefinery.models.smallmodel import ModelKind
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, Step, StepConfig, StepContext
from datarefinery.steps.curate.fields import chosen_fields, label_field_of


class AdversarialConfig(StepConfig):
    model: ModelKind = "tfidf-lr"
    folds: int = Field(default=5, ge=2, le=20)
    max_confidence: float = Field(
        default=0.8, gt=0, le=1, description="reject records whose own label gets more than this"
    )
    fields: list[str] | None = Field(
        default=None, description="fields the classifier reads; default: the task's content fields"
    )


class Adversarial(Step[AdversarialConfig]):
    name = "adversarial"
    Config = AdversarialConfig

    def needs_whole_input(self) -> bool:
        return True

    def _fields(self, task: TaskSpec | None) -> list[str]:
        return chosen_fields(self.config.fields, task)

    def _label_field(self, task: TaskSpec | None) -> str:
        return label_field_of(task)

    def reads(self, task: TaskSpec | None) -> set[str]:
        return {*self._fields(task), self._label_field(task)}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.fields = self._fields(ctx.task)
        self.label_field = self._label_field(ctx.task)

    async def process(self, batch: list[Record]) -> list[Output]:
        cfg, name = self.config, self.ctx.name
        proba, classes = out_of_fold_proba(
            batch,
            kind=cfg.model,
            text_fields=self.fields,
            label_field=self.label_field,
            folds=cfg.folds,
            seed=self.ctx.seed,
        )
        outputs: list[Output] = []
        for record, row in zip(batch, proba, strict=True):
            own = float(row[classes.index(str(record.fields[self.label_field]))])
            scored = Record(
                record.id,
                record.fields,
                record.provenance,
                {**record.scores, f"{name}_p_label": round(own, 4)},
            )
            if own > cfg.max_confidence:
                detail = (
                    f"a {cfg.model} classifier that never saw it gives its label p={own:.2f} "
                    f"(> {cfg.max_confidence:g})"
                )
                outputs.append(Rejected(scored, name, "too_easy", detail))
            else:
                outputs.append(scored)
        return outputs
