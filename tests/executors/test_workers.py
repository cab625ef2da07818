"""The worker processes of the local executor, driven directly."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from datarefinery.config import LlamaCppConfig
from datarefinery.executors.workers import WorkerPool
from datarefinery.records import Record
from datarefinery.steps.base import Output, RecordStep, StepConfig, StepContext

_SETUPS = 0  # set-ups of the Tagger class in this process


class Tagger(RecordStep[StepConfig]):
    """Tags each record with its process and how many times that process set a Tagger up;
    ``sleep`` sleeps 30 s, ``exit`` ends the process, ``fail`` raises."""

    name = "tagger"
    Config = StepConfig
    cpu_bound = True

    def setup(self, ctx: StepContext) -> None:
        global _SETUPS
        super().setup(ctx)
        _SETUPS += 1

    def apply(self, record: Record) -> Output:
        text = record.fields["text"]
        if text == "sleep":
            time.sleep(30)
        elif text == "exit":
            os._exit(3)
        elif text == "fail":
            raise ValueError("a bug in the step")
        scores = {"pid": os.getpid(), "setups": _SETUPS}
        return Record(record.id, record.fields, record.provenance, scores)


def tagger() -> Tagger:
    step = Tagger(StepConfig())
    step.bind(StepContext(name="tagger", index=0, seed=0, task=None, llm=LlamaCppConfig()))
    return step


def batch(*texts: str) -> list[Record]:
    return [Record(f"r{i}", {"text": text}) for i, text in enumerate(texts)]


def test_each_worker_sets_the_step_up_once_and_outputs_keep_their_order() -> None:
    async def main() -> list[list[Output]]:
        pool = WorkerPool(2)
        try:
            shards = [batch(*(f"{s}-{i}" for i in range(3))) for s in range(8)]
            done = await asyncio.gather(*(pool.process(tagger(), shard) for shard in shards))
        finally:
            await pool.close()
        return [d.outputs for d in done]

    outputs = asyncio.run(main())
    assert [[o.fields["text"] for o in shard] for shard in outputs] == [  # type: ignore[union-attr]
        [f"{s}-{i}" for i in range(3)] for s in range(8)
    ]
    scores = [o.scores for shard in outputs for o in shard]  # type: ignore[union-attr]
    assert os.getpid() not in {s["pid"] for s in scores}
    assert len({s["pid"] for s in scores}) <= 2 and {s["setups"] for s in scores} == {1}


def test_a_cancelled_shard_stops_its_worker_and_the_pool_goes_on() -> None:
    async def main() -> list[Output]:
        pool = WorkerPool(1)
        try:
            slow = asyncio.ensure_future(pool.process(tagger(), batch("sleep")))
            await asyncio.sleep(1.0)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            return (await pool.process(tagger(), batch("quick"))).outputs
        finally:
            await pool.close()

    started = time.monotonic()
    assert [o.fields["text"] for o in asyncio.run(main())] == ["quick"]  # type: ignore[union-attr]
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fail", "failed in a worker process.*ValueError: a bug in the step"),
        ("exit", "exit code 3"),
    ],
)
def test_a_crash_or_a_dead_worker_fails_the_shard_with_what_happened(
    text: str, message: str
) -> None:
    async def main() -> None:
        pool = WorkerPool(1)
        try:
            await pool.process(tagger(), batch(text))
        finally:
            await pool.close()

    with pytest.raises(RuntimeError, match=f"(?s){message}"):
        asyncio.run(main())
