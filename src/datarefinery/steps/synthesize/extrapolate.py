"""``extrapolate``: S3's error extrapolation. Each input record (an example a small model got
wrong, with its gold label) yields ``k`` new records like it, with the same label.

For multi-sentence tasks the ``given`` fields (an NLI premise, a QA context) are copied from the
example and the model writes the rest for the same context and target label. The example is shown
to the model (cut to ``example_chars``), so a reply can copy it: a written field more than
``max_copied`` of whose words follow the shown example's in order is rejected (``near_copy``), as
is one with ROUGE-L above ``max_context_similarity`` with a given field (``copies_context``).
The example itself is not passed on; the records it yields name it in ``parent_ids`` and in
``conditioning.example_id``.
"""

from __future__ import annotations

import abc
from typing import Any

from pydantic import BaseModel, Field

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Message, Request
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import PromptTemplate
from datarefinery.records import Record, Rejected, stable_id
from datarefinery.steps.base import (
    C,
    Failure,
    LLMCall,
    Output,
    StepConfig,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.synthesize.planned import copies_instructions
from datarefinery.steps.writing import TextWritingStep, item_model, text_budget
from datarefinery.text import lcs_length, rouge_l, rouge_tokens


class ExtrapolateConfig(StepConfig):
    k: int = Field(default=2, ge=1, le=20, description="new records per example")
    given: list[str] = Field(
        default_factory=list, description="fields copied from the example (e.g. the premise)"
    )
    example_chars: int = Field(
        default=600, ge=20, le=20_000, description="the example is cut to this many characters"
    )
    max_copied: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="reject a written field whose words follow the example's in order for more "
        "than this share of its length (a near copy)",
    )
    max_context_similarity: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="reject a written field this close (ROUGE-L) to a given one (a copy)",
    )
    template: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)


class ExampleWritingStep(TextWritingStep[C]):
    """A step that writes ``k`` records like each input example, one call a record: the reply fills
    the ``written`` fields, then ``check`` may reject the record. A subclass renders the prompt
    and says which fields the record keeps from its example.
    """

    technique: str
    written: list[str]
    model: type[BaseModel]
    template: PromptTemplate

    async def process(self, batch: list[Record]) -> list[Output]:
        results = await gather_or_cancel(*(self._extrapolate(r) for r in batch))
        return [output for outputs in results for output in outputs]

    @abc.abstractmethod
    async def _extrapolate(self, example: Record) -> list[Output]: ...

    async def write_like(
        self,
        example: Record,
        index: int,
        messages: tuple[Message, ...],
        fields: dict[str, Any],
        conditioning: dict[str, Any],
        limits: tuple[float | None, int | None],
    ) -> Output:
        """Record ``index`` like ``example``: ``fields`` kept, the written ones asked for and
        checked; ``limits`` are the step's ``temperature`` and ``max_tokens`` options.
        """
        task = self.ctx.require_task()
        temperature, max_tokens = limits
        floor = max_tokens or self.ctx.llm.max_tokens
        request = Request(
            messages=messages,
            params=self.sampling(
                temperature=temperature,
                max_tokens=max_tokens or text_budget(task, self.written, 1, floor),
            ),
            json_schema=schema_of(self.model),
            seed=self.ctx.call_seed(example.id, index),
        )
        record = Record(
            id=stable_id(example.id, self.ctx.name, index),
            fields=fields,
            provenance=self.provenance(
                self.technique, conditioning, self.template.hash, parents=[example.id]
            ),
        )
        answer = await self.ask(LLMCall(request, self.model))
        if isinstance(answer, Failure):
            return answer.reject(record, self.ctx.name)
        record.fields.update({n: getattr(answer.value, n) for n in self.written})
        problem = self.check(example, record)
        return Rejected(record, self.ctx.name, *problem) if problem else record

    def check(self, example: Record, record: Record) -> tuple[str, str] | None:
        """Why ``record`` is rejected: an empty written field, copied instructions, a copy."""
        empty = self.empty_fields({n: record.fields[n] for n in self.written})
        if empty:
            return "empty", f"empty fields {empty}"
        problem = copies_instructions(self.ctx.require_task(), record, self.written)
        return problem if problem is not None else self.copies(example, record)

    @abc.abstractmethod
    def copies(self, example: Record, record: Record) -> tuple[str, str] | None:
        """Why ``record`` is too close to ``example`` to be a new record, if it is."""


