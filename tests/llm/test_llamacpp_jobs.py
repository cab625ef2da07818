"""When the embedded backend's ``llm.timeout_s`` clock runs: from the moment the decoder takes a
job into a slot, not while the job waits in the queue (a stand-in decoder sets the moments)."""

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future

import pytest

from datarefinery.errors import FatalBackendError, RetryableBackendError
from datarefinery.llm.base import Message, Request, SamplingParams, Usage
from datarefinery.llm.llamacpp import LlamaCppBackend
from datarefinery.llm.llamacpp_jobs import Generation, Job

REQUEST = Request(messages=(Message("user", "hi"),), params=SamplingParams(max_tokens=4))


def later(delay_s: float, call: Callable[..., object], *args: object) -> None:
    timer = threading.Timer(delay_s, call, args=args)
    timer.daemon = True  # a job nobody waits for any more must not hold the test run open
    timer.start()


class Decoder:
    """Starts each job after ``wait_s`` and answers ``work_s`` later (``None``: never)."""

    def __init__(self, wait_s: float, work_s: float | None, *, alive: bool = True) -> None:
        self.wait_s, self.work_s, self.alive = wait_s, work_s, alive
        self.jobs: list[Job] = []

    def submit(self, request: Request) -> Job:
        job = Job(request, Future())
        self.jobs.append(job)
        if self.alive:
            later(self.wait_s, self._start, job)
        return job

    def _start(self, job: Job) -> None:
        if job.future.cancelled():
            return
        job.started.set_result(None)
        if self.work_s is not None:
            answer = Generation("ok", "stop", Usage(prompt_tokens=1, completion_tokens=1), 0.0)
            later(self.work_s, job.future.set_result, answer)


def backend_with(decoder: Decoder) -> LlamaCppBackend:
    backend = LlamaCppBackend("default")
    backend._decoder = decoder  # type: ignore[assignment]
    return backend


def test_waiting_for_a_slot_does_not_count_against_the_timeout() -> None:
    # Queued three times as long as the limit, then answered well within it.
    backend = backend_with(Decoder(wait_s=0.6, work_s=0.02))
    response = asyncio.run(backend.complete_within(REQUEST, 0.2))
    assert response.text == "ok"


def test_a_started_job_that_does_not_answer_times_out_and_frees_its_slot() -> None:
    decoder = Decoder(wait_s=0.0, work_s=None)
    with pytest.raises(RetryableBackendError, match=r"no answer within 0\.2 s"):
        asyncio.run(backend_with(decoder).complete_within(REQUEST, 0.2))
    assert decoder.jobs[0].future.cancelled()  # the decoder drops a cancelled sequence


def test_a_caller_that_gives_up_while_queued_withdraws_its_job() -> None:
    decoder = Decoder(wait_s=5.0, work_s=0.0)

    async def give_up() -> None:
        await asyncio.wait_for(backend_with(decoder).complete_within(REQUEST, 1.0), timeout=0.1)

    with pytest.raises(TimeoutError):
        asyncio.run(give_up())
    assert decoder.jobs[0].future.cancelled()  # skipped when its turn comes


def test_a_stopped_decoder_is_reported_not_waited_on_forever() -> None:
    decoder = Decoder(wait_s=0.0, work_s=0.0, alive=False)
    with pytest.raises(FatalBackendError, match="decoder stopped"):
        asyncio.run(backend_with(decoder).complete_within(REQUEST, 0.1))
