import asyncio
import random
from pathlib import Path

import pytest
from pydantic import BaseModel

from datarefinery.errors import BudgetExceededError, FatalBackendError, RetryableBackendError
from datarefinery.llm.base import Message, Request, Response, SamplingParams, Usage
from datarefinery.llm.cache import ResponseCache
from datarefinery.llm.engine import Engine
from datarefinery.llm.limits import Admission, Budget, Limits, Spending
from datarefinery.llm.scripted import ScriptedBackend


class Answer(BaseModel):
    answer: str


def req(seed: int = 0, max_tokens: int = 16) -> Request:
    return Request(
        messages=(Message("user", "say hi"),),
        params=SamplingParams(max_tokens=max_tokens),
        json_schema=Answer.model_json_schema(),
        seed=seed,
    )


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def test_retries_with_backoff_and_honours_retry_after() -> None:
    backend = ScriptedBackend(
        [
            RetryableBackendError("HTTP 429", status=429, retry_after=2.0),
            RetryableBackendError("HTTP 500", status=500),
            RetryableBackendError("connection reset"),
            '{"answer": "hi"}',
        ]
    )
    sleep = FakeSleep()
    engine = Engine(backend, sleep=sleep, rng=random.Random(0), backoff_base_s=0.5)
    response = asyncio.run(engine.complete(req()))
    assert response.text == '{"answer": "hi"}'
    assert engine.stats.retries == 3
    # Retry-After is honoured (plus a little jitter), then exponential backoff with jitter:
    # attempt 1 -> cap 1.0 s, attempt 2 -> cap 2.0 s, each drawn from [cap/2, cap].
    assert 2.0 <= sleep.delays[0] <= 2.3
    assert 0.5 <= sleep.delays[1] <= 1.0
    assert 1.0 <= sleep.delays[2] <= 2.0


def test_gives_up_after_max_retries() -> None:
    backend = ScriptedBackend([RetryableBackendError("HTTP 503", status=503)] * 3)
    engine = Engine(backend, max_retries=2, sleep=FakeSleep())
    with pytest.raises(RetryableBackendError):
        asyncio.run(engine.complete(req()))
    assert engine.stats.failures == 1
    assert len(backend.requests) == 3


def test_fatal_errors_are_not_retried() -> None:
    backend = ScriptedBackend([FatalBackendError("HTTP 401", status=401)])
    engine = Engine(backend, sleep=FakeSleep())
    with pytest.raises(FatalBackendError):
        asyncio.run(engine.complete(req()))
    assert len(backend.requests) == 1


def test_timeout_is_retried() -> None:
    calls = {"n": 0}

    class Slow(ScriptedBackend):
        async def complete(self, request: Request) -> Response:
            calls["n"] += 1
            if calls["n"] == 1:
                await asyncio.sleep(5)
            return Response(text='{"answer": "late"}', usage=Usage(1, 1))

    engine = Engine(Slow([]), timeout_s=0.05, sleep=FakeSleep())
    response = asyncio.run(engine.complete(req()))
    assert response.text == '{"answer": "late"}'
    assert engine.stats.retries == 1


def test_cache_serves_repeat_requests(tmp_path: Path) -> None:
    backend = ScriptedBackend(lambda r: f'{{"answer": "seed {r.seed}"}}')
    engine = Engine(backend, cache=ResponseCache(tmp_path / "c.sqlite"))

    async def scenario() -> list[str]:
        texts = []
        for seed in (1, 2, 1, 2):
            texts.append((await engine.complete(req(seed))).text)
        return texts

    assert asyncio.run(scenario()) == [
        '{"answer": "seed 1"}',
        '{"answer": "seed 2"}',
        '{"answer": "seed 1"}',
        '{"answer": "seed 2"}',
    ]
    assert len(backend.requests) == 2
    assert engine.stats.cache_hits == 2


