"""``rationale``: S3's "explain then generate".

First, per label, the model lists ``rationales`` distinct reasons a record could have that label
(``rationale_calls`` calls; exact and near duplicates, ROUGE-L above ``max_similarity``, are
dropped). Then every generation call is conditioned on the label and one of those reasons: the
reasons are shuffled once (seeded) and calls take them in turn, so each is used about equally.
The reason goes into each record's provenance.

The reason lists are asked for lazily, once per label per session; on a resumed run they come from
the response cache, so they are the same lists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from pydantic import Field

from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Record
from datarefinery.steps.base import Failure, LLMCall, Output, StepContext, gather_or_cancel
from datarefinery.steps.synthesize.planned import LabelledConfig, PlannedGeneration
from datarefinery.steps.writing import combined_hash, strings_model
from datarefinery.text import SimilarityPool, normalize, rouge_tokens


class RationaleConfig(LabelledConfig):
    rationales: int = Field(default=8, ge=1, le=50, description="reasons asked for per call")
    rationale_calls: int = Field(default=1, ge=1, le=20, description="calls listing reasons")
    rationale_chars: int = Field(default=100, ge=10, le=400)
    max_similarity: float = Field(
        default=0.7, ge=0, le=1, description="drop a reason this close (ROUGE-L) to an earlier one"
    )
    rationale_template: str | None = None


class Rationale(PlannedGeneration[RationaleConfig]):
    name = "rationale"
    Config = RationaleConfig
    technique = "rationale"
    template_name = "rationale"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        if ctx.require_task().label_field is None:
            raise ConfigError(f"step {ctx.name} explains labels: the task needs a label field")
        self.list_template = self.prompt("rationale_list", self.config.rationale_template)
        self.list_model = strings_model(
            "reasons", self.config.rationales, max_chars=self.config.rationale_chars
        )
        # label -> the deduplicated reasons, or why there are none (filled on first use)
        self._reasons: dict[str, list[str] | Failure] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def reasons(self, label: str) -> list[str] | Failure:
        """The deduplicated reasons for ``label`` (asked for once, then kept)."""
        lock = self._locks.setdefault(label, asyncio.Lock())
        async with lock:
            if label not in self._reasons:
                self._reasons[label] = await self._ask_reasons(label)
            return self._reasons[label]

    async def _ask_reasons(self, label: str) -> list[str] | Failure:
        task = self.ctx.require_task()
        messages = self.list_template.render(
            task=task,
            label=label,
            label_description=task.labels.get(label, ""),
            k=self.config.rationales,
        )
        budget = self.config.rationales * (self.config.rationale_chars + 8) + 32
        calls = [
            LLMCall(
                Request(
                    messages=messages,
                    params=self.sampling(temperature=self.config.temperature, max_tokens=budget),
                    json_schema=schema_of(self.list_model),
                    seed=self.ctx.call_seed("rationales", label, index),
                ),
                self.list_model,
            )
            for index in range(self.config.rationale_calls)
        ]
        answers = await gather_or_cancel(*(self.ask(call) for call in calls))
        candidates: list[str] = []
        failures = []
        for answer in answers:
            if isinstance(answer, Failure):
                failures.append(answer)
            else:
                candidates.extend(answer.value.reasons)
        kept = dedup_reasons(candidates, self.config.max_similarity, task.labels)
        if not kept:
            detail = failures[0].detail if failures else "every reason was empty"
            return Failure("rationale_failed", f"no reasons for label {label!r}: {detail}")
        return kept

    async def process(self, batch: list[Record]) -> list[Output]:
        labels = {str(job.provenance.conditioning["label"]) for job in batch}
        await gather_or_cancel(*(self.reasons(label) for label in labels))
        ready = [job for job in batch if not isinstance(self._reasons[self._label(job)], Failure)]
        outputs = await super().process(ready)
        for job in batch:
            failure = self._reasons[self._label(job)]
            if isinstance(failure, Failure):
                rejected = [failure.reject(job, self.ctx.name)]
                self.report(rejected)
                outputs.extend(rejected)
        return outputs

    def _label(self, job: Record) -> str:
        return str(job.provenance.conditioning["label"])

    def rationale_of(self, job: Record) -> tuple[int, str]:
        """The reason job ``job`` is conditioned on: calls of a label take them in a seeded
        order, in turn.
        """
        label = self._label(job)
        found = self._reasons[label]
        assert not isinstance(found, Failure)
        order = self.rng("rationale-order", label).sample(range(len(found)), len(found))
        index = order[int(job.provenance.conditioning["call"]) % len(found)]
        return index, found[index]

    def prompt_variables(self, job: Record) -> dict[str, Any]:
        return {"rationale": self.rationale_of(job)[1]}

    def record_conditioning(self, job: Record) -> dict[str, Any]:
        index, reason = self.rationale_of(job)
        return {**super().record_conditioning(job), "rationale": reason, "rationale_index": index}

    def template_hash(self, job: Record) -> str:
        return combined_hash(self.list_template, self.template)


def dedup_reasons(
    candidates: list[str], max_similarity: float, labels: Iterable[str] = ()
) -> list[str]:
    """Reasons in order, without exact repeats (ignoring case, spacing and a trailing full stop),
    near repeats (ROUGE-L above ``max_similarity`` with a kept one), and non-reasons: fewer than
    two words, or a bare label name (small models answer "Positive").
    """
    kept: list[str] = []
    seen = {normalize(label) for label in labels}
    pool = SimilarityPool()
    for candidate in candidates:
        text = candidate.strip().rstrip(".").strip()
        key = normalize(text)
        if len(rouge_tokens(text)) < 2 or key in seen:
            continue
        if pool.closest(text)[0] > max_similarity:
            continue
        seen.add(key)
        pool.add(text)
        kept.append(text)
    return kept
