"""``qa_span``: an answer must be a verbatim span of its context."""

from __future__ import annotations

import asyncio

from datarefinery.config import LlamaCppConfig, TaskSpec
from datarefinery.loop.qa import QA_TASK
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepContext
from datarefinery.steps.curate.qa_span import QASpan, QASpanConfig

CONTEXT = "Bainbridge's store opened in 1838 in Newcastle."


def check(answer: str) -> Record | Rejected:
    step = QASpan(QASpanConfig())
    task = TaskSpec.model_validate(QA_TASK)
    step.setup(StepContext(name="qa_span", index=0, seed=0, task=task, llm=LlamaCppConfig()))
    fields = {"context": CONTEXT, "question": "When did it open?", "answer": answer}
    (out,) = asyncio.run(step.process([Record(id="r", fields=fields)]))
    return out


def test_a_verbatim_span_passes_and_only_surrounding_space_is_trimmed() -> None:
    out = check("1838")
    assert isinstance(out, Record) and out.fields["answer"] == "1838"
    out = check("  in 1838 ")
    assert isinstance(out, Record) and out.fields["answer"] == "in 1838"


def test_anything_but_a_verbatim_span_is_rejected_with_the_reason() -> None:
    for answer in ("1838.", "In 1838", "the year 1838", "newcastle", "", "   "):
        out = check(answer)
        assert isinstance(out, Rejected), answer
        assert out.reason == "answer_not_in_context"
    out = check("1838.")
    assert isinstance(out, Rejected) and "'1838.' is not a span of the context" in out.detail
