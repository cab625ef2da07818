"""Rate limits and the hard budget, both counted before a call is made.

A call first reserves its worst case (prompt estimate + ``max_tokens``); when the answer comes the
reservation is settled against the real usage. Reserving the worst case is what makes the budget
hard: with any number of calls in flight, the spent total cannot pass the limit.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Protocol

from datarefinery.errors import BudgetExceededError
from datarefinery.llm.base import Usage


def estimate_prompt_tokens(chars: int) -> int:
    """A cheap upper-ish estimate: English text averages about four characters a token."""
    return max(1, math.ceil(chars / 3.5))


class TokenBucket:
    """Capacity ``per_minute`` refilled continuously; ``acquire`` waits for room."""

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self, amount: float) -> None:
        # A single request larger than the whole minute's capacity could never pass; let it take
        # the full bucket instead of waiting forever.
        amount = min(amount, self.capacity)
        async with self._lock:
            while True:
                self._refill()
                if self.level >= amount:
                    self.level -= amount
                    return
                await asyncio.sleep((amount - self.level) / self.rate)

    def give_back(self, amount: float) -> None:
        """Return an over-estimate once the real figure is known (a negative amount takes more)."""
        self._refill()
        self.level = min(self.capacity, self.level + amount)


@dataclass(slots=True)
class Pricing:
    """US dollars per million tokens."""

    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0

    def cost(self, usage: Usage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1_000_000


class Budget:
    """A hard cap on tokens and/or cost for a run, including what earlier sessions of it spent."""

    def __init__(
        self,
        *,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
        pricing: Pricing | None = None,
        spent: Usage | None = None,
    ) -> None:
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self.pricing = pricing or Pricing()
        self.spent = spent or Usage()
        self._reserved_tokens = 0
        self._reserved_cost = 0.0

    @property
    def cost_usd(self) -> float:
        return self.pricing.cost(self.spent)

    def reserve(self, prompt_tokens: int, max_new_tokens: int) -> tuple[int, float]:
        """Book the worst case of a call, or raise ``BudgetExceededError`` if it might not fit."""
        tokens = prompt_tokens + max_new_tokens
        cost = self.pricing.cost(Usage(prompt_tokens, max_new_tokens))
        if (
            self.max_tokens is not None
            and self.spent.total_tokens + self._reserved_tokens + tokens > self.max_tokens
        ):
            raise BudgetExceededError(
                f"token budget reached: {self.spent.total_tokens:,} of {self.max_tokens:,} "
                f"tokens spent, the next call may need up to {tokens:,}. Raise "
                "llm.budget.max_tokens in the spec and run the same command again to go on; "
                "finished work is kept."
            )
        if (
            self.max_cost_usd is not None
            and self.cost_usd + self._reserved_cost + cost > self.max_cost_usd
        ):
            raise BudgetExceededError(
                f"cost budget reached: ${self.cost_usd:.4f} of ${self.max_cost_usd:.4f} spent, "
                f"the next call may cost up to ${cost:.4f}. Raise llm.budget.max_cost_usd in "
                "the spec and run the same command again to go on; finished work is kept."
            )
        self._reserved_tokens += tokens
        self._reserved_cost += cost
        return tokens, cost

    def settle(self, reservation: tuple[int, float], usage: Usage | None) -> None:
        """Release a reservation and book what the call really used (``None`` if it failed)."""
        tokens, cost = reservation
        self._reserved_tokens -= tokens
        self._reserved_cost -= cost
        if usage is not None:
            self.spent = self.spent + usage


@dataclass(frozen=True, slots=True)
class Admission:
    """A call let through by ``Limits.admit``: its budget reservation and its token-rate charge."""

    tokens: int
    cost: float
    worst_case: int


@dataclass(frozen=True, slots=True)
class Spending:
    """What a run has spent so far, earlier sessions included."""

    usage: Usage
    cost_usd: float


class AdmissionControl(Protocol):
    """The gate an engine passes before and after every model call: ``Limits`` in this process,
    or a proxy to the one a whole cluster shares (the Ray executor's coordinator)."""

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission:
        """Let a call through (waiting for the rate limits), or raise ``BudgetExceededError``."""
        ...

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        """Settle an admitted call with what it used (``None`` when it failed)."""
        ...

    async def spending(self) -> Spending: ...


class Limits:
    """The budget and the request / token rate limits as one gate in front of every model call.

    An engine is given one (``AdmissionControl``); the Ray executor hosts one in a coordinator
    actor that every worker's engine asks, so the limits hold for a whole cluster.
    """

    def __init__(
        self,
        budget: Budget,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self.budget = budget
        self.rpm = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tpm = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    async def admit(self, prompt_tokens: int, max_new_tokens: int) -> Admission:
        """Reserve the call's worst case, then wait for the rate limits (``BudgetExceededError``
        when the budget cannot hold it)."""
        tokens, cost = self.budget.reserve(prompt_tokens, max_new_tokens)
        worst_case = prompt_tokens + max_new_tokens
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1)
            if self.tpm is not None:
                await self.tpm.acquire(worst_case)
        except BaseException:
            self.budget.settle((tokens, cost), None)
            raise
        return Admission(tokens, cost, worst_case)

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        """Settle a call: book its real usage (``None`` when it failed) and return the unused part
        of its token-rate charge."""
        if usage is not None and self.tpm is not None:
            self.tpm.give_back(admission.worst_case - usage.total_tokens)
        self.budget.settle((admission.tokens, admission.cost), usage)

    async def spending(self) -> Spending:
        return Spending(self.budget.spent, self.budget.cost_usd)
