"""``zero_shot``: task-prompted generation per label (ZeroGen, the S3 paper's baseline).

For every label the step plans ``ceil(count_per_label / per_call)`` calls; each call asks for
``per_call`` records of that label under a JSON schema built from the task's fields.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request, Response
from datarefinery.prompts.render import load_template
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import LLMCall, Output, StepConfig, StepContext
from datarefinery.steps.synthesize.common import GenerationStep, batch_model, item_model


class ZeroShotConfig(StepConfig):
    count_per_label: int = Field(default=10, ge=1, le=1_000_000)
    per_call: int = Field(default=1, ge=1, le=20, description="records asked for in one call")
    labels: list[str] | None = Field(default=None, description="a subset of the task's labels")
    template: str = "zero_shot"
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class ZeroShot(GenerationStep[ZeroShotConfig]):
    name = "zero_shot"
    Config = ZeroShotConfig
    technique = "zero_shot"

    def writes(self, task: TaskSpec | None) -> set[str]:
        return set(task.fields) if task else set()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        if task.label_field is None:
            raise ConfigError(f"step {ctx.name}: the task has no field of type 'label'")
        unknown = set(self.config.labels or ()) - set(task.labels)
        if unknown:
            raise ConfigError(
                f"step {ctx.name}: labels {sorted(unknown)} are not in the task's labels "
                f"{list(task.labels)}"
            )
        self.template = load_template(self.config.template)
        item = item_model(task, task.content_fields)
        self.single_model = item
        self.models = {1: item}

    def labels(self) -> list[str]:
        return self.config.labels or list(self.ctx.require_task().labels)

    def plan(self) -> list[Record]:
        jobs = []
        per_call = self.config.per_call
        for label in self.labels():
            calls = math.ceil(self.config.count_per_label / per_call)
            for call in range(calls):
                n = min(per_call, self.config.count_per_label - call * per_call)
                conditioning = {"label": label, "call": call, "n": n}
                jobs.append(
                    Record(
                        id=stable_id(self.ctx.name, label, call),
                        fields={},
                        provenance=Provenance(
                            step=self.ctx.name, technique="plan", conditioning=conditioning
                        ),
                    )
                )
        return jobs

    def _reply_model(self, n: int) -> type[Any]:
        model = self.models.get(n)
        if model is None:
            model = batch_model(self.single_model, n)
            self.models[n] = model
        return model

    def build_call(self, record: Record) -> LLMCall[Any]:
        task = self.ctx.require_task()
        label = record.provenance.conditioning["label"]
        n = int(record.provenance.conditioning["n"])
        messages = self.template.render(
            task=task,
            label=label,
            label_description=task.labels.get(label, ""),
            n=n,
            fields={name: task.fields[name] for name in task.content_fields},
        )
        model = self._reply_model(n)
        request = Request(
            messages=messages,
            params=self.sampling(
                temperature=self.config.temperature, max_tokens=self._max_tokens(n)
            ),
            json_schema=model.model_json_schema(),
            seed=self.ctx.call_seed(record.id),
        )
        return LLMCall(request, model)

    def _max_tokens(self, n: int) -> int:
        if self.config.max_tokens is not None:
            return self.config.max_tokens
        # Budget one token per character at every field's cap plus JSON syntax, so the grammar's
        # maxLength, not max_tokens, ends a field. (Only text full of multi-token characters, such
        # as emoji, can still hit max_tokens; the engine then re-asks and at worst rejects.)
        task = self.ctx.require_task()
        per_record = sum(task.fields[f].max_chars + len(f) + 8 for f in task.content_fields)
        return max(self.ctx.llm.max_tokens, n * per_record + 16)

    def parse(self, reply: Any, record: Record, response: Response) -> list[Output]:
        task = self.ctx.require_task()
        label_field = task.label_field
        assert label_field is not None
        items = reply.records if hasattr(reply, "records") else [reply]
        outputs: list[Output] = []
        conditioning = dict(record.provenance.conditioning)
        for i, item in enumerate(items):
            fields = {name: getattr(item, name) for name in task.content_fields}
            fields[label_field] = conditioning["label"]
            generated = Record(
                id=stable_id(record.id, i),
                fields=fields,
                provenance=Provenance(
                    step=self.ctx.name,
                    technique=self.technique,
                    model=self.ctx.require_engine().model_identity,
                    template_hash=self.template.hash,
                    conditioning={"label": conditioning["label"]},
                    source="synthetic",
                ),
            )
            empty = [
                n
                for n in task.content_fields
                if isinstance(fields[n], str) and not fields[n].strip()
            ]
            if empty:
                outputs.append(Rejected(generated, self.ctx.name, "empty", f"empty fields {empty}"))
            else:
                outputs.append(generated)
        return outputs
