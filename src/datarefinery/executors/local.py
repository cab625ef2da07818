"""The local executor: asyncio on one machine, shard by shard, resumable.

A step's input is cut into shards of ``shard_size`` records. Several shards are processed at once
(so the model is never idle at a shard's tail), but they are committed strictly in shard order: a
stateful step (exact-duplicate rejection) sees outputs in the same order on every run, and the set
of committed shards is always a prefix, which is what a resumed run skips.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Protocol

from datarefinery.llm.engine import EngineStats
from datarefinery.records import Record, Rejected
from datarefinery.rundir import ShardStats, StepDir
from datarefinery.steps.base import Output, Step

if TYPE_CHECKING:
    from datarefinery.config import LoadedSpec
    from datarefinery.llm.engine import Engine


class ProgressSink(Protocol):
    def bind_engine(self, stats: EngineStats | None) -> None: ...

    def step_started(self, name: str, total_in: int | None) -> None: ...

    def advance(self, records_in: int, kept: int, rejected: int) -> None: ...

    def step_finished(self, name: str) -> None: ...


class NullProgress:
    def bind_engine(self, stats: EngineStats | None) -> None:
        pass

    def step_started(self, name: str, total_in: int | None) -> None:
        pass

    def advance(self, records_in: int, kept: int, rejected: int) -> None:
        pass

    def step_finished(self, name: str) -> None:
        pass


@dataclass
class StepSummary:
    name: str
    step: str
    shards: int = 0
    shards_resumed: int = 0
    records_in: int = 0
    records_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, stats: ShardStats) -> None:
        self.shards += 1
        self.records_in += stats.records_in
        self.records_out += stats.records_out
        for reason, count in stats.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.seconds += stats.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step": self.step,
            "shards": self.shards,
            "shards_resumed": self.shards_resumed,
            "records_in": self.records_in,
            "records_out": self.records_out,
            "rejected": dict(sorted(self.rejected.items())),
            "seconds": round(self.seconds, 3),
        }


def chunked(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def check_accounted(step_name: str, batch: list[Record], outputs: list[Output]) -> None:
    """A non-source step must return every input: kept, derived (as a parent) or rejected."""
    seen: set[str] = set()
    for output in outputs:
        record = output.record if isinstance(output, Rejected) else output
        seen.add(record.id)
        seen.update(record.provenance.parent_ids)
    lost = [r.id for r in batch if r.id not in seen]
    if lost:
        raise RuntimeError(
            f"step {step_name} dropped {len(lost)} record(s) without a rejection "
            f"(first: {lost[0]}); this is a bug in the step"
        )


class LocalExecutor:
    """Runs steps on this machine. ``shards_in_flight`` bounds how many shards of a step are being
    processed at once (LLM concurrency itself is bounded by the engine).

    Subclasses change where a shard is processed (``open``, ``shards_at_once``, ``process_shard``,
    ``close``); the ordered commit, resume and accounting below stay the same for every executor.
    """

    name = "local"
    # LLM steps report progress per record through their context; an executor whose steps run
    # elsewhere reports it per committed shard.
    progress_per_record = True

    def __init__(self, shards_in_flight: int = 2) -> None:
        self.shards_in_flight = max(1, shards_in_flight)

    async def open(self, loaded: LoadedSpec, engine: Engine | None) -> None:
        """Called once before the first step (the local executor needs nothing)."""

    async def close(self) -> None:
        """Called once when the run ends, however it ends."""

    def shards_at_once(self, step: Step[Any]) -> int:
        return self.shards_in_flight if step.uses_llm else 1

    async def process_shard(
        self, step: Step[Any], batch: list[Record]
    ) -> tuple[list[Output], float]:
        """One shard's outputs and the seconds its processing took."""
        started = time.perf_counter()
        outputs = await step.process(batch)
        return outputs, time.perf_counter() - started

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
        summary = StepSummary(name=step.ctx.name, step=step.name)
        in_flight: dict[int, asyncio.Task[tuple[list[Output], float]]] = {}
        finished: dict[int, tuple[list[Output], float]] = {}
        batches: dict[int, list[Record]] = {}
        next_commit = 0
        limit = self.shards_at_once(step)
        if step.needs_whole_input():
            shard_size = sys.maxsize  # one shard: the step decides over all records at once

        def commit_ready() -> None:
            nonlocal next_commit
            while next_commit in finished:
                outputs, seconds = finished.pop(next_commit)
                batch = batches.pop(next_commit)
                outputs = step.postprocess(outputs)
                if not step.is_source:
                    check_accounted(step.ctx.name, batch, outputs)
                kept = [o for o in outputs if isinstance(o, Record)]
                dropped = [o for o in outputs if isinstance(o, Rejected)]
                stats = ShardStats(records_in=len(batch), records_out=len(kept), seconds=seconds)
                for rejection in dropped:
                    stats.rejected[rejection.reason] = stats.rejected.get(rejection.reason, 0) + 1
                step_dir.commit(next_commit, kept, dropped, stats)
                summary.add(stats)
                if not (step.uses_llm and self.progress_per_record):
                    progress.advance(len(batch), len(kept), len(dropped))
                if on_commit is not None:
                    on_commit()
                next_commit += 1

        async def wait_one() -> None:
            done, _ = await asyncio.wait(in_flight.values(), return_when=asyncio.FIRST_COMPLETED)
            for index in [i for i, t in in_flight.items() if t in done]:
                task = in_flight.pop(index)
                finished[index] = task.result()  # re-raises a failed shard's error
            commit_ready()

        try:
            for index, batch in enumerate(chunked(source, shard_size)):
                if step_dir.is_done(index) and index == next_commit:
                    stats = step_dir.shard_stats(index)
                    summary.add(stats)
                    summary.shards_resumed += 1
                    if step.stateful:
                        step.restore(step_dir.records(index))
                    progress.advance(
                        stats.records_in, stats.records_out, sum(stats.rejected.values())
                    )
                    next_commit += 1
                    continue
                batches[index] = batch
                in_flight[index] = asyncio.create_task(self.process_shard(step, batch))
                while len(in_flight) >= limit:
                    await wait_one()
            while in_flight:
                await wait_one()
        except BaseException:
            for task in in_flight.values():
                task.cancel()
            await asyncio.gather(*in_flight.values(), return_exceptions=True)
            raise
        step_dir.mark_complete(next_commit)
        return summary
