import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from datarefinery.config import LLMConfig
from datarefinery.executors.local import LocalExecutor, NullProgress
from datarefinery.records import Record, Rejected
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Output, Step, StepConfig, StepContext


class Shuffled(Step[StepConfig]):
    """Finishes shards in random order; tags each record with the order it was committed in."""

    name = "shuffled"
    Config = StepConfig
    uses_llm = True  # lets the executor run several shards at once
    stateful = True

    def __init__(self) -> None:
        super().__init__(StepConfig())
        self.committed: list[str] = []

    async def process(self, batch: list[Record]) -> list[Output]:
        await asyncio.sleep(random.random() / 50)
        return list(batch)

    def postprocess(self, outputs: list[Output]) -> list[Output]:
        self.committed.extend(o.id for o in outputs if isinstance(o, Record))
        return outputs


class Dropper(Step[StepConfig]):
    name = "dropper"
    Config = StepConfig

    async def process(self, batch: list[Record]) -> list[Output]:
        return batch[1:]


def records(n: int) -> list[Record]:
    return [Record(id=f"r{i:03d}", fields={"text": str(i)}) for i in range(n)]


def setup(step: Step[Any]) -> Step[Any]:
    step.setup(StepContext(name=step.name, index=0, seed=0, task=None, llm=LLMConfig()))
    return step


def test_shards_commit_in_order_whatever_order_they_finish(tmp_path: Path) -> None:
    step = setup(Shuffled())
    step_dir = StepDir(tmp_path)
    summary = asyncio.run(
        LocalExecutor(shards_in_flight=4).run_step(
            step, step_dir, records(40), shard_size=3, progress=NullProgress()
        )
    )
    assert step.committed == [r.id for r in records(40)]
    assert summary.shards == 14 and summary.records_out == 40
    assert [r.id for r in step_dir.all_records()] == step.committed


def test_a_step_that_drops_records_silently_is_caught(tmp_path: Path) -> None:
    step = setup(Dropper(StepConfig()))
    with pytest.raises(RuntimeError, match="dropped 1 record"):
        asyncio.run(
            LocalExecutor().run_step(
                step, StepDir(tmp_path), records(4), shard_size=2, progress=NullProgress()
            )
        )


def test_rejections_count_as_accounted(tmp_path: Path) -> None:
    class Rejecting(Step[StepConfig]):
        name = "rejecting"
        Config = StepConfig

        async def process(self, batch: list[Record]) -> list[Output]:
            return [Rejected(r, "rejecting", "too_short") for r in batch]

    summary = asyncio.run(
        LocalExecutor().run_step(
            setup(Rejecting(StepConfig())),
            StepDir(tmp_path),
            records(5),
            shard_size=2,
            progress=NullProgress(),
        )
    )
    assert summary.records_out == 0 and summary.rejected == {"too_short": 5}
