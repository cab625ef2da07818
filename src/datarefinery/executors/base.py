"""The executor contract, and the step loop every executor shares.

An executor runs a pipeline over a run directory. What is the same for every executor lives here:
each step's context, resume (a shard the step directory holds as committed is never redone),
chaining (a step reads what the step before it committed), shard order, progress, and the
manifest kept current after every commit. An executor implements only where shards are processed:

- ``open`` once before the first step; it may host the engine's response cache and admission
  elsewhere and return proxies to them (the Ray executor's coordinator),
- ``process_shard`` for one shard of one step, and ``shards_at_once`` to say how many may run,
- ``close`` once when the run ends, however it ends.

Shards are processed several at a time but committed strictly in shard order: a stateful step
(exact-duplicate rejection) sees outputs in the same order on every run, and the committed shards
are always a prefix, which is what a resumed run skips.
"""

from __future__ import annotations

import abc
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from datarefinery.errors import BackendError, BudgetExceededError, WaitingForReview
from datarefinery.executors.gate import pass_gate
from datarefinery.executors.progress import NullProgress, ProgressSink
from datarefinery.executors.shards import (
    ShardOutput,
    chunked,
    commit_shard,
    resume_shard,
    summary_from_markers,
)
from datarefinery.io.read import read_records
from datarefinery.llm.base import Backend, Usage
from datarefinery.llm.cache import ResponseStore
from datarefinery.llm.engine import Engine, EngineStats
from datarefinery.llm.factory import make_backend, make_cache, make_engine, make_limits
from datarefinery.llm.limits import AdmissionControl, Spending
from datarefinery.llm.pool import EnginePool
from datarefinery.manifest import EngineCounts, Manifest, ModelInfo, StepSummary
from datarefinery.records import Record
from datarefinery.rundir import RunDir, StepDir
from datarefinery.steps.base import Step, StepContext
from datarefinery.surrogate_key import SurrogateKey

