"""Rewriting real records: ``paraphrase`` and ``style`` keep the label, ``counterfactual`` makes
the smallest edit that flips it to a target label.

Each input record yields its rewrites as new records (``parent_ids`` = the original, provenance
``source: augmented``) and, with ``keep_original`` (the default), the original itself. A rewrite
that keeps every word in order (case and punctuation aside) is rejected (``unchanged``); a
counterfactual that rewrites too much to be a minimal edit is rejected (``not_minimal``: word-level
similarity to the original below ``min_similarity``). Exact duplicates of earlier outputs are
rejected like in generation. With ``verify_k``, each rewrite is re-labeled by a k-sample vote and
rejected unless the majority is the label it should have (``label_not_kept`` /
``label_not_flipped``); the share of votes for that label is kept as ``label_agreement``.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request
from datarefinery.llm.structured import schema_of
from datarefinery.records import Record, Rejected, stable_id
from datarefinery.steps.base import (
    Failure,
    LLMCall,
    ModelStep,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.voting import vote
from datarefinery.steps.writing import TextWritingStep, item_model, text_budget
from datarefinery.text import rouge_tokens

# Variant keys the template needs that provenance does not (the label says the target already).
PROMPT_ONLY = frozenset({"target", "target_description"})


class RewriteConfig(StepConfig):
    fields: list[str] | None = Field(
        default=None, description="the fields to rewrite; default: the task's text fields"
    )
    keep_original: bool = Field(default=True, description="also pass the original through")
    verify_k: int = Field(
        default=0,
        ge=0,
        le=20,
        description="re-label each rewrite with k samples and reject it unless the majority is "
        "the label it should have (0: no check)",
    )
    template: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class ParaphraseConfig(RewriteConfig):
    per_record: int = Field(default=1, ge=1, le=20, description="rewrites of each record")


class StyleConfig(RewriteConfig):
    styles: list[str] = Field(min_length=1, description="styles, tones or registers to use")
    per_record: int = Field(default=1, ge=1, le=20, description="styles drawn per record")


class CounterfactualConfig(RewriteConfig):
    targets: list[str] | None = Field(
        default=None, description="labels to flip to; default: every other label"
    )
    min_similarity: float = Field(
        default=0.3, ge=0, le=1, description="word-level similarity to the original, at least"
    )


class RewriteAugmentation(TextWritingStep[Any]):
    """Base of the rewriting steps: one call per (record, variant)."""

    technique: ClassVar[str]
    template_name: ClassVar[str]

    def rewritten(self, task: TaskSpec | None) -> list[str]:
        if self.config.fields is not None:
            return list(self.config.fields)
        return [n for n, f in task.fields.items() if f.type == "text"] if task else []

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self.rewritten(task))

    def writes(self, task: TaskSpec | None) -> set[str]:
        return set(self.rewritten(task))

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        self.names = self.rewritten(task)
        wrong = [n for n in self.names if n not in task.fields or task.fields[n].type != "text"]
        if wrong or not self.names:
            raise ConfigError(
                f"step {ctx.name} rewrites text fields of the task; {wrong or 'none'} are not"
            )
        self.template = self.prompt(self.template_name, self.config.template)
        self.label_template = self.prompt("label")
        self.model = item_model(task, self.names)

    def variants(self, record: Record) -> list[dict[str, Any]] | Rejected:
        """The conditioning of each rewrite of ``record`` (or why it cannot be rewritten)."""
        raise NotImplementedError

    def derived_fields(self, record: Record, variant: dict[str, Any]) -> dict[str, Any]:
        """Fields a rewrite sets besides the rewritten text (counterfactual: the new label)."""
        return {}

    def deduplicates(self, record: Record) -> bool:
        # Originals pass through as they are (deduplicating the input is curation's job); they
        # only register, so that a rewrite equal to an original is caught.
        return record.provenance.step == self.ctx.name

    def check(self, original: Record, derived: Record) -> tuple[str, str] | None:
        before = [rouge_tokens(str(original.fields[n])) for n in self.names]
        after = [rouge_tokens(str(derived.fields[n])) for n in self.names]
        if before == after:
            return "unchanged", "the rewrite has the original's words in the original's order"
        empty = self.empty_fields({n: derived.fields[n] for n in self.names})
        return ("empty", f"empty fields {empty}") if empty else None

    async def process(self, batch: list[Record]) -> list[Output]:
        results = await gather_or_cancel(*(self._rewrite_all(r) for r in batch))
        return [output for outputs in results for output in outputs]

    async def _rewrite_all(self, record: Record) -> list[Output]:
        variants = self.variants(record)
        if isinstance(variants, Rejected):
            outputs: list[Output] = [variants]
        else:
            rewrites = await gather_or_cancel(
                *(self._rewrite(record, i, v) for i, v in enumerate(variants))
            )
            outputs = [record] if self.config.keep_original else []
            outputs.extend(rewrites)
        self.report(outputs)
        return outputs

    async def _rewrite(self, record: Record, index: int, variant: dict[str, Any]) -> Output:
        task = self.ctx.require_task()
        label_field = task.label_field
        label = record.fields.get(label_field) if label_field else None
        messages = self.template.render(
            task=task,
            original={n: record.fields[n] for n in self.names},
            fields={n: task.fields[n] for n in self.names},
            label=label,
            label_description=task.labels.get(str(label), "") if label is not None else "",
            **variant,
        )
        floor = self.config.max_tokens or self.ctx.llm.max_tokens
        request = Request(
            messages=messages,
            params=self.sampling(
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens or text_budget(task, self.names, 1, floor),
            ),
            json_schema=schema_of(self.model),
            seed=self.ctx.call_seed(record.id, index),
        )
        fields = dict(record.fields)
        fields.update(self.derived_fields(record, variant))
        conditioning = {k: v for k, v in variant.items() if k not in PROMPT_ONLY}
        if label_field is not None and fields.get(label_field) is not None:
            conditioning = {"label": fields[label_field], **conditioning}
        derived = Record(
            id=stable_id(record.id, self.ctx.name, index),
            fields=fields,
            provenance=self.provenance(
                self.technique,
                conditioning,
                self.template.hash,
                parents=[record.id],
                source="augmented",
            ),
        )
        answer = await self.ask(LLMCall(request, self.model))
        if isinstance(answer, Failure):
            return answer.reject(derived, self.ctx.name)
        derived.fields.update({n: getattr(answer.value, n) for n in self.names})
        problem = self.check(record, derived)
        if problem is None and self.config.verify_k and label_field is not None:
            problem = await self._verify(derived, label_field)
        return Rejected(derived, self.ctx.name, *problem) if problem else derived

    async def _verify(self, derived: Record, label_field: str) -> tuple[str, str] | None:
        """Re-label the rewrite (self-consistency vote); its agreement becomes a score."""
        task = self.ctx.require_task()
        expected = str(derived.fields[label_field])
        k = self.config.verify_k
        result = await vote(
            self.ctx.require_engine(),
            self.label_template,
            task,
            derived,
            input_fields=[n for n in task.content_fields if n in derived.fields],
            k=k,
            # the llm section's sampling, not the task's: this is labeling, not writing
            params=ModelStep.sampling(self, max_tokens=32),
            seeds=[self.ctx.call_seed("verify", derived.id, i) for i in range(k)],
        )
        derived.scores["label_agreement"] = round(result.votes.get(expected, 0) / k, 4)
        if result.label == expected:
            return None
        flipped = "from_label" in derived.provenance.conditioning
        return (
            "label_not_flipped" if flipped else "label_not_kept",
            f"re-labeled {result.label!r} (votes {result.votes}), expected {expected!r}",
        )


class Paraphrase(RewriteAugmentation):
    name = "paraphrase"
    Config = ParaphraseConfig
    technique = "paraphrase"
    template_name = "paraphrase"

    def variants(self, record: Record) -> list[dict[str, Any]] | Rejected:
        return [{"variant": i} for i in range(self.config.per_record)]


class Style(RewriteAugmentation):
    name = "style"
    Config = StyleConfig
    technique = "style"
    template_name = "style"

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        if self.config.per_record > len(self.config.styles):
            raise ConfigError(
                f"step {ctx.name}: per_record {self.config.per_record} is more than the "
                f"{len(self.config.styles)} styles listed"
            )

    def variants(self, record: Record) -> list[dict[str, Any]] | Rejected:
        drawn = self.rng("styles", record.id).sample(self.config.styles, self.config.per_record)
        return [{"style": style} for style in drawn]


class Counterfactual(RewriteAugmentation):
    name = "counterfactual"
    Config = CounterfactualConfig
    technique = "counterfactual"
    template_name = "counterfactual"

    def reads(self, task: TaskSpec | None) -> set[str]:
        label = task.label_field if task else None
        return super().reads(task) | ({label} if label else set())

    def writes(self, task: TaskSpec | None) -> set[str]:
        return self.reads(task)

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        if task.label_field is None:
            raise ConfigError(f"step {ctx.name} flips labels: the task needs a label field")
        unknown = set(self.config.targets or ()) - set(task.labels)
        if unknown:
            raise ConfigError(f"step {ctx.name}: targets {sorted(unknown)} are not task labels")
        self.label_field = task.label_field

    def variants(self, record: Record) -> list[dict[str, Any]] | Rejected:
        task = self.ctx.require_task()
        current = str(record.fields.get(self.label_field))
        if current not in task.labels:
            return Rejected(
                record, self.ctx.name, "no_label", f"label {current!r} is not a task label"
            )
        targets = [t for t in (self.config.targets or list(task.labels)) if t != current]
        return [
            {"from_label": current, "target": t, "target_description": task.labels[t]}
            for t in targets
        ]

    def derived_fields(self, record: Record, variant: dict[str, Any]) -> dict[str, Any]:
        return {self.label_field: variant["target"]}

    def check(self, original: Record, derived: Record) -> tuple[str, str] | None:
        problem = super().check(original, derived)
        if problem is not None:
            return problem
        similarity = word_similarity(
            " ".join(str(original.fields[n]) for n in self.names),
            " ".join(str(derived.fields[n]) for n in self.names),
        )
        if similarity < self.config.min_similarity:
            return (
                "not_minimal",
                f"word-level similarity {similarity:.2f} to the original "
                f"(min_similarity {self.config.min_similarity})",
            )
        return None


def word_similarity(a: str, b: str) -> float:
    """Difflib's ratio over word sequences: 1.0 for the same words in the same order."""
    return difflib.SequenceMatcher(None, rouge_tokens(a), rouge_tokens(b), autojunk=False).ratio()
