"""The local executor: asyncio on one machine, shard by shard, resumable (the step loop, resume
and ordered commit are ``executors.base``).

Steps that call a model run in this process: their calls overlap (the engine bounds them), and
``shards_in_flight`` of their shards are processed at once. CPU-bound steps (``Step.cpu_bound``)
run on ``workers`` processes (``executors.workers``; default one per core, ``executor: {workers:
N}`` in the spec), several shards at once, committed here in shard order like any other step.
With one worker, or when a step's input fits in one shard, the step runs in this process.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from datarefinery.errors import UsageError
from datarefinery.executors.base import EngineParts, Executor
from datarefinery.executors.progress import ProgressSink
from datarefinery.executors.shards import ShardOutput
from datarefinery.executors.workers import WorkerPool, available_cores
from datarefinery.llm.engine import EngineStats
from datarefinery.manifest import StepSummary
from datarefinery.records import Record
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Step, StepContext

if TYPE_CHECKING:
    from datarefinery.config import LoadedSpec


class LocalExecutor(Executor):
    """Runs steps on this machine. ``shards_in_flight`` bounds how many shards of an LLM step are
    being processed at once (LLM concurrency itself is bounded by the engine). ``workers``
    processes run CPU-bound steps (``None``: the spec's ``executor.workers``, else one per core;
    1: every step runs in this process, one shard at a time).
    """

    name = "local"

    def __init__(self, shards_in_flight: int = 2, *, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise UsageError(
                f"the local executor needs at least one worker, got workers={workers}: "
                "1 runs every step in the run's own process"
            )
        self.shards_in_flight = max(1, shards_in_flight)
        self.workers = workers
        self._count = workers or 1
        self._pool: WorkerPool | None = None
        # Steps this process has only bound (their workers set them up), with their contexts:
        # one that ends up running here after all is set up when its first shard comes.
        self._deferred: dict[int, StepContext] = {}
        # Steps whose shards go to the workers in this run (by id: steps are not hashable).
        self._pooled: set[int] = set()

    async def open(self, loaded: LoadedSpec, parts: EngineParts | None) -> EngineParts | None:
        self._count = self.workers or loaded.spec.executor.workers or available_cores()
        self._deferred.clear()
        self._pooled.clear()
        return parts

    def _may_pool(self, step: Step[Any]) -> bool:
        # uses_llm is checked too: a step may set it per instance (code_anonymize's model pass).
        return (
            self._count > 1
            and step.cpu_bound
            and not step.uses_llm
            and not step.needs_whole_input()
        )

    def setup_step(self, step: Step[Any], ctx: StepContext) -> None:
        # This process needs the step set up only for what it does besides processing: planning
        # (source steps), gates, and stateful postprocessing.
        if self._may_pool(step) and not (step.is_source or step.gated or step.stateful):
            step.bind(ctx)
            self._deferred[id(step)] = ctx
        else:
            step.setup(ctx)

    def shards_at_once(self, step: Step[Any]) -> int:
        if id(step) in self._pooled:
            return 2 * self._count  # one queued behind each running shard: no worker idles
        return self.shards_in_flight if step.uses_llm else 1

    async def run_step(
        self,
        step: Step[Any],
        step_dir: StepDir,
        source: Iterable[Record],
        *,
        shard_size: int,
        progress: ProgressSink,
        on_commit: Callable[[], Awaitable[None]] | None = None,
        counters: EngineStats | None = None,
    ) -> StepSummary:
        self._pooled.discard(id(step))
        if self._may_pool(step):
            # Starting workers (each loads what the step needs) only pays for two shards or more.
            iterator = iter(source)
            head = list(islice(iterator, shard_size + 1))
            if len(head) > shard_size:
                self._pooled.add(id(step))
            source = chain(head, iterator)
        return await super().run_step(
            step,
            step_dir,
            source,
            shard_size=shard_size,
            progress=progress,
            on_commit=on_commit,
            counters=counters,
        )

    async def process_shard(self, step: Step[Any], batch: list[Record]) -> ShardOutput:
        if id(step) in self._pooled:
            if self._pool is None:
                self._pool = WorkerPool(self._count)
            return await self._pool.process(step, batch)
        ctx = self._deferred.pop(id(step), None)
        if ctx is not None:
            step.setup(ctx)
        started = time.perf_counter()
        outputs = await step.process(batch)
        return ShardOutput(outputs, time.perf_counter() - started)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
