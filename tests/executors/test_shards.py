"""Committing a shard off the event loop: the loop goes on while the files are written, and a
cancelled commit still ends its write before the cancellation goes on."""

import asyncio
import threading
import time

from datarefinery.executors.shards import off_loop


def test_the_write_runs_in_a_thread_while_the_loop_goes_on() -> None:
    ticks: list[float] = []

    def write(value: int) -> tuple[int, bool]:
        time.sleep(0.2)  # an fsync on a busy disk
        return value, threading.current_thread() is threading.main_thread()

    async def go() -> tuple[int, bool]:
        async def tick() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        result = await off_loop(write, 7)
        ticker.cancel()
        return result

    assert asyncio.run(go()) == (7, False)
    assert len(ticks) >= 5


def test_a_cancelled_commit_ends_its_write_first() -> None:
    events: list[str] = []

    def write() -> None:
        time.sleep(0.2)
        events.append("written")

    async def go() -> None:
        task = asyncio.create_task(off_loop(write))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            events.append("cancelled")

    asyncio.run(go())
    assert events == ["written", "cancelled"]
