"""Running a step on records outside a run (set-up, process, postprocess) for unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

from datarefinery.config import LlamaCppConfig, TaskSpec
from datarefinery.llm.engine import Engine
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, Step, StepContext

SENTIMENT = TaskSpec.model_validate(
    {
        "description": "Sentiment of movie reviews.",
        "labels": {"positive": "liked it", "negative": "disliked it"},
    }
)


def records(*texts: str, label: str = "positive") -> list[Record]:
    return [Record(id=f"r{i}", fields={"text": t, "label": label}) for i, t in enumerate(texts)]


def run_step(
    step: Step[Any],
    batch: list[Record],
    *,
    task: TaskSpec | None = SENTIMENT,
    engine: Engine | None = None,
    shards: int = 1,
) -> list[Output]:
    """Process ``batch`` in ``shards`` consecutive shards, committing each in order."""
    step.setup(
        StepContext(name=step.name, index=0, seed=7, task=task, llm=LlamaCppConfig(), engine=engine)
    )
    size = max(1, -(-len(batch) // shards))
    outputs: list[Output] = []
    for start in range(0, len(batch), size):
        outputs.extend(step.postprocess(asyncio.run(step.process(batch[start : start + size]))))
    return outputs


def kept(outputs: list[Output]) -> list[Record]:
    return [o for o in outputs if isinstance(o, Record)]


def rejected(outputs: list[Output]) -> list[Rejected]:
    return [o for o in outputs if isinstance(o, Rejected)]
