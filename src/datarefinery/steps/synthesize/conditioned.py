"""``conditioned``: generate the missing part of a multi-sentence record from a context drawn from
a pool file.

NLI: ``given: [premise]`` with the RTE premises as the pool; every call writes a hypothesis with
the target label. QA: ``given: [context]`` and ``must_occur_in: {answer: context}``; every call
writes a question and its answer, and a record whose answer is not a span of the context is
rejected (``not_in_context``). A written field that copies a given one is rejected
(``copies_context``: an NLI "hypothesis" that is the premise says nothing). The pool is shuffled
once (seeded) and calls take contexts in that order, the same order for every label, so an NLI
premise gets a hypothesis of each label.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from datarefinery.errors import ConfigError
from datarefinery.io.formats import Format
from datarefinery.records import Record
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.planned import LabelledConfig, PlannedGeneration
from datarefinery.steps.synthesize.pool import load_pool
from datarefinery.text import normalize, rouge_l


class ConditionedConfig(LabelledConfig):
    pool: str = Field(description="file of contexts (.jsonl/.csv/.parquet), relative to the spec")
    given: list[str] = Field(min_length=1, description="task fields copied from the pool")
    pool_format: Format = "auto"
    pool_limit: int | None = Field(default=None, ge=1, description="use the first N contexts")
    must_occur_in: dict[str, str] = Field(
        default_factory=dict,
        description="generated field -> given field that must contain it word for word",
    )
    max_context_similarity: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="reject a written field this close (ROUGE-L) to a given one (a copy)",
    )


class Conditioned(PlannedGeneration[ConditionedConfig]):
    name = "conditioned"
    Config = ConditionedConfig
    technique = "conditioned"
    template_name = "conditioned"

    def setup(self, ctx: StepContext) -> None:
        task = ctx.require_task()
        given = self.config.given
        unknown = [g for g in given if g not in task.content_fields]
        if unknown:
            raise ConfigError(
                f"step {ctx.name}: given fields {unknown} are not among the task's fields "
                f"{task.content_fields}"
            )
        if not self.generated_fields_of(task.content_fields):
            raise ConfigError(f"step {ctx.name}: every field is given; nothing is left to write")
        for written, context in self.config.must_occur_in.items():
            if written not in self.generated_fields_of(task.content_fields) or context not in given:
                raise ConfigError(
                    f"step {ctx.name}: must_occur_in {written}: {context} needs a generated field "
                    f"and a given field"
                )
        super().setup(ctx)
        self.pool = load_pool(
            self.config.pool,
            ctx.base_dir,
            required=given,
            format=self.config.pool_format,
            limit=self.config.pool_limit,
        )
        self.order = self.rng("pool").sample(range(len(self.pool)), len(self.pool))

    def generated_fields_of(self, content: list[str]) -> list[str]:
        return [f for f in content if f not in self.config.given]

    def generated_fields(self) -> list[str]:
        return self.generated_fields_of(self.ctx.require_task().content_fields)

    def condition(self, label: str | None, call: int) -> tuple[dict[str, Any], dict[str, Any]]:
        context = self.pool[self.order[call % len(self.pool)]]
        fields = {name: context.fields[name] for name in self.config.given}
        return {"context_id": context.id}, fields

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        return {"spans": self.config.must_occur_in}

    def check(self, record: Record, job: Record) -> tuple[str, str] | None:
        problem = super().check(record, job)
        if problem is not None:
            return problem
        for written, context in self.config.must_occur_in.items():
            value = str(record.fields[written])
            if normalize(value) not in normalize(str(record.fields[context])):
                return "not_in_context", f"{written} {value!r} does not occur in the {context}"
        for written in self.generated_fields():
            if written in self.config.must_occur_in:
                continue
            for given in self.config.given:
                score = rouge_l(str(record.fields[written]), str(record.fields[given]))
                if score > self.config.max_context_similarity:
                    return "copies_context", f"{written} is ROUGE-L {score:.2f} with the {given}"
        return None
