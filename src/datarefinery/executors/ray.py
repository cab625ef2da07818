"""The Ray executor: the same shards, processed by worker actors on a Ray cluster.

What stays on the driver (this process) is what makes a run reproducible and resumable: cutting the
input into shards, the stateful part of steps (``restore`` / ``postprocess``, e.g. exact-duplicate
rejection), and the commit of every shard in shard order into the run directory. That is the step
loop of ``executors.base``, the same for every executor; this one only opens the cluster, sends
each shard to the least busy worker actor (``process_shard``) and closes the cluster.

- **Workers** (``ShardWorker``) are started once per run and live until it ends, so an embedded
  model is loaded once per actor, not once per shard or step. A worker builds the pipeline from the
  spec and sets a step up the first time it gets one of its shards. A worker that dies is restarted
  and its shard retried (shards are deterministic and calls are cached, so a retry is harmless).
- **One coordinator actor** on the driver's node hosts the run's admission control (the token /
  cost budget, the request and token rate limits) and its response cache (``OUT/cache.sqlite``,
  the same file the local executor uses). Every engine, the workers' and the driver's, is built
  with proxies to those two (``CoordinatorAdmission``, ``CoordinatorCache``), so the limits hold
  for the whole cluster and a rerun, on Ray or locally, answers from the same cache.
- ``llm.concurrency`` bounds the calls in flight per worker; rate limits and the budget are global.

Only this module imports ``ray`` (``pip install 'datarefinery[ray]'``). The run directory and the
spec's files must be reachable where the driver runs; workers receive records, not paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

from datarefinery.config import LoadedSpec
from datarefinery.errors import (
    BudgetExceededError,
    DatarefineryError,
    MissingDependencyError,
    UsageError,
)
from datarefinery.executors.base import EngineParts, Executor
from datarefinery.executors.failures import Failure, describe_failure, rebuild_failure
from datarefinery.executors.shards import ShardOutput
from datarefinery.llm.base import Backend, Response, Usage
from datarefinery.llm.cache import ResponseStore
from datarefinery.llm.engine import Engine, EngineStats
from datarefinery.llm.factory import make_engine
from datarefinery.llm.limits import Admission, AdmissionControl, Spending
from datarefinery.llm.pool import EnginePool
from datarefinery.pipeline import Pipeline
from datarefinery.records import Record
from datarefinery.steps.base import Output, Step, StepContext

try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("the Ray executor (--executor ray)", "ray") from exc


class Coordinator:
    """Hosts the cluster's one admission control and response cache (a Ray actor, async
    methods); both arrive pickled from the driver.
    """

    def __init__(self, cache: ResponseStore | None, admission: AdmissionControl) -> None:
        self.cache = cache
        self.admission = admission

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission | str:
        # The refusal travels as its message: the worker raises it there, in the step's code path.
        try:
            return await self.admission.admit(prompt_tokens, max_new_tokens)
        except BudgetExceededError as exc:
            return str(exc)

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        await self.admission.release(admission, usage)

    async def spending(self) -> Spending:
        return await self.admission.spending()

    async def lookup(self, key: str) -> Response | None:
        return await self.cache.lookup(key) if self.cache is not None else None

    async def store(self, key: str, response: Response) -> None:
        if self.cache is not None:
            await self.cache.store(key, response)


class CoordinatorAdmission:
    """An engine's admission control that asks the coordinator (``AdmissionControl``)."""

    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission:
        answer = await self.coordinator.admit.remote(prompt_tokens, max_new_tokens)
        if isinstance(answer, str):
            raise BudgetExceededError(answer)
        assert isinstance(answer, Admission)
        return answer

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        # Awaited, so the spending the driver reads after a shard includes that shard's calls.
        await self.coordinator.release.remote(admission, usage)

    async def spending(self) -> Spending:
        spent: Spending = await self.coordinator.spending.remote()
        return spent


class CoordinatorCache:
    """An engine's response store that asks the coordinator (``ResponseStore``)."""

    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator

    async def lookup(self, key: str) -> Response | None:
        found: Response | None = await self.coordinator.lookup.remote(key)
        return found

    async def store(self, key: str, response: Response) -> None:
        await self.coordinator.store.remote(key, response)

    def close(self) -> None:
        """Nothing to close here: the coordinator holds the cache."""


@dataclass
class ShardResult:
    """A worker's answer for one shard; ``failure`` describes a datarefinery error."""

    outputs: list[Output]
    seconds: float
    stats: EngineStats | None
    failure: Failure | None = None


class ShardWorker:
    """A Ray actor that processes shards of any step of one run."""

    def __init__(
        self,
        loaded: LoadedSpec,
        backend: Backend | None,
        coordinator: str | None,
        shared_cache: bool,
        log_level: int,
    ) -> None:
        """``coordinator`` is the name of the coordinator actor (a name, not a handle, so that a
        restarted worker finds it again).
        """
        logging.getLogger("datarefinery").setLevel(log_level)
        self.pipeline = Pipeline.from_spec(loaded)
        self.ready: set[int] = set()
        self.engine: Engine | None = None
        self.pool: EnginePool | None = None
        if backend is not None and coordinator is not None:
            handle = ray.get_actor(coordinator)
            cache = CoordinatorCache(handle) if shared_cache else None
            admission = CoordinatorAdmission(handle)
            self.engine = make_engine(loaded.spec.llm, backend, cache, admission)
            self.pool = EnginePool(cache, admission)

    def _take_stats(self) -> EngineStats | None:
        if self.engine is None:
            return None
        taken, self.engine.stats = self.engine.stats, EngineStats()
        if self.pool is not None:
            taken.add(self.pool.take_stats())
        return taken

    async def process(self, ctx: StepContext, batch: list[Record]) -> ShardResult:
        step = self.pipeline.steps[ctx.index]
        started = time.perf_counter()
        try:
            if ctx.index not in self.ready:
                step.setup(replace(ctx, engine=self.engine, engines=self.pool, on_record=None))
                self.ready.add(ctx.index)
            outputs = await step.process(batch)
        except DatarefineryError as exc:
            return ShardResult([], 0.0, self._take_stats(), describe_failure(exc))
        return ShardResult(outputs, time.perf_counter() - started, self._take_stats())

    def take_stats(self) -> EngineStats | None:
        """Counters not yet reported with a shard (those of shards stopped mid-way)."""
        return self._take_stats()


