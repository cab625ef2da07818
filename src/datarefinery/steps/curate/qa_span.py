"""``qa_span``: keep an extractive QA record only when its answer is a span of its context, word
for word (case, punctuation and spacing included; only whitespace around the answer is trimmed).

A span model is trained on where the answer sits in the context; an answer the generator
paraphrased ("in 1838." for "1838", "Eldon square") has no place there, so it is rejected
(``answer_not_in_context``), not repaired. ``conditioned``'s ``must_occur_in`` check is looser (it
compares normalized text), so a QA synthesis puts this step after it.
"""

from __future__ import annotations

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, RecordStep, StepConfig


class QASpanConfig(StepConfig):
    context: str = Field(default="context", description="the field holding the passage")
    answer: str = Field(default="answer", description="the field that must be a span of it")


class QASpan(RecordStep[QASpanConfig]):
    name = "qa_span"
    Config = QASpanConfig

    def reads(self, task: TaskSpec | None) -> set[str]:
        return {self.config.context, self.config.answer}

    def apply(self, record: Record) -> Output:
        answer = record.fields.get(self.config.answer)
        context = record.fields.get(self.config.context)
        if not isinstance(answer, str) or not isinstance(context, str) or not answer.strip():
            return Rejected(
                record, self.ctx.name, "answer_not_in_context", "no answer text or no context"
            )
        trimmed = answer.strip()
        if trimmed not in context:
            return Rejected(
                record,
                self.ctx.name,
                "answer_not_in_context",
                f"{self.config.answer} {trimmed!r} is not a span of the {self.config.context}",
            )
        if trimmed == answer:
            return record
        fields = {**record.fields, self.config.answer: trimmed}
        return Record(record.id, fields, record.provenance, dict(record.scores))