if TYPE_CHECKING:
    from datarefinery.config import LoadedSpec
    from datarefinery.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class EngineParts:
    """What the run's engine is composed of (see ``Engine``)."""

    backend: Backend
    cache: ResponseStore | None
    admission: AdmissionControl


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How the steps ended: ``complete``, ``stopped`` (budget reached, backend failed) or
    ``waiting_for_review`` (``waiting`` records at a review step) with ``message``; and what the
    run has spent over every session.
    """

    status: str
    message: str
    usage: Usage
    cost_usd: float
    waiting: WaitingForReview | None = None


class Executor(abc.ABC):
    """Runs a pipeline's steps shard by shard into a run directory (see the module docstring)."""

    name: ClassVar[str]
    # LLM steps report progress per record through their context; an executor whose steps run
    # elsewhere reports it per committed shard.
    progress_per_record: ClassVar[bool] = True

    async def open(self, loaded: LoadedSpec, parts: EngineParts | None) -> EngineParts | None:
        """Called once before the first step with the parts of the run's engine (``None`` when
        no step uses a model); returns the parts the run's engine is built from.
        """
        return parts

    def shards_at_once(self, step: Step[Any]) -> int:
        """How many shards of ``step`` may be processed at once."""
        return 1

    def setup_step(self, step: Step[Any], ctx: StepContext) -> None:
        step.setup(ctx)  # an executor whose workers set a step up may only bind it here

    @abc.abstractmethod
    async def process_shard(self, step: Step[Any], batch: list[Record]) -> ShardOutput:
        """One shard's outputs, in the step's order."""

    async def close(self) -> EngineStats | None:
        """Called once when the run ends, however it ends; returns the counters of model calls
        that no ``ShardOutput`` reported (those of shards stopped mid-way), if any.
        """
        return None

    async def run(
        self,
        loaded: LoadedSpec,
        pipeline: Pipeline,
        run_dir: RunDir,
        manifest: Manifest,
        *,
        backend: Backend | None = None,
        progress: ProgressSink | None = None,
        surrogate_key: SurrogateKey | None = None,
    ) -> RunOutcome:
        """Run every step of ``pipeline`` into ``run_dir``, keeping ``manifest`` current (written
        after every commit). ``backend`` replaces the spec's; ``surrogate_key`` says where steps
        read the run's surrogate key (a handle, never the key). Budget and backend failures end
        the run as ``stopped``; anything else is recorded as an interruption and re-raised.
        """
        spec = loaded.spec
        progress = progress or NullProgress()
        parts = None
        if pipeline.uses_llm:
            parts = EngineParts(
                backend or make_backend(spec.llm),
                make_cache(spec.llm, run_dir.cache_path),
                make_limits(spec.llm, Usage(*manifest.usage_spent)),
            )
            manifest.model = ModelInfo(backend=parts.backend.kind, identity=parts.backend.identity)
        manifest.executor = self.name
        books = _Books(manifest, run_dir, parts.admission if parts else None)
        await books.commit()
        status, message, waiting = "complete", "", None
        try:
            parts = await self.open(loaded, parts)
            if parts is not None:
                books.admission = parts.admission
                books.engine = make_engine(spec.llm, parts.backend, parts.cache, parts.admission)
                books.pool = EnginePool(parts.cache, parts.admission)
            progress.bind_engine(books.engine.stats if books.engine else None)
            await self._steps(loaded, pipeline, run_dir, books, progress, surrogate_key)
        except BudgetExceededError as exc:
            status, message = "stopped", str(exc)
        except WaitingForReview as exc:
            status, message, waiting = "waiting_for_review", str(exc), exc
        except BackendError as exc:
            status = "stopped"
            message = (
                f"the model backend failed: {exc}. Finished shards and every answered call are "
                "kept; run the same command again to resume."
            )
        except BaseException:
            await self._stop(books)
            books.save(
                "interrupted", "the run was interrupted; run the same command again to resume"
            )
            raise
        await self._stop(books)
        usage, cost = (books.spent.usage, books.spent.cost_usd) if books.spent else (Usage(), 0.0)
        return RunOutcome(status, message, usage, cost, waiting)

    async def _steps(
        self,
        loaded: LoadedSpec,
        pipeline: Pipeline,
        run_dir: RunDir,
        books: _Books,
        progress: ProgressSink,
        surrogate_key: SurrogateKey | None,
    ) -> None:
        """Each step in turn, over what the step before it committed."""
        spec = loaded.spec
        source: Iterable[Record] | None = None
        for index, step in enumerate(pipeline.steps):
            name = pipeline.names[index]
            self.setup_step(
                step,
                step_context(
                    loaded,
                    name,
                    index,
                    books.engine,
                    books.pool,
                    surrogate_key,
                    on_record=(
                        (lambda kept, rejected: progress.advance(1, kept, rejected))
                        if self.progress_per_record
                        else None
                    ),
                    run_dir=run_dir.path,
                ),
            )
            if source is None:  # after the first step's setup: a source step plans with it
                source = first_source(loaded, pipeline)
            if step.gated:  # before step_dir: the gate may discard and recreate it
                source = pass_gate(step, index, run_dir, pipeline.names, source)
            step_dir = run_dir.step_dir(index, name)
            progress.step_started(name, len(source) if isinstance(source, list) else None)
            summary = await self.run_step(
                step,
                step_dir,
                source,
                shard_size=spec.shard_size,
                progress=progress,
                on_commit=books.commit,
                counters=books.engine.stats if books.engine else None,
            )
            books.manifest.record_step(summary)
            progress.step_finished(name)
            source = step_dir.all_records()

    async def _stop(self, books: _Books) -> None:
        """Close the executor and the engine, and record what the run spent."""
        # Spending is read before close(): the admission may be hosted by what close() stops.
        # Every shard has finished or been cancelled by now, so nothing spends after this.
        await books.refresh()
        leftover = await self.close()
        if books.pool is not None:
            await books.pool.aclose()
        if books.engine is not None:
            if leftover is not None:
                books.engine.stats.add(leftover)
            await books.engine.aclose()
        books.record()

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
        """Run one (set-up) step over ``source`` into ``step_dir``, skipping what it holds as
        committed. ``on_commit`` is awaited after every commit; ``counters`` receive the engine
        counters that ``process_shard`` reports.
        """
        # Why long: the ordered-commit loop and its two closures share the in-flight, finished and
        # next-commit state; the per-shard work is in executors/shards.py
        summary = StepSummary(name=step.ctx.name, step=step.name)
        complete = step_dir.complete_shards()
        if complete is not None and not step.stateful:
            return summary_from_markers(summary, step_dir, complete, progress)
        in_flight: dict[int, asyncio.Task[ShardOutput]] = {}
        finished: dict[int, ShardOutput] = {}
        batches: dict[int, list[Record]] = {}
        next_commit = 0
        limit = self.shards_at_once(step)
        if step.needs_whole_input():
            shard_size = sys.maxsize  # one shard: the step decides over all records at once

        async def commit_ready() -> None:
            nonlocal next_commit
            while next_commit in finished:
                batch = batches.pop(next_commit)
                done = finished.pop(next_commit)
                stats = await commit_shard(step, step_dir, next_commit, batch, done, summary)
                if not (step.uses_llm and self.progress_per_record):
                    progress.advance(len(batch), stats.records_out, sum(stats.rejected.values()))
                if on_commit is not None:
                    await on_commit()
                next_commit += 1

        async def wait_one() -> None:
            done, _ = await asyncio.wait(in_flight.values(), return_when=asyncio.FIRST_COMPLETED)
            for index in [i for i, t in in_flight.items() if t in done]:
                task = in_flight.pop(index)
                finished[index] = task.result()  # re-raises a failed shard's error
            await commit_ready()

        try:
            for index, batch in enumerate(chunked(source, shard_size)):
                if step_dir.is_done(index) and index == next_commit:
                    resume_shard(step, step_dir, index, summary, progress)
                    next_commit += 1
                    continue
                batches[index] = batch
                in_flight[index] = asyncio.create_task(self._process(step, batch, counters))
                while len(in_flight) >= limit:
                    await wait_one()
            while in_flight:
                await wait_one()
        except BaseException:
            # Shards still in flight would go on spending: cancel them (an executor whose shards
            # run elsewhere stops them there) before the error reaches the run.
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            raise
        step_dir.mark_complete(next_commit)
        return summary

    async def _process(
        self, step: Step[Any], batch: list[Record], counters: EngineStats | None
    ) -> ShardOutput:
        done = await self.process_shard(step, batch)
        if counters is not None and done.stats is not None:
            counters.add(done.stats)  # now, not at the commit: the progress bar shows them
        return done


