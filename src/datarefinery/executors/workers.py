"""Worker processes for the CPU-bound steps of the local executor (``Step.cpu_bound``).

The local executor sends each shard of such a step to one of its worker processes and commits what
comes back itself, in shard order (the step loop of ``executors.base``), so the committed bytes and
resume are those of a run in one process.

- A shard travels with its step's ``StepRecipe``: the step's class, its config and its context
  without the engine or the progress callback. A worker builds the step from the recipe and sets
  it up the first time it gets one of its shards, then keeps it until the run ends: a detector is
  loaded once per worker, never pickled.
- A worker is ``python -c 'serve()'``, talking pickled frames over its stdin and stdout. Not
  ``multiprocessing``: its ``spawn`` re-runs the caller's main script in every child (a script
  that calls ``datarefinery.run`` without an ``if __name__ == "__main__"`` guard would start a
  second run on the same directory), and ``fork`` copies a process whose threads (asyncio's,
  llama.cpp's, torch's) may hold locks.
- Workers run in their own session: Ctrl-C stops the run's process, which stops the workers; a
  worker whose run died (SIGKILL) sees its stdin close and exits.
- Workers default native thread pools (OpenMP, BLAS) to one thread: the processes are the
  parallelism, and a pool per worker on every core would oversubscribe the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import IO, Any

from datarefinery.errors import DatarefineryError
from datarefinery.executors.failures import Failure, describe_failure, rebuild_failure
from datarefinery.executors.shards import ShardOutput
from datarefinery.records import Record
from datarefinery.steps.base import Output, Step, StepConfig, StepContext

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_HEADER = struct.Struct(">Q")  # the length of the pickled frame that follows


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class StepRecipe:
    """What a worker builds and sets up a step from."""

    cls: type[Step[Any]]
    config: StepConfig
    ctx: StepContext

    @classmethod
    def of(cls, step: Step[Any]) -> StepRecipe:
        ctx = replace(step.ctx, engine=None, engines=None, on_record=None)
        return cls(type(step), step.config, ctx)


@dataclass(slots=True)
class ShardReply:
    """A worker's answer for one shard: outputs and seconds, or a datarefinery ``failure``, or
    the traceback of any other error (``crash``).
    """

    outputs: list[Output] = field(default_factory=list)
    seconds: float = 0.0
    failure: Failure | None = None
    crash: str | None = None


class _Worker:
    """The loop of one worker process: a shard in, its reply out, until stdin closes."""

    def __init__(self) -> None:
        self.steps: dict[tuple[int, str], Step[Any]] = {}  # set up once, kept for the run

    def run_shard(self, recipe: StepRecipe, batch: list[Record]) -> ShardReply:
        key = (recipe.ctx.index, recipe.ctx.name)
        try:
            step = self.steps.get(key)
            if step is None:
                step = recipe.cls(recipe.config)
                step.setup(recipe.ctx)
                self.steps[key] = step
            started = time.perf_counter()
            outputs = asyncio.run(step.process(batch))
        except DatarefineryError as exc:
            return ShardReply(failure=describe_failure(exc))
        except Exception:
            return ShardReply(crash=traceback.format_exc())
        return ShardReply(outputs, time.perf_counter() - started)


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return stream.read(_HEADER.unpack(header)[0])


def serve() -> None:
    """A worker process's main loop (the local executor starts it; not for use by hand)."""
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # what a step prints must not land between the frames
    worker = _Worker()
    while (frame := _read_frame(requests)) is not None:
        try:
            recipe, batch = pickle.loads(frame)
        except Exception:  # a step class this process cannot import (defined in a script)
            answer = ShardReply(crash=traceback.format_exc())
        else:
            answer = worker.run_shard(recipe, batch)
        reply = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        replies.write(_HEADER.pack(len(reply)) + reply)
        replies.flush()


class WorkerPool:
    """Up to ``workers`` worker processes, each processing one shard at a time; started when a
    shard needs one, stopped by ``close``.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[asyncio.subprocess.Process] = []
        self._started: list[asyncio.subprocess.Process] = []

    async def _start(self) -> asyncio.subprocess.Process:
        # The worker imports what this process can (its sys.path), like the step classes of a
        # test module; its stderr is this process's.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p or os.getcwd() for p in sys.path)}
        for name in _THREAD_VARIABLES:
            env.setdefault(name, "1")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from datarefinery.executors.workers import serve; serve()",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._started.append(process)
        return process

    async def process(self, step: Step[Any], batch: list[Record]) -> ShardOutput:
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._start()
            try:
                reply = await self._ask(worker, StepRecipe.of(step), batch)
            except BaseException:
                # Cancelled mid-shard, or the worker died: it is not reused (a cancelled one
                # would still be working on the shard).
                with contextlib.suppress(ProcessLookupError):
                    worker.kill()
                raise
            self._idle.append(worker)
        if reply.failure is not None:
            raise rebuild_failure(*reply.failure)
        if reply.crash is not None:
            raise RuntimeError(f"step {step.ctx.name} failed in a worker process:\n{reply.crash}")
        return ShardOutput(reply.outputs, reply.seconds)

    async def _ask(
        self, worker: asyncio.subprocess.Process, recipe: StepRecipe, batch: list[Record]
    ) -> ShardReply:
        assert worker.stdin is not None and worker.stdout is not None
        frame = pickle.dumps((recipe, batch), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            worker.stdin.write(_HEADER.pack(len(frame)) + frame)
            await worker.stdin.drain()
            header = await worker.stdout.readexactly(_HEADER.size)
            reply = await worker.stdout.readexactly(_HEADER.unpack(header)[0])
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await worker.wait()
            raise RuntimeError(
                f"a worker process of step {recipe.ctx.name} ended unexpectedly (exit code "
                f"{code}); committed shards are kept: run the same command again to resume"
            ) from exc
        answer: ShardReply = pickle.loads(reply)
        return answer

    async def close(self) -> None:
        """Stop every worker: an idle one exits when its stdin closes."""
        started, self._started, self._idle = self._started, [], []
        for process in started:
            if process.stdin is not None:
                process.stdin.close()
        for process in started:
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