def test_structured_reasks_once_with_the_error() -> None:
    backend = ScriptedBackend(['{"wrong": 1}', '{"answer": "fixed"}'])
    engine = Engine(backend)
    result = asyncio.run(engine.complete_structured(req(), Answer))
    assert result.value == Answer(answer="fixed")
    reask = backend.requests[1].messages
    assert reask[-2] == Message("assistant", '{"wrong": 1}')
    assert "answer" in reask[-1].content and "Field required" in reask[-1].content


def test_structured_rejects_after_second_failure() -> None:
    backend = ScriptedBackend(["not json", "still not json"])
    engine = Engine(backend)
    result = asyncio.run(engine.complete_structured(req(), Answer))
    assert result.value is None
    assert result.failure is not None and result.failure.reason == "invalid_json"
    assert result.raw_text == "still not json"
    assert engine.stats.parse_failures == 1


def test_budget_stops_before_overrunning() -> None:
    backend = ScriptedBackend(lambda r: Response(text='{"answer": "x"}', usage=Usage(10, 10)))
    engine = Engine(backend, budget=Budget(max_tokens=100))

    async def scenario() -> int:
        done = 0
        for seed in range(100):
            await engine.complete(req(seed, max_tokens=10))
            done += 1
        return done

    with pytest.raises(BudgetExceededError):
        asyncio.run(scenario())
    assert engine.budget.spent.total_tokens <= 100
    assert len(backend.requests) >= 4


def test_concurrency_is_bounded() -> None:
    active = {"now": 0, "max": 0}

    class Counting(ScriptedBackend):
        async def complete(self, request: Request) -> Response:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            await asyncio.sleep(0.01)
            active["now"] -= 1
            return Response(text="{}", usage=Usage(1, 1))

    engine = Engine(Counting([]), concurrency=3)

    async def scenario() -> None:
        await asyncio.gather(*(engine.complete(req(i)) for i in range(20)))

    asyncio.run(scenario())
    assert active["max"] == 3


class RecordingAdmission:
    """An admission control kept outside the engine, as the Ray executor's proxies are."""

    def __init__(self, refuse_after: int) -> None:
        self.limits = Limits(Budget())
        self.refuse_after = refuse_after
        self.admitted: list[tuple[int, int]] = []
        self.released: list[Usage | None] = []

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission:
        if len(self.admitted) >= self.refuse_after:
            raise BudgetExceededError("refused by the shared budget")
        self.admitted.append((prompt_tokens, max_new_tokens))
        return await self.limits.admit(prompt_tokens, max_new_tokens)

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        self.released.append(usage)
        await self.limits.release(admission, usage)

    async def spending(self) -> Spending:
        return await self.limits.spending()


class MemoryStore:
    def __init__(self) -> None:
        self.answers: dict[str, Response] = {}
        self.closed = False

    async def lookup(self, key: str) -> Response | None:
        return self.answers.get(key)

    async def store(self, key: str, response: Response) -> None:
        self.answers[key] = response

    def close(self) -> None:
        self.closed = True


def test_cache_and_admission_are_the_ones_passed_in() -> None:
    backend = ScriptedBackend(lambda r: Response(text='{"answer": "x"}', usage=Usage(3, 2)))
    admission, store = RecordingAdmission(refuse_after=2), MemoryStore()
    engine = Engine(backend, store, admission)

    async def scenario() -> None:
        for seed in (1, 2, 1):
            await engine.complete(req(seed, max_tokens=7))
        with pytest.raises(BudgetExceededError, match="shared budget"):
            await engine.complete(req(3))
        await engine.aclose()

    asyncio.run(scenario())
    assert len(backend.requests) == 2 and len(store.answers) == 2  # seed 1 again: from the store
    assert [max_new for _, max_new in admission.admitted] == [7, 7]
    assert admission.released == [Usage(3, 2), Usage(3, 2)]
    assert asyncio.run(admission.spending()).usage == Usage(6, 4)
    assert engine.budget is None  # the budget is not the engine's own
    assert store.closed


def test_an_admission_control_and_a_budget_are_not_given_together() -> None:
    with pytest.raises(ValueError, match="not both"):
        Engine(ScriptedBackend([]), None, RecordingAdmission(1), budget=Budget(max_tokens=5))
