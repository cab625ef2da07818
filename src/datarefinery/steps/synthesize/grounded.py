"""``grounded``: question-answer pairs generated from facts (a list of statements, or the rows of
a small table), each answer supported by its fact.

Every fact gets ``per_fact`` records. A fact is a column of the file (``fact_field``) or, for a
table, the whole row written as ``column: value; ...``. A record whose answer is not supported by
its fact is rejected (``unsupported_answer``): with ``support: span`` the answer must occur in the
fact word for word; with ``overlap`` (the default) at least ``min_overlap`` of the answer's content
words must. A record whose question contains its answer is rejected (``answer_in_question``;
small models repeat one in the other). The fact's id goes into provenance (``fact_id``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from datarefinery.errors import ConfigError
from datarefinery.io.formats import Format
from datarefinery.records import Provenance, Record, stable_id
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.planned import PlannedGeneration, SynthesisConfig
from datarefinery.steps.synthesize.pool import load_pool
from datarefinery.text import STOPWORDS, normalize, rouge_tokens


class GroundedConfig(SynthesisConfig):
    facts: str = Field(description="file of facts or table rows, relative to the spec")
    facts_format: Format = "auto"
    fact_field: str | None = Field(
        default=None, description="the column holding the fact; default: the whole row (a table)"
    )
    context_field: str | None = Field(
        default=None, description="a task field that receives the fact's text"
    )
    answer_field: str = "answer"
    per_fact: int = Field(default=1, ge=1, le=1000)
    limit: int | None = Field(default=None, ge=1, description="use the first N facts")
    support: Literal["overlap", "span", "none"] = "overlap"
    min_overlap: float = Field(default=0.6, ge=0, le=1)


class Grounded(PlannedGeneration[GroundedConfig]):
    name = "grounded"
    Config = GroundedConfig
    technique = "grounded"
    template_name = "grounded"

    def setup(self, ctx: StepContext) -> None:
        task = ctx.require_task()
        if task.label_field is not None:
            raise ConfigError(f"step {ctx.name} writes QA pairs: the task must not have a label")
        context = self.config.context_field
        if context is not None and context not in task.content_fields:
            raise ConfigError(f"step {ctx.name}: context_field {context!r} is not a task field")
        super().setup(ctx)
        if self.config.answer_field not in self.generated_fields():
            raise ConfigError(
                f"step {ctx.name}: answer_field {self.config.answer_field!r} is not among the "
                f"fields it writes {self.generated_fields()}"
            )
        required = [self.config.fact_field] if self.config.fact_field else []
        facts = load_pool(
            self.config.facts,
            ctx.base_dir,
            required=required,
            format=self.config.facts_format,
            limit=self.config.limit,
        )
        self.facts = {fact.id: self.fact_text(fact) for fact in facts}

    def fact_text(self, fact: Record) -> str:
        if self.config.fact_field is not None:
            return str(fact.fields[self.config.fact_field])
        return "; ".join(f"{name}: {value}" for name, value in fact.fields.items())

    def generated_fields(self) -> list[str]:
        task = self.ctx.require_task()
        return [f for f in task.content_fields if f != self.config.context_field]

    def plan(self) -> list[Record]:
        jobs = []
        per_call = self.config.per_call
        total = self.config.per_fact
        for fact_id, text in self.facts.items():
            given = {self.config.context_field: text} if self.config.context_field else {}
            for call in range(math.ceil(total / per_call)):
                n = min(per_call, total - call * per_call)
                jobs.append(
                    Record(
                        id=stable_id(self.ctx.name, fact_id, call),
                        fields=dict(given),
                        provenance=Provenance(
                            step=self.ctx.name,
                            technique="plan",
                            conditioning={"fact_id": fact_id, "call": call, "n": n},
                        ),
                    )
                )
        return jobs

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        return {"fact": self.facts[job.provenance.conditioning["fact_id"]]}

    def check(self, record: Record, job: Record) -> tuple[str, str] | None:
        problem = super().check(record, job)
        if problem is not None or self.config.support == "none":
            return problem
        fact = self.facts[job.provenance.conditioning["fact_id"]]
        answer = str(record.fields[self.config.answer_field])
        for name in self.generated_fields():
            value = str(record.fields[name])
            if name != self.config.answer_field and normalize(answer) in normalize(value):
                return "answer_in_question", f"the answer {answer!r} is written in the {name}"
        if self.config.support == "span":
            if normalize(answer) not in normalize(fact):
                return "unsupported_answer", f"the answer {answer!r} does not occur in the fact"
            return None
        share = support_share(answer, fact)
        if share < self.config.min_overlap:
            return (
                "unsupported_answer",
                f"{share:.0%} of the answer's content words are in the fact "
                f"(min_overlap {self.config.min_overlap:.0%}): {answer!r}",
            )
        return None


def support_share(answer: str, fact: str) -> float:
    """The share of the answer's content words (stop words aside) that occur in the fact; an
    answer of stop words only counts as supported when it occurs in the fact as it is.
    """
    fact_words = set(rouge_tokens(fact))
    words = [w for w in rouge_tokens(answer) if w not in STOPWORDS]
    if not words:
        return 1.0 if normalize(answer) in normalize(fact) else 0.0
    return sum(1 for w in words if w in fact_words) / len(words)
