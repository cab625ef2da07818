"""One step's shards: cutting the input, committing a processed shard, counting committed ones.

The pieces of ``Executor.run_step`` that need no executor, kept apart so the loop stays readable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

from datarefinery.executors.progress import ProgressSink
from datarefinery.llm.engine import EngineStats
from datarefinery.manifest import ShardStats, StepSummary
from datarefinery.records import Record, Rejected
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Output, Step

T = TypeVar("T")


@dataclass(slots=True)
class ShardOutput:
    """A processed shard: its outputs, the seconds processing took, and ``stats``, the counters
    of model calls made by an engine other than the run's own (a Ray worker's).
    """

    outputs: list[Output]
    seconds: float
    stats: EngineStats | None = None


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


async def off_loop(write: Callable[..., T], *args: Any) -> T:
    """``write(*args)`` in a thread, waited for to the end even when the caller is cancelled.

    Why a thread: a shard's commit is three fsyncs, each a few milliseconds of waiting on the
    disk (with the manifest's, a third of a 2,000-record run's wall time against a fast server,
    measured), and meanwhile the shards in flight can go on calling the model. Why to the end:
    no writer may outlive the caller's cancellation, or what runs next (a retry writing the
    same shard through the same temporary files) would race it.
    """
    job = asyncio.get_running_loop().run_in_executor(None, write, *args)
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await asyncio.wait([job])
        raise


async def commit_shard(
    step: Step[Any],
    step_dir: StepDir,
    index: int,
    batch: list[Record],
    done: ShardOutput,
    summary: StepSummary,
) -> ShardStats:
    """Commit one processed shard: the step's postprocessing, the accounting check, then the
    shard's files and marker.
    """
    outputs = step.postprocess(done.outputs)
    if not step.is_source:
        check_accounted(step.ctx.name, batch, outputs)
    kept = [o for o in outputs if isinstance(o, Record)]
    dropped = [o for o in outputs if isinstance(o, Rejected)]
    stats = ShardStats(records_in=len(batch), records_out=len(kept), seconds=done.seconds)
    for rejection in dropped:
        stats.rejected[rejection.reason] = stats.rejected.get(rejection.reason, 0) + 1
    for record in kept:
        outcome = record.provenance.conditioning.get("outcome")
        if record.provenance.step == step.ctx.name and isinstance(outcome, str) and outcome:
            stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
    await off_loop(step_dir.commit, index, kept, dropped, stats)
    summary.add(stats)
    return stats


def resume_shard(
    step: Step[Any], step_dir: StepDir, index: int, summary: StepSummary, progress: ProgressSink
) -> None:
    """Count a shard an earlier session committed (and replay it into a stateful step)."""
    stats = step_dir.shard_stats(index)
    summary.add(stats, resumed=True)
    if step.stateful:
        step.restore(step_dir.records(index))
    progress.advance(stats.records_in, stats.records_out, sum(stats.rejected.values()))


def summary_from_markers(
    summary: StepSummary, step_dir: StepDir, shards: int, progress: ProgressSink
) -> StepSummary:
    """A step an earlier session committed whole (``shards`` of them): counted from its markers,
    its input not read.
    """
    for index in range(shards):
        summary.add(step_dir.shard_stats(index), resumed=True)
    progress.advance(summary.records_in, summary.records_out, sum(summary.rejected.values()))
    return summary