class Extrapolate(ExampleWritingStep[ExtrapolateConfig]):
    name = "extrapolate"
    Config = ExtrapolateConfig
    technique = "extrapolate"

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(task.fields) if task else set()

    def writes(self, task: TaskSpec | None) -> set[str]:
        return set(task.fields) if task else set()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        if task.label_field is None:
            raise ConfigError(f"step {ctx.name} keeps the example's label: the task needs one")
        unknown = [g for g in self.config.given if g not in task.content_fields]
        if unknown:
            raise ConfigError(
                f"step {ctx.name}: given fields {unknown} are not among the task's fields "
                f"{task.content_fields}"
            )
        self.written = [f for f in task.content_fields if f not in self.config.given]
        if not self.written:
            raise ConfigError(f"step {ctx.name}: every field is given; nothing is left to write")
        self.template = self.prompt("extrapolate", self.config.template)
        self.model = item_model(task, self.written)

    async def _extrapolate(self, example: Record) -> list[Output]:
        task = self.ctx.require_task()
        label = str(example.fields.get(str(task.label_field), ""))
        outputs: list[Output]
        if label not in task.labels:
            outputs = [
                Rejected(example, self.ctx.name, "unknown_label", f"{label!r} is not a label")
            ]
        else:
            outputs = list(
                await gather_or_cancel(
                    *(self._one(example, label, i) for i in range(self.config.k))
                )
            )
        self.report(outputs)
        return outputs

    async def _one(self, example: Record, label: str, index: int) -> Output:
        task = self.ctx.require_task()
        cut = self.config.example_chars
        messages = self.template.render(
            task=task,
            label=label,
            label_description=task.labels.get(label, ""),
            example={n: _cut(str(example.fields[n]), cut) for n in task.content_fields},
            given={n: example.fields[n] for n in self.config.given},
            fields={n: task.fields[n] for n in self.written},
        )
        fields = {n: example.fields[n] for n in task.fields if n in example.fields}
        conditioning = {"label": label, "example_id": example.id, "variant": index}
        limits = self.config.temperature, self.config.max_tokens
        return await self.write_like(example, index, messages, fields, conditioning, limits)

    def copies(self, example: Record, record: Record) -> tuple[str, str] | None:
        for name in self.written:
            shown = _cut(str(example.fields[name]), self.config.example_chars)
            share = copied_share(str(record.fields[name]), shown)
            if share > self.config.max_copied:
                return "near_copy", f"{share:.0%} of the {name} follows the example's word order"
            for given in self.config.given:
                score = rouge_l(str(record.fields[name]), str(example.fields[given]))
                if score > self.config.max_context_similarity:
                    return "copies_context", f"{name} is ROUGE-L {score:.2f} with the {given}"
        return None


def copied_share(candidate: str, reference: str) -> float:
    """The share of ``candidate``'s words that are a common subsequence with ``reference`` (the
    LCS over the candidate's length). Unlike ROUGE-L F1 it does not fall when the reference is
    long: a record that copies the first lines of a long review scores 1.0, not 0.2.
    """
    tokens = rouge_tokens(candidate)
    if not tokens:
        return 0.0
    return lcs_length(tokens, rouge_tokens(reference)) / len(tokens)


def _cut(text: str, limit: int) -> str:
    """``text`` cut at a word boundary near ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[:limit].rsplit(" ", 1)[0]
    return f"{head} ..."
