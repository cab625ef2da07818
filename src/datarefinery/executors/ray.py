"""The Ray executor: the same shards, processed by worker actors on a Ray cluster.

What stays on the driver (this process) is what makes a run reproducible and resumable: cutting the
input into shards, the stateful part of steps (``restore`` / ``postprocess``, e.g. exact-duplicate
rejection), and the commit of every shard in shard order into the run directory. That is the
local executor's code, unchanged; only ``process_shard`` differs: a shard is sent to the least busy
worker actor and its outputs come back.

- **Workers** (``ShardWorker``) are started once per run and live until it ends, so an embedded
  model is loaded once per actor, not once per shard or step. A worker builds the pipeline from the
  spec and sets a step up the first time it gets one of its shards. A worker that dies is restarted
  and its shard retried (shards are deterministic and calls are cached, so a retry is harmless).
- **One coordinator actor** on the driver's node owns the token / cost budget, the request and
  token rate limits and the response cache (``OUT/cache.sqlite``, the same file the local executor
  uses). Every worker's engine asks it before and after each model call, so the limits hold for the
  whole cluster and a rerun, on Ray or locally, answers from the same cache.
- ``llm.concurrency`` bounds the calls in flight per worker; rate limits and the budget are global.

Only this module imports ``ray`` (``pip install 'datarefinery[ray]'``). The run directory and the
spec's files must be reachable where the driver runs; workers receive records, not paths.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from datarefinery.config import LoadedSpec
from datarefinery.errors import (
    BackendError,
    BudgetExceededError,
    DatarefineryError,
    MissingDependencyError,
    UsageError,
)
from datarefinery.executors.local import LocalExecutor, ProgressSink, StepSummary
from datarefinery.llm.base import Backend, Response, Usage
from datarefinery.llm.cache import ResponseCache
from datarefinery.llm.engine import Engine, EngineStats
from datarefinery.llm.factory import make_engine
from datarefinery.llm.limits import Admission, Budget, Limits
from datarefinery.pipeline import Pipeline
from datarefinery.records import Record
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Output, Step, StepContext

try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("the Ray executor (--executor ray)", "ray") from exc


class Coordinator:
    """The cluster's one budget, rate limits and response cache (a Ray actor, async methods)."""

    def __init__(
        self,
        budget: Budget,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        cache_path: Path | None,
    ) -> None:
        self.limits = Limits(
            budget, requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        self.cache = ResponseCache(cache_path) if cache_path is not None else None

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission | str:
        # The refusal travels as its message: the worker raises it there, in the step's code path.
        try:
            return await self.limits.admit(prompt_tokens, max_new_tokens)
        except BudgetExceededError as exc:
            return str(exc)

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        self.limits.release(admission, usage)

    async def lookup(self, key: str) -> Response | None:
        return self.cache.get(key) if self.cache is not None else None

    async def store(self, key: str, response: Response) -> None:
        if self.cache is not None:
            self.cache.put(key, response)

    async def spent(self) -> Usage:
        return self.limits.budget.spent


class ClusterEngine(Engine):
    """A worker's engine: retries, re-asks and concurrency here; cache, budget and rate limits
    in the coordinator."""

    coordinator: Any = None
    shared_cache = False

    @property
    def caching(self) -> bool:
        return self.shared_cache

    async def _lookup(self, key: str) -> Response | None:
        found: Response | None = await self.coordinator.lookup.remote(key)
        return found

    async def _store(self, key: str, response: Response) -> None:
        await self.coordinator.store.remote(key, response)

    async def _admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission:
        answer = await self.coordinator.admit.remote(prompt_tokens, max_new_tokens)
        if isinstance(answer, str):
            raise BudgetExceededError(answer)
        assert isinstance(answer, Admission)
        return answer

    async def _release(self, admission: Admission, usage: Usage | None) -> None:
        # Awaited, so the spent total the driver reads after a shard includes that shard's calls.
        await self.coordinator.release.remote(admission, usage)


@dataclass
class ShardResult:
    """A worker's answer for one shard. ``failure`` is (kind, message, HTTP status) of a
    datarefinery error, rebuilt on the driver (exception objects do not all survive pickling)."""

    outputs: list[Output]
    seconds: float
    stats: EngineStats | None
    failure: tuple[str, str, int | None] | None = None


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
        restarted worker finds it again)."""
        logging.getLogger("datarefinery").setLevel(log_level)
        self.pipeline = Pipeline.from_spec(loaded)
        self.ready: set[int] = set()
        self.engine: Engine | None = None
        if backend is not None:
            # Cache, budget and rate limits are the coordinator's; none of them is opened here.
            config = loaded.spec.llm.model_copy(update={"cache": False})
            engine = make_engine(config, backend=backend, engine_class=ClusterEngine)
            assert isinstance(engine, ClusterEngine)
            engine.coordinator = ray.get_actor(coordinator) if coordinator else None
            engine.shared_cache = shared_cache
            self.engine = engine

    def _take_stats(self) -> EngineStats | None:
        if self.engine is None:
            return None
        taken, self.engine.stats = self.engine.stats, EngineStats()
        return taken

    async def process(self, ctx: StepContext, batch: list[Record]) -> ShardResult:
        step = self.pipeline.steps[ctx.index]
        started = time.perf_counter()
        try:
            if ctx.index not in self.ready:
                step.setup(replace(ctx, engine=self.engine, on_record=None))
                self.ready.add(ctx.index)
            outputs = await step.process(batch)
        except DatarefineryError as exc:
            kind = (
                "budget"
                if isinstance(exc, BudgetExceededError)
                else "backend"
                if isinstance(exc, BackendError)
                else "usage"
            )
            status = exc.status if isinstance(exc, BackendError) else None
            return ShardResult([], 0.0, self._take_stats(), (kind, str(exc), status))
        return ShardResult(outputs, time.perf_counter() - started, self._take_stats())

    def take_stats(self) -> EngineStats | None:
        """Counters not yet reported with a shard (those of shards stopped mid-way)."""
        return self._take_stats()


def _rebuild(kind: str, message: str, status: int | None) -> DatarefineryError:
    if kind == "budget":
        return BudgetExceededError(message)
    if kind == "backend":
        return BackendError(message, status=status)
    return UsageError(message)


def merge_stats(into: EngineStats, delta: EngineStats) -> None:
    """Add a worker's counters to the driver's (in place: the progress bar holds ``into``)."""
    for item in fields(EngineStats):
        setattr(into, item.name, getattr(into, item.name) + getattr(delta, item.name))


class RayExecutor(LocalExecutor):
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
        super().__init__()
        if workers is not None and workers < 1:
            raise UsageError("the Ray executor needs at least one worker")
        self.address = address
        self.workers = workers
        self.shards_per_worker = max(1, shards_per_worker)
        self._started_ray = False
        self._engine: Engine | None = None
        self._coordinator: Any = None
        self._coordinator_name: str | None = None
        self._pool: list[Any] = []
        self._busy: list[int] = []
        self._running: set[Any] = set()

    async def open(self, loaded: LoadedSpec, engine: Engine | None) -> None:
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
            self._started_ray = True
        self._engine = engine
        if engine is not None:
            here = ray.get_runtime_context().get_node_id()
            self._coordinator_name = f"datarefinery-coordinator-{uuid.uuid4().hex}"
            coordinator = ray.remote(Coordinator).options(
                name=self._coordinator_name,
                num_cpus=0,
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
            )
            self._coordinator = coordinator.remote(
                engine.budget,
                loaded.spec.llm.requests_per_minute,
                loaded.spec.llm.tokens_per_minute,
                engine.cache.path if engine.cache is not None else None,
            )
        cpus = _cpus_per_worker(engine)
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
                engine.backend if engine is not None else None,
                self._coordinator_name,
                engine is not None and engine.caching,
                level,
            )
            for _ in range(count)
        ]
        self._busy = [0] * count

    def shards_at_once(self, step: Step[Any]) -> int:
        return len(self._pool) * self.shards_per_worker

    async def process_shard(
        self, step: Step[Any], batch: list[Record]
    ) -> tuple[list[Output], float]:
        index = min(range(len(self._pool)), key=self._busy.__getitem__)
        self._busy[index] += 1
        # The driver's context holds the driver's engine and progress callback; the worker
        # supplies its own engine and reports progress per shard.
        ctx = replace(step.ctx, engine=None, on_record=None)
        ref = self._pool[index].process.remote(ctx, batch)
        self._running.add(ref)
        try:
            result: ShardResult = await ref
        finally:
            self._busy[index] -= 1
            self._running.discard(ref)
        if self._engine is not None:
            if result.stats is not None:
                merge_stats(self._engine.stats, result.stats)
            self._engine.budget.spent = await self._coordinator.spent.remote()
        if result.failure is not None:
            raise _rebuild(*result.failure)
        return result.outputs, result.seconds

    async def run_step(
        self,
        step: Step[Any],
        step_dir: StepDir,
        source: Iterable[Record],
        *,
        shard_size: int,
        progress: ProgressSink,
        on_commit: Callable[[], None] | None = None,
    ) -> StepSummary:
        try:
            return await super().run_step(
                step,
                step_dir,
                source,
                shard_size=shard_size,
                progress=progress,
                on_commit=on_commit,
            )
        except BaseException:
            # Shards still running on workers would go on spending: stop them first, so the spent
            # total the manifest keeps (and a resumed run's budget starts from) is final.
            await self._stop_workers()
            if self._engine is not None and self._coordinator is not None:
                self._engine.budget.spent = await self._coordinator.spent.remote()
            raise

    async def _stop_workers(self) -> None:
        # Killing is safe: every answered call is already in the cache, every finished shard is
        # committed, and the next run recomputes the rest. Shards still running are cancelled
        # first (or Ray would retry them on a restarted worker) and their counters collected.
        running, self._running = list(self._running), set()
        for ref in running:
            ray.cancel(ref)
        if running:
            # Let the cancellations land before the kill, or Ray reports (and would retry) them.
            await asyncio.to_thread(ray.wait, running, num_returns=len(running), timeout=10)
        if self._engine is not None and self._pool:
            pending = [worker.take_stats.remote() for worker in self._pool]
            ready, _ = await asyncio.to_thread(
                ray.wait, pending, num_returns=len(pending), timeout=10
            )
            for stats in ray.get(ready):
                if stats is not None:
                    merge_stats(self._engine.stats, stats)
        for actor in self._pool:
            ray.kill(actor)
        self._pool = []

    async def close(self) -> None:
        await self._stop_workers()
        if self._coordinator is not None:
            ray.kill(self._coordinator)
            self._coordinator = None
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def _cpus_per_worker(engine: Engine | None) -> float:
    threads = getattr(engine.backend, "n_threads", None) if engine is not None else None
    return float(threads) if isinstance(threads, int) and threads > 0 else 1.0
