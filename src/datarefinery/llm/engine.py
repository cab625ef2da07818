"""The engine: everything between a step and a backend.

Order of a call: response cache → (concurrency slot → budget reservation → rate limits → backend,
retried on retryable errors) → cache write. Structured calls add parsing, one re-ask with the
validation error, and a ``ParseFailure`` when the second answer does not fit either.

An engine is composed of a backend, a response store and an admission control (budget and rate
limits). The engine owns neither the cache nor the limits: an executor may give every engine of a
cluster proxies to one shared pair (the Ray executor's coordinator).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Generic, TypeVar

from pydantic import BaseModel

from datarefinery.errors import BackendError, RetryableBackendError
from datarefinery.llm.base import Backend, Message, Request, Response, Usage
from datarefinery.llm.cache import ResponseStore, request_key
from datarefinery.llm.limits import AdmissionControl, Budget, Limits
from datarefinery.llm.structured import ParseFailure, parse_reply, reask_message

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)


@dataclass(slots=True)
class EngineStats:
    """Counters for the manifest and the progress bar. ``usage`` is what the backend really
    spent; ``cached_usage`` is what cache hits would have cost.
    """

    requests: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    retries: int = 0
    failures: int = 0
    reasks: int = 0
    parse_failures: int = 0
    usage: Usage = field(default_factory=Usage)
    cached_usage: Usage = field(default_factory=Usage)
    backend_latency_s: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "backend_calls": self.backend_calls,
            "retries": self.retries,
            "failures": self.failures,
            "reasks": self.reasks,
            "parse_failures": self.parse_failures,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cached_prompt_tokens": self.cached_usage.prompt_tokens,
            "cached_completion_tokens": self.cached_usage.completion_tokens,
            "backend_latency_s": round(self.backend_latency_s, 3),
        }

    def add(self, other: EngineStats) -> None:
        """Add another engine's counters to these (in place: a progress bar may hold them)."""
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass(frozen=True, slots=True)
class StructuredResult(Generic[T]):
    """A structured call's outcome: ``value`` when a reply validated, else ``failure``.
    ``responses`` holds every reply received (the original and the re-ask).
    """

    value: T | None
    failure: ParseFailure | None
    responses: tuple[Response, ...]

    @property
    def raw_text(self) -> str:
        return self.responses[-1].text if self.responses else ""


class Engine:
    """Wraps a backend with a response cache, admission (budget and rate limits), retries and
    bounded concurrency.

    ``cache`` is where answers are looked up and stored (``None``: no caching). ``admission``
    gates every call; without one the engine makes its own ``Limits`` from ``budget``,
    ``requests_per_minute`` and ``tokens_per_minute``, which are shorthand for exactly that.
    """

    def __init__(
        self,
        backend: Backend,
        cache: ResponseStore | None = None,
        admission: AdmissionControl | None = None,
        *,
        concurrency: int = 4,
        max_retries: int = 5,
        timeout_s: float | None = 120.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        budget: Budget | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if admission is not None and (budget or requests_per_minute or tokens_per_minute):
            raise ValueError("give an admission control or a budget and rate limits, not both")
        self.backend = backend
        self.cache = cache
        if admission is None:
            admission = Limits(
                budget or Budget(),
                requests_per_minute=requests_per_minute,
                tokens_per_minute=tokens_per_minute,
            )
        self.admission = admission
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.stats = EngineStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def budget(self) -> Budget | None:
        """The budget of this engine's own ``Limits`` (``None`` when its admission lives
        elsewhere; ``admission.spending()`` answers for any).
        """
        return self.admission.budget if isinstance(self.admission, Limits) else None

    @property
    def model_identity(self) -> str:
        return f"{self.backend.kind}:{self.backend.identity}"

    async def complete(self, request: Request) -> Response:
        """One call through cache, limits, retries and budget."""
        self.stats.requests += 1
        key = None
        if self.cache is not None:
            key = request_key(self.backend.kind, self.backend.identity, request)
            hit = await self.cache.lookup(key)
            if hit is not None:
                self.stats.cache_hits += 1
                self.stats.cached_usage = self.stats.cached_usage + hit.usage
                return hit
        async with self._slots:
            response = await self._call_with_retries(request)
        if self.cache is not None and key is not None:
            await self.cache.store(key, response)
        return response

    async def _call_with_retries(self, request: Request) -> Response:
        prompt_bound = await self.backend.prompt_token_bound(request)
        attempt = 0
        while True:
            ticket = await self.admission.admit(prompt_bound, request.params.max_tokens)
            usage: Usage | None = None
            try:
                started = time.perf_counter()
                self.stats.backend_calls += 1
                response = await self.backend.complete_within(request, self.timeout_s)
                usage = response.usage
                self.stats.usage = self.stats.usage + usage
                self.stats.backend_latency_s += time.perf_counter() - started
                return response
            except RetryableBackendError as exc:
                usage = exc.usage  # None: the failed attempt is booked at its reservation
                if attempt >= self.max_retries:
                    self.stats.failures += 1
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                attempt += 1
                self.stats.retries += 1
                log.warning(
                    "model call failed (%s); retry %d/%d in %.2f s",
                    exc,
                    attempt,
                    self.max_retries,
                    delay,
                )
            except BaseException as exc:
                usage = exc.usage if isinstance(exc, BackendError) else None
                self.stats.failures += 1
                raise
            finally:
                await self.admission.release(ticket, usage)
            # The attempt is settled before backing off, so waiting calls hold no reservation.
            await self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and retry_after >= 0:
            # The server said when; a little jitter keeps concurrent callers from returning at once.
            return retry_after + self._rng.uniform(0, min(1.0, retry_after * 0.1 + 0.05))
        cap = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return float(cap / 2 + self._rng.uniform(0, cap / 2))

    async def complete_structured(self, request: Request, model: type[T]) -> StructuredResult[T]:
        """Call, validate against ``model``, re-ask once with the error, then give up with a reason.

        ``request.json_schema`` should already hold ``model``'s schema when the backend can use it
        for constrained decoding; validation happens either way.
        """
        first = await self.complete(request)
        parsed = parse_reply(first.text, model)
        if not isinstance(parsed, ParseFailure):
            return StructuredResult(value=parsed, failure=None, responses=(first,))  # type: ignore[arg-type]
        self.stats.reasks += 1
        followup = request.with_messages(
            (
                *request.messages,
                Message("assistant", first.text),
                Message("user", reask_message(parsed)),
            )
        )
        second = await self.complete(followup)
        reparsed = parse_reply(second.text, model)
        if not isinstance(reparsed, ParseFailure):
            return StructuredResult(value=reparsed, failure=None, responses=(first, second))  # type: ignore[arg-type]
        self.stats.parse_failures += 1
        if second.finish_reason == "length":
            reparsed = ParseFailure(
                reparsed.reason,
                f"{reparsed.message} (the reply hit max_tokens={request.params.max_tokens})",
            )
        return StructuredResult(value=None, failure=reparsed, responses=(first, second))

    async def aclose(self) -> None:
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()