class _Books:
    """The run's accounting: what it has spent and the engine's counters, recorded in the
    manifest after every commit and when the steps end.
    """

    def __init__(
        self, manifest: Manifest, run_dir: RunDir, admission: AdmissionControl | None
    ) -> None:
        self.manifest = manifest
        self.run_dir = run_dir
        self.admission = admission
        self.engine: Engine | None = None
        self.pool: EnginePool | None = None  # the engines of extra model blocks
        self.spent: Spending | None = None

    async def refresh(self) -> None:
        if self.admission is not None:
            self.spent = await self.admission.spending()

    def record(self) -> None:
        usage = self.spent.usage if self.spent else Usage(*self.manifest.usage_spent)
        counts = None
        if self.admission is not None:
            stats = EngineStats()
            if self.engine is not None:
                stats.add(self.engine.stats)
            if self.pool is not None:
                stats.add(self.pool.stats())
            counts = EngineCounts.model_validate(stats.to_dict())
        self.manifest.record_shard(
            (usage.prompt_tokens, usage.completion_tokens),
            self.spent.cost_usd if self.spent else 0.0,
            counts,
        )

    def save(self, status: str = "running", message: str = "") -> None:
        self.record()
        self.manifest.set_status(status, message)
        self.run_dir.write_manifest(self.manifest)

    async def commit(self) -> None:
        await self.refresh()
        self.save()


def step_context(
    loaded: LoadedSpec,
    name: str,
    index: int,
    engine: Engine | None,
    pool: EnginePool | None,
    surrogate_key: SurrogateKey | None,
    *,
    on_record: Callable[[int, int], None] | None = None,
    run_dir: Path | None = None,
) -> StepContext:
    """What step ``index`` of ``loaded`` is set up with, for a run and for a plan alike."""
    spec = loaded.spec
    return StepContext(
        name=name,
        index=index,
        seed=spec.seed,
        task=spec.task,
        llm=spec.llm,
        engine=engine,
        engines=pool,
        base_dir=loaded.base_dir,
        on_record=on_record,
        surrogate_key=surrogate_key,
        run_dir=run_dir,
    )


def first_source(loaded: LoadedSpec, pipeline: Pipeline) -> Iterable[Record]:
    """The first step's input: the records it plans (a source step) or the spec's input file."""
    first = pipeline.steps[0]
    if first.is_source:
        return first.plan()
    spec = loaded.spec
    assert spec.input is not None
    path = Path(spec.input.path)
    if not path.is_absolute():
        path = loaded.base_dir / path
    return read_records(
        path,
        format=spec.input.format,
        required=sorted(pipeline.input_required),
        limit=spec.input.limit,
        messages=spec.task.messages_fields if spec.task is not None else None,
    )
