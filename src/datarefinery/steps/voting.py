"""Asking the model for a record's label, k times, and taking the majority (self-consistency).

Shared by the ``label`` step (labeling unlabeled records), the ``verify_k`` check of the rewriting
augmentations and curation's LLM consistency check (re-labeling generated records). The reply
model is an enum of the task's labels, so a constrained backend cannot answer anything else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, create_model

from datarefinery.config import TaskSpec
from datarefinery.errors import ConfigError
from datarefinery.llm.base import Request, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.prompts.render import PromptTemplate
from datarefinery.records import Record
from datarefinery.steps.base import gather_or_cancel


def label_reply_model(labels: list[str]) -> type[BaseModel]:
    """``{"label": one of labels}`` as a pydantic model whose schema has an ``enum``."""
    if not labels:
        raise ConfigError("labeling needs the task's labels")
    choices = Enum("LabelChoice", {f"l{i}": label for i, label in enumerate(labels)})  # type: ignore[misc]
    model: type[BaseModel] = create_model("LabelReply", label=(choices, ...))
    return model


@dataclass(frozen=True)
class Vote:
    """The majority label of ``samples`` answers; ``agreement`` is its share of the valid answers
    (0.0 and ``label=None`` when no answer was valid). ``failures`` counts unusable replies.
    """

    label: str | None
    agreement: float
    votes: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    failures: int = 0


async def vote(
    engine: Engine,
    template: PromptTemplate,
    task: TaskSpec,
    record: Record,
    *,
    input_fields: list[str],
    k: int,
    params: SamplingParams,
    seeds: list[int],
) -> Vote:
    """Ask ``k`` times (one seed each) and return the majority; ties go to the label listed first
    in the task, so the result is deterministic.
    """
    if len(seeds) != k:
        raise ValueError("one seed per sample")
    labels = list(task.labels)
    model = label_reply_model(labels)
    inputs = {name: record.fields.get(name, "") for name in input_fields}
    messages = template.render(task=task, inputs=inputs)
    requests = [
        Request(messages=messages, params=params, json_schema=model.model_json_schema(), seed=seed)
        for seed in seeds
    ]
    results = await gather_or_cancel(*(engine.complete_structured(r, model) for r in requests))
    answers: list[str] = []
    for result in results:
        if result.value is not None:
            choice: Any = result.value.label  # type: ignore[attr-defined]
            answers.append(str(choice.value))
    counts = Counter(answers)
    if not counts:
        return Vote(None, 0.0, {}, k, k)
    best = max(labels, key=lambda label: (counts.get(label, 0), -labels.index(label)))
    return Vote(
        label=best,
        agreement=counts[best] / len(answers),
        votes=dict(counts),
        samples=k,
        failures=k - len(answers),
    )
