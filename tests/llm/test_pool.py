import asyncio

import pytest

from datarefinery.config import LlamaCppConfig, OpenAIConfig
from datarefinery.errors import BudgetExceededError
from datarefinery.llm.base import Backend, Message, Request, SamplingParams
from datarefinery.llm.cache import ResponseCache
from datarefinery.llm.limits import Budget, Limits
from datarefinery.llm.pool import EnginePool
from datarefinery.llm.scripted import ScriptedBackend


class Closing(ScriptedBackend):
    closed = False

    async def aclose(self) -> None:
        self.closed = True


def scripted(config: object) -> Backend:
    return Closing(lambda r: "a reply of five words", name=getattr(config, "model", "?"))


def request(seed: int) -> Request:
    return Request((Message("user", "hi"),), SamplingParams(max_tokens=10), seed=seed)


SMALL = LlamaCppConfig(model="small.gguf", concurrency=2)
BIG = OpenAIConfig(backend="openai", base_url="http://x/v1", model="big")


def test_one_engine_per_block_over_the_runs_cache_and_admission(tmp_path: object) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")  # type: ignore[operator]
    limits = Limits(Budget())
    pool = EnginePool(cache, limits, scripted)
    small, big = pool.engine_for(SMALL), pool.engine_for(BIG)
    assert pool.engine_for(LlamaCppConfig(model="small.gguf", concurrency=2)) is small
    assert small is not big and small.concurrency == 2
    assert small.cache is cache and big.admission is limits

    async def calls() -> None:
        await small.complete(request(1))
        await small.complete(request(1))  # from the shared cache
        await big.complete(request(1))  # another model: its own cache entry
        await pool.aclose()

    asyncio.run(calls())
    stats = pool.stats()
    assert (stats.requests, stats.cache_hits, stats.backend_calls) == (3, 1, 2)
    assert all(isinstance(e.backend, Closing) and e.backend.closed for e in (small, big))
    assert pool.take_stats().requests == 3 and pool.stats().requests == 0
    cache.close()


def test_the_runs_budget_holds_over_every_model() -> None:
    # A call reserves its worst case (124 tokens here) and books what it used (6).
    limits = Limits(Budget(max_tokens=128))
    pool = EnginePool(None, limits, scripted)
    asyncio.run(pool.engine_for(SMALL).complete(request(1)))
    assert limits.budget.spent.total_tokens == 6
    with pytest.raises(BudgetExceededError):  # 6 spent by the other model + 124 > 128
        asyncio.run(pool.engine_for(BIG).complete(request(2)))
