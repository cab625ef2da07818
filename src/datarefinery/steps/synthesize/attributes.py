"""``attributes``: generation conditioned on a combination of attribute values per call.

The task lists attributes (``genre: [comedy, drama]`` or, weighted, ``length: {short: 3,
long: 1}``). Each call draws one value per attribute: ``weighted`` uses the weights (a plain list
weighs every value 1), ``uniform`` ignores them, ``cycle`` walks the whole grid in a seeded order
so every combination comes up before any repeats. The draw is recorded in provenance.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field

from datarefinery.errors import ConfigError
from datarefinery.records import Record
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.planned import LabelledConfig, PlannedGeneration

MAX_GRID = 100_000


class AttributesConfig(LabelledConfig):
    attributes: list[str] | None = Field(
        default=None, description="which of the task's attributes to use; default: all"
    )
    draw: Literal["weighted", "uniform", "cycle"] = "weighted"


class Attributes(PlannedGeneration[AttributesConfig]):
    name = "attributes"
    Config = AttributesConfig
    technique = "attributes"
    template_name = "attributes"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        weights = ctx.require_task().attribute_weights()
        if not weights:
            raise ConfigError(
                f"step {ctx.name} needs attributes: add e.g. 'attributes: {{tone: [angry, calm]}}' "
                "to the task"
            )
        chosen = self.config.attributes or list(weights)
        unknown = [a for a in chosen if a not in weights]
        if unknown:
            raise ConfigError(
                f"step {ctx.name}: attributes {unknown} are not in the task's attributes "
                f"{list(weights)}"
            )
        self.weights = {name: weights[name] for name in chosen}
        if self.config.draw == "cycle":
            size = 1
            for values in self.weights.values():
                size *= len(values)
            if size > MAX_GRID:
                raise ConfigError(
                    f"step {ctx.name}: the attribute grid has {size:,} combinations, too many to "
                    f"cycle through (at most {MAX_GRID:,}); use draw: weighted"
                )
            self.grid = list(itertools.product(*(list(v) for v in self.weights.values())))
            self.orders: dict[str | None, list[int]] = {}

    def condition(self, label: str | None, call: int) -> tuple[dict[str, Any], dict[str, Any]]:
        names = list(self.weights)
        if self.config.draw == "cycle":
            order = self.orders.get(label)
            if order is None:
                order = self.rng("grid", label).sample(range(len(self.grid)), len(self.grid))
                self.orders[label] = order
            combination = self.grid[order[call % len(order)]]
            return {"attributes": dict(zip(names, combination, strict=True))}, {}
        rng = self.rng("attributes", label, call)
        drawn = {}
        for name, weighted in self.weights.items():
            values = list(weighted)
            if self.config.draw == "uniform":
                drawn[name] = rng.choice(values)
            else:
                drawn[name] = rng.choices(values, weights=list(weighted.values()))[0]
        return {"attributes": drawn}, {}

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        return {"attributes": job.provenance.conditioning["attributes"]}