class RayExecutor(Executor):
    """Runs each shard on a Ray worker actor; commits on the driver, in order.

    ``address`` is passed to ``ray.init`` (``None``: join the cluster this process already
    initialised, else start a local one; ``"auto"``: the running cluster on this node).
    ``workers`` defaults to as many as the cluster's CPUs hold, one CPU each (an embedded model
    takes ``llm.n_threads`` CPUs). ``shards_per_worker`` are sent ahead so no worker idles while
    the driver commits.
    """

    name = "ray"
    progress_per_record = False

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        shards_per_worker: int = 2,
    ) -> None:
        if workers is not None and workers < 1:
            raise UsageError("the Ray executor needs at least one worker")
        self.address = address
        self.workers = workers
        self.shards_per_worker = max(1, shards_per_worker)
        self._started_ray = False
        self._coordinator: Any = None
        self._pool: list[Any] = []
        self._busy: list[int] = []
        self._running: set[Any] = set()
        # Counters of failed shards, reported with the rest when the run closes.
        self._unreported: EngineStats | None = None

    async def open(self, loaded: LoadedSpec, parts: EngineParts | None) -> EngineParts | None:
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
            self._started_ray = True
        name = None
        if parts is not None:
            here = ray.get_runtime_context().get_node_id()
            name = f"datarefinery-coordinator-{uuid.uuid4().hex}"
            coordinator = ray.remote(Coordinator).options(
                name=name,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            )
            # The coordinator gets the cache and admission themselves (the cache pickles as its
            # path); the driver keeps proxies, like every worker.
            self._coordinator = coordinator.remote(parts.cache, parts.admission)
            if parts.cache is not None:
                parts.cache.close()
            parts = EngineParts(
                parts.backend,
                CoordinatorCache(self._coordinator) if parts.cache is not None else None,
                CoordinatorAdmission(self._coordinator),
            )
        cpus = _cpus_per_worker(parts.backend if parts else None)
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        total = float(resources.get("CPU", 1.0))
        count = self.workers or max(1, int(total // cpus))
        worker = ray.remote(ShardWorker).options(
            num_cpus=min(cpus, total / count),
            max_concurrency=self.shards_per_worker,
            max_restarts=2,
            max_task_retries=2,
        )
        level = logging.getLogger("datarefinery").getEffectiveLevel()
        self._pool = [
            worker.remote(
                loaded,
                parts.backend if parts else None,
                name,
                parts is not None and parts.cache is not None,
                level,
            )
            for _ in range(count)
        ]
        self._busy = [0] * count
        return parts

    def shards_at_once(self, step: Step[Any]) -> int:
        return len(self._pool) * self.shards_per_worker

    async def process_shard(self, step: Step[Any], batch: list[Record]) -> ShardOutput:
        index = min(range(len(self._pool)), key=self._busy.__getitem__)
        self._busy[index] += 1
        # The driver's context holds the driver's engine and progress callback; the worker
        # supplies its own engine and reports progress per shard.
        ctx = replace(step.ctx, engine=None, engines=None, on_record=None)
        ref = self._pool[index].process.remote(ctx, batch)
        self._running.add(ref)
        try:
            result: ShardResult = await ref
        except asyncio.CancelledError:
            # Stop the shard on its worker too, or it would go on spending; let the
            # cancellation land before the run reads what was spent.
            ray.cancel(ref)
            await asyncio.to_thread(ray.wait, [ref], num_returns=1, timeout=10)
            raise
        finally:
            self._busy[index] -= 1
            self._running.discard(ref)
        if result.failure is not None:
            self._keep_unreported(result.stats)
            raise rebuild_failure(*result.failure)
        return ShardOutput(result.outputs, result.seconds, result.stats)

    def _keep_unreported(self, stats: EngineStats | None) -> None:
        if stats is None:
            return
        if self._unreported is None:
            self._unreported = EngineStats()
        self._unreported.add(stats)

    async def close(self) -> EngineStats | None:
        # Killing is safe: every answered call is already in the cache, every finished shard is
        # committed, and the next run recomputes the rest. Shards still running are cancelled
        # first (or Ray would retry them on a restarted worker) and their counters collected.
        running, self._running = list(self._running), set()
        for ref in running:
            ray.cancel(ref)
        if running:
            # Let the cancellations land before the kill, or Ray reports (and would retry) them.
            await asyncio.to_thread(ray.wait, running, num_returns=len(running), timeout=10)
        if self._coordinator is not None and self._pool:
            pending = [worker.take_stats.remote() for worker in self._pool]
            ready, _ = await asyncio.to_thread(
                ray.wait, pending, num_returns=len(pending), timeout=10
            )
            for stats in ray.get(ready):
                self._keep_unreported(stats)
        for actor in self._pool:
            ray.kill(actor)
        self._pool = []
        if self._coordinator is not None:
            ray.kill(self._coordinator)
            self._coordinator = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False
        unreported, self._unreported = self._unreported, None
        return unreported


def _cpus_per_worker(backend: Backend | None) -> float:
    threads = getattr(backend, "n_threads", None)
    return float(threads) if isinstance(threads, int) and threads > 0 else 1.0
