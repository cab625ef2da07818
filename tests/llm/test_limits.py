import asyncio
import time

import pytest

from datarefinery.errors import BudgetExceededError
from datarefinery.llm.base import Usage
from datarefinery.llm.limits import Budget, Limits, Pricing, TokenBucket


def test_token_budget_reserves_worst_case_and_settles() -> None:
    budget = Budget(max_tokens=100)
    first = budget.reserve(20, 30)
    second = budget.reserve(20, 30)
    with pytest.raises(BudgetExceededError, match="token budget reached"):
        budget.reserve(20, 30)  # 150 > 100 while two calls are in flight
    budget.settle(first, Usage(20, 5))
    budget.settle(second, Usage(20, 5))
    assert budget.spent.total_tokens == 50
    reservation = budget.reserve(20, 30)  # 50 spent + 50 reserved fits exactly
    # A failed call the backend reported no usage for may have cost its worst case.
    budget.settle(reservation, None)
    assert budget.spent == Usage(60, 40)
    with pytest.raises(BudgetExceededError):
        budget.reserve(1, 0)


def test_a_failed_call_costs_its_reservation_at_the_price_of_its_worst_case() -> None:
    budget = Budget(max_cost_usd=1.0, pricing=Pricing(input_per_mtok=1000, output_per_mtok=2000))
    budget.settle(budget.reserve(100, 200), None)
    assert budget.cost_usd == pytest.approx(0.1 + 0.4)


def test_a_call_cancelled_while_it_waits_for_the_rate_limit_costs_nothing() -> None:
    async def scenario() -> Budget:
        limits = Limits(Budget(max_tokens=1000), requests_per_minute=1)
        settled = await limits.admit(10, 10)  # takes the minute's only request
        await limits.release(settled, Usage(10, 10))
        waiting = asyncio.create_task(limits.admit(10, 10))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return limits.budget

    budget = asyncio.run(scenario())
    assert budget.spent == Usage(10, 10)
    budget.reserve(0, 980)  # nothing of the cancelled call stays reserved


def test_cost_budget_uses_pricing() -> None:
    budget = Budget(max_cost_usd=0.01, pricing=Pricing(input_per_mtok=1000, output_per_mtok=2000))
    reservation = budget.reserve(2, 2)  # 0.002 + 0.004
    budget.settle(reservation, Usage(2, 2))
    assert budget.cost_usd == pytest.approx(0.006)
    with pytest.raises(BudgetExceededError, match=r"cost budget reached: \$0\.0060"):
        budget.reserve(2, 2)


def test_budget_counts_what_earlier_sessions_spent() -> None:
    budget = Budget(max_tokens=100, spent=Usage(60, 30))
    with pytest.raises(BudgetExceededError):
        budget.reserve(5, 10)


def test_token_bucket_waits_when_empty() -> None:
    async def scenario() -> float:
        bucket = TokenBucket(per_minute=600)  # 10 per second
        await bucket.acquire(600)  # drain the whole minute
        started = time.monotonic()
        await bucket.acquire(3)  # needs 0.3 s of refill
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert 0.2 < waited < 1.0
