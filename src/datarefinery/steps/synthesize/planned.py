"""The shape most synthesis methods share: plan calls per label, condition each call on something
(nothing, demonstrations, attributes, a rationale, a context), ask for ``per_call`` records under
a JSON schema built from the task's fields, and turn the reply into records with provenance.

A subclass says what a call is conditioned on (``condition``, drawn deterministically at plan time
from the run seed), what its template sees (``prompt_variables``), and what makes a generated
record unusable (``check``). For a task without labels the calls form one group and
``count_per_label`` is the total.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request, Response
from datarefinery.llm.structured import schema_of
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import LLMCall, Output, StepConfig, StepContext
from datarefinery.steps.synthesize.generation import GenerationStep
from datarefinery.steps.writing import batch_model, item_model, reply_fields, text_budget
from datarefinery.text import normalize, rouge_l

DEFAULT_COUNT = 10


class SynthesisConfig(StepConfig):
    """Options every synthesis step has."""

    per_call: int = Field(default=1, ge=1, le=20, description="records asked for in one call")
    template: str | None = Field(
        default=None, description="a shipped template name or a .jinja path (relative to the spec)"
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class LabelledConfig(SynthesisConfig):
    count_per_label: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="records per label (in all for a task without labels); default: the task's "
        "count_per_label, else 10",
    )
    labels: list[str] | None = Field(default=None, description="a subset of the task's labels")


S = TypeVar("S", bound=SynthesisConfig)


class PlannedGeneration(GenerationStep[S]):
    """Base of the per-label synthesis steps; steps whose config is a ``LabelledConfig`` plan
    ``count_per_label`` records per label (others override ``plan``). One call per job:
    ``build_call`` and ``parse``, like an ``LLMStep``.
    """

    technique: ClassVar[str]
    template_name: ClassVar[str]

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        chosen = getattr(self.config, "labels", None)
        if chosen and task.label_field is None:
            raise ConfigError(f"step {ctx.name}: 'labels' needs a task with a label field")
        unknown = set(chosen or ()) - set(task.labels)
        if unknown:
            raise ConfigError(
                f"step {ctx.name}: labels {sorted(unknown)} are not in the task's labels "
                f"{list(task.labels)}"
            )
        self.template = self.prompt(self.template_name, self.config.template)
        self.single_model = item_model(task, self.generated_fields())
        self.models: dict[int, type[Any]] = {1: self.single_model}

    # -- what subclasses may change ----------------------------------------------------------

    def generated_fields(self) -> list[str]:
        """The fields the model writes (the label and any given context are filled in)."""
        return self.ctx.require_task().content_fields

    def condition(self, label: str | None, call: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """What call number ``call`` of ``label`` is conditioned on, as (conditioning for
        provenance, fields copied into every record of the call). Must be deterministic.
        """
        return {}, {}

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        """Extra variables for the template (beyond task, label, n, fields, given)."""
        return {}

    def record_conditioning(self, job: Record) -> dict[str, Any]:
        """The conditioning stamped on each record of a job."""
        return {k: v for k, v in job.provenance.conditioning.items() if k not in ("call", "n")}

    def check(self, record: Record, job: Record) -> tuple[str, str] | None:
        """(reason, detail) when a parsed record must be rejected."""
        empty = self.empty_fields({f: record.fields.get(f) for f in self.generated_fields()})
        if empty:
            return "empty", f"empty fields {empty}"
        return copies_instructions(self.ctx.require_task(), record, self.generated_fields())

    def template_hash(self, job: Record) -> str:
        return self.template.hash

    # -- planning -----------------------------------------------------------------------------

    def groups(self) -> list[str | None]:
        task = self.ctx.require_task()
        if task.label_field is None:
            return [None]
        return list(getattr(self.config, "labels", None) or task.labels)

    def count(self) -> int:
        chosen = getattr(self.config, "count_per_label", None)
        return chosen or self.ctx.require_task().count_per_label or DEFAULT_COUNT

    def plan(self) -> list[Record]:
        jobs = []
        per_call = self.config.per_call
        total = self.count()
        for label in self.groups():
            for call in range(math.ceil(total / per_call)):
                n = min(per_call, total - call * per_call)
                extra, given = self.condition(label, call)
                head: dict[str, Any] = {"label": label} if label is not None else {}
                conditioning = {**head, "call": call, "n": n, **extra}
                jobs.append(
                    Record(
                        id=stable_id(self.ctx.name, label, call),
                        fields=given,
                        provenance=Provenance(
                            step=self.ctx.name, technique="plan", conditioning=conditioning
                        ),
                    )
                )
        return jobs

    # -- calling and parsing -------------------------------------------------------------------

    async def process(self, batch: list[Record]) -> list[Output]:
        return await self.ask_each(batch, self.build_call, self.parse)

    def _reply_model(self, n: int) -> type[Any]:
        model = self.models.get(n)
        if model is None:
            model = batch_model(self.single_model, n)
            self.models[n] = model
        return model

    def build_call(self, record: Record) -> LLMCall[Any]:
        task = self.ctx.require_task()
        conditioning = record.provenance.conditioning
        label = conditioning.get("label")
        n = int(conditioning["n"])
        messages = self.template.render(
            task=task,
            label=label,
            label_description=task.labels.get(label, "") if label else "",
            n=n,
            fields={name: task.fields[name] for name in self.generated_fields()},
            given=record.fields,
            **self.prompt_variables(record),
        )
        model = self._reply_model(n)
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        budget = self.config.max_tokens or text_budget(task, self.generated_fields(), n, floor)
        request = Request(
            messages=messages,
            params=self.sampling(temperature=self.config.temperature, max_tokens=budget),
            json_schema=schema_of(model),
            seed=self.ctx.call_seed(record.id),
        )
        return LLMCall(request, model)

    def parse(self, reply: Any, record: Record, response: Response) -> list[Output]:
        task = self.ctx.require_task()
        items = reply.records if hasattr(reply, "records") else [reply]
        label = record.provenance.conditioning.get("label")
        outputs: list[Output] = []
        for i, item in enumerate(items):
            values = {**record.fields, **reply_fields(item, self.generated_fields())}
            if task.label_field is not None:
                values[task.label_field] = label
            # Task field order first, then anything a step adds (kept, not silently lost).
            fields = {n: values[n] for n in task.fields if n in values}
            fields.update({n: v for n, v in values.items() if n not in fields})
            generated = Record(
                id=stable_id(record.id, i),
                fields=fields,
                provenance=self.provenance(
                    self.technique, self.record_conditioning(record), self.template_hash(record)
                ),
            )
            problem = self.check(generated, record)
            if problem is not None:
                outputs.append(Rejected(generated, self.ctx.name, *problem))
            else:
                outputs.append(generated)
        return outputs


def copies_instructions(
    task: TaskSpec, record: Record, fields: list[str]
) -> tuple[str, str] | None:
    """Small models answer with the prompt's own words: a field's description ("one short
    sentence"), its name or a label name instead of content.
    """
    names = {normalize(label) for label in task.labels}
    for name in fields:
        value = record.fields.get(name)
        if not isinstance(value, str):
            continue
        if normalize(value) in names | {normalize(name)}:
            return "copies_instructions", f"{name} is only the word {value!r}"
        description = task.fields[name].description
        if description and rouge_l(value, description) >= 0.8:
            return "copies_instructions", f"{name} repeats its description {description!r}"
    return None
