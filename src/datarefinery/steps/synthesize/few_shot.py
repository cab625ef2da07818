"""``few_shot``: generation from ``k`` demonstrations drawn from the task's seeds per call.

Demonstrations rotate: the seeds of a label are shuffled once (seeded) and call ``j`` shows the
window ``j·k … j·k + k − 1`` of that order, wrapping around, so consecutive calls see different
seeds and every seed is shown equally often. The seed ids shown go into provenance.

Small models copy demonstrations; a record whose text fields are closer than
``max_seed_similarity`` (ROUGE-L) to a demonstration of its call is rejected (``copies_seed``).

``demos_from_review: OUT`` adds to the seeds the records people accepted, corrected or edited in
the review of run directory OUT (their decisions applied), so the next round learns from what
people fixed. The step's identity then includes a digest of OUT's decisions: a rerun after they
change redoes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from datarefinery.config import TaskSpec, load_seeds
from datarefinery.decisions import DECISIONS_FILE, DecisionStore
from datarefinery.errors import ConfigError
from datarefinery.records import Record
from datarefinery.steps.base import Gate, StepContext
from datarefinery.steps.curate.review import reviewed_records
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
    demos_from_review: str | None = Field(
        default=None,
        description="a run directory whose reviewed records (accepted, corrected) join the seeds",
    )


class FewShot(PlannedGeneration[FewShotConfig]):
    name = "few_shot"
    Config = FewShotConfig
    technique = "few_shot"
    template_name = "few_shot"

    def __init__(self, config: FewShotConfig) -> None:
        super().__init__(config)
        # Demonstrations from a review depend on people's decisions, which the spec does not hold.
        self.gated = config.demos_from_review is not None  # type: ignore[misc]

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        seeds = load_seeds(task, ctx.base_dir) + self._reviewed(ctx, task)
        if not seeds:
            raise ConfigError(
                f"step {ctx.name} needs seed examples: add 'seeds:' to the task, or "
                "demos_from_review: a run directory with reviewed records"
            )
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

    def _reviewed(self, ctx: StepContext, task: TaskSpec) -> list[Record]:
        if self.config.demos_from_review is None:
            return []
        out = Path(self.config.demos_from_review).expanduser()
        out = out if out.is_absolute() else ctx.base_dir / out
        if not (out / DECISIONS_FILE).exists():
            raise ConfigError(
                f"step {ctx.name}: demos_from_review names {out}, which holds no review "
                f"decisions ({DECISIONS_FILE}); review it first with `refinery review {out}`"
            )
        # Read before the records, like the review step's gate: see executors/gate.py.
        self.review_identity = DecisionStore.of_run(out).digest()
        return [r for r in reviewed_records(out, ctx) if all(n in r.fields for n in task.fields)]

    def gate(self, records: list[Record]) -> Gate:
        return Gate(self.review_identity)

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
