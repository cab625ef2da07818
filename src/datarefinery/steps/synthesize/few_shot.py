"""``few_shot``: generation from ``k`` demonstrations drawn from the task's seeds per call.

Demonstrations rotate: the seeds of a label are shuffled once (seeded) and call ``j`` shows the
window ``j·k … j·k + k − 1`` of that order, wrapping around, so consecutive calls see different
seeds and every seed is shown equally often. The seed ids shown go into provenance.

Small models copy demonstrations; a record whose text fields are closer than
``max_seed_similarity`` (ROUGE-L) to a demonstration of its call is rejected (``copies_seed``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from datarefinery.config import load_seeds
from datarefinery.errors import ConfigError
from datarefinery.records import Record
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.planned import LabelledConfig, PlannedGeneration
from datarefinery.text import rouge_l


class FewShotConfig(LabelledConfig):
    k: int = Field(default=3, ge=1, le=32, description="demonstrations per call")
    demos: Literal["same_label", "any"] = Field(
        default="same_label",
        description="show seeds of the label being generated, or seeds of any label",
    )
    max_seed_similarity: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="reject a record this close (ROUGE-L) to a demonstration it was shown",
    )


class FewShot(PlannedGeneration[FewShotConfig]):
    name = "few_shot"
    Config = FewShotConfig
    technique = "few_shot"
    template_name = "few_shot"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        seeds = load_seeds(task, ctx.base_dir)
        if not seeds:
            raise ConfigError(f"step {ctx.name} needs seed examples: add 'seeds:' to the task")
        self.seeds = {seed.id: seed for seed in seeds}
        label_field = task.label_field
        self.pools: dict[str | None, list[str]] = {}
        for label in self.groups():
            same = self.config.demos == "same_label" and label is not None
            ids = [
                s.id
                for s in seeds
                if not same or (label_field is not None and str(s.fields[label_field]) == label)
            ]
            if not ids:
                raise ConfigError(
                    f"step {ctx.name}: no seed has the label {label!r}; add some, or set demos: any"
                )
            order = self.rng("rotation", label).sample(ids, len(ids))
            self.pools[label] = order

    def condition(self, label: str | None, call: int) -> tuple[dict[str, Any], dict[str, Any]]:
        order = self.pools[label]
        k = min(self.config.k, len(order))
        start = call * k
        return {"seed_ids": [order[(start + i) % len(order)] for i in range(k)]}, {}

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        task = self.ctx.require_task()
        shown = [n for n in task.fields if n != task.label_field or self.config.demos == "any"]
        demos = [
            {name: self.seeds[seed_id].fields[name] for name in shown}
            for seed_id in job.provenance.conditioning["seed_ids"]
        ]
        return {"demos": demos}

    def check(self, record: Record, job: Record) -> tuple[str, str] | None:
        problem = super().check(record, job)
        if problem is not None:
            return problem
        names = self.generated_fields()
        text = " ".join(str(record.fields[n]) for n in names)
        for seed_id in job.provenance.conditioning["seed_ids"]:
            seed = self.seeds[seed_id]
            score = rouge_l(text, " ".join(str(seed.fields[n]) for n in names))
            if score > self.config.max_seed_similarity:
                return "copies_seed", f"ROUGE-L {score:.2f} with seed {seed_id}"
        return None
