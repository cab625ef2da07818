"""Engines for the model blocks a step names besides the run's ``llm:`` (``responses``'s
``models:``).

Each engine is built on first use, one per distinct block, over the run's response store and
admission control: every model answers from the same cache (the cache key holds the backend's
identity, so models never share answers), and the run's budget and rate limits hold over all of
them together. Concurrency, retries and timeout are the block's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from datarefinery.config import LLMConfig
from datarefinery.llm.base import Backend
from datarefinery.llm.cache import ResponseStore
from datarefinery.llm.engine import Engine, EngineStats
from datarefinery.llm.factory import make_backend, make_engine
from datarefinery.llm.limits import AdmissionControl


class EnginePool:
    """``engine_for(block)``: the engine of one extra model block, shared by every step of a run.

    ``backend_factory`` builds a block's backend (default ``make_backend``; tests pass scripted
    ones).
    """

    def __init__(
        self,
        cache: ResponseStore | None,
        admission: AdmissionControl,
        backend_factory: Callable[[LLMConfig], Backend] | None = None,
    ) -> None:
        self.cache = cache
        self.admission = admission
        self._backend_factory = backend_factory
        self._engines: dict[str, Engine] = {}

    def engine_for(self, config: LLMConfig) -> Engine:
        key = json.dumps(config.model_dump(mode="json"), sort_keys=True)
        engine = self._engines.get(key)
        if engine is None:
            backend = (self._backend_factory or make_backend)(config)
            engine = make_engine(config, backend, self.cache, self.admission)
            self._engines[key] = engine
        return engine

    def stats(self) -> EngineStats:
        """The counters of every engine of the pool, added up."""
        total = EngineStats()
        for engine in self._engines.values():
            total.add(engine.stats)
        return total

    def take_stats(self) -> EngineStats:
        """Like ``stats``, and start counting afresh (a Ray worker reports them per shard)."""
        total = EngineStats()
        for engine in self._engines.values():
            taken, engine.stats = engine.stats, EngineStats()
            total.add(taken)
        return total

    async def aclose(self) -> None:
        # Only the backends: the cache belongs to the run, which closes it with its own engine.
        # The engines stay, so their counters can still be read for the manifest.
        for engine in self._engines.values():
            await engine.backend.aclose()
