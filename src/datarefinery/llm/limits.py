"""Rate limits and the hard budget, both counted before a call is made.

A call first reserves its worst case (the backend's bound on its prompt tokens + ``max_tokens``);
when the answer comes the reservation is settled against the real usage, and a call that failed
without a reported usage is booked at its reservation (a server may have done the work anyway).
Reserving the worst case is what makes the budget hard: with any number of calls in flight, the
spent total cannot pass the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from datarefinery.errors import BudgetExceededError
from datarefinery.llm.base import Usage

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Reservation:
    """A call's worst case as booked by ``Budget.reserve``."""

    worst: Usage
    cost: float


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

    def reserve(self, prompt_tokens: int, max_new_tokens: int) -> Reservation:
        """Book the worst case of a call, or raise ``BudgetExceededError`` if it might not fit."""
        worst = Usage(prompt_tokens, max_new_tokens)
        tokens = worst.total_tokens
        cost = self.pricing.cost(worst)
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
        return Reservation(worst, cost)

    def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Release a reservation and book what the call used: ``usage`` when the backend reported
        it, else (a failed or timed-out call) the whole reservation.
        """
        self._reserved_tokens -= reservation.worst.total_tokens
        self._reserved_cost -= reservation.cost
        if usage is None:
            usage = reservation.worst
        elif usage.total_tokens > reservation.worst.total_tokens:
            # The prompt bound or max_tokens did not hold for this backend: the budget may pass
            # its limit by the difference. Say so rather than hide it.
            log.warning(
                "a model call used %d tokens, more than the %d reserved for it",
                usage.total_tokens,
                reservation.worst.total_tokens,
            )
        self.spent = self.spent + usage


@dataclass(frozen=True, slots=True)
class Admission:
    """A call let through by ``Limits.admit``: its budget reservation (which is also its
    token-rate charge).
    """

    reservation: Reservation

    @property
    def worst_case(self) -> int:
        return self.reservation.worst.total_tokens


@dataclass(frozen=True, slots=True)
class Spending:
    """What a run has spent so far, earlier sessions included."""

    usage: Usage
    cost_usd: float


class AdmissionControl(Protocol):
    """The gate an engine passes before and after every model call: ``Limits`` in this process,
    or a proxy to the one a whole cluster shares (the Ray executor's coordinator).
    """

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
        when the budget cannot hold it).
        """
        reservation = self.budget.reserve(prompt_tokens, max_new_tokens)
        try:
            if self.rpm is not None:
                await self.rpm.acquire(1)
            if self.tpm is not None:
                await self.tpm.acquire(reservation.worst.total_tokens)
        except BaseException:
            # Nothing was sent: the reservation goes back whole.
            self.budget.settle(reservation, Usage())
            raise
        return Admission(reservation)

    async def release(self, admission: Admission, usage: Usage | None) -> None:
        """Settle a call: book its reported usage, or its whole reservation when there is none
        (it failed or timed out), and return the unused part of its token-rate charge.
        """
        if usage is not None and self.tpm is not None:
            self.tpm.give_back(admission.worst_case - usage.total_tokens)
        self.budget.settle(admission.reservation, usage)

    async def spending(self) -> Spending:
        return Spending(self.budget.spent, self.budget.cost_usd)
