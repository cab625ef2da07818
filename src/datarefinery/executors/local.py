"""The local executor: asyncio on one machine, shard by shard, resumable (the step loop, resume
and ordered commit are ``executors.base``).
"""

from __future__ import annotations

import time
from typing import Any

from datarefinery.executors.base import Executor
from datarefinery.executors.shards import ShardOutput
from datarefinery.records import Record
from datarefinery.steps.base import Step


class LocalExecutor(Executor):
    """Runs steps on this machine. ``shards_in_flight`` bounds how many shards of an LLM step are
    being processed at once (LLM concurrency itself is bounded by the engine); other steps run
    one shard at a time.
    """

    name = "local"

    def __init__(self, shards_in_flight: int = 2) -> None:
        self.shards_in_flight = max(1, shards_in_flight)

    def shards_at_once(self, step: Step[Any]) -> int:
        return self.shards_in_flight if step.uses_llm else 1

    async def process_shard(self, step: Step[Any], batch: list[Record]) -> ShardOutput:
        started = time.perf_counter()
        outputs = await step.process(batch)
        return ShardOutput(outputs, time.perf_counter() - started)
