import asyncio

import pytest

from datarefinery.errors import BudgetExceededError
from datarefinery.records import Record
from datarefinery.steps.base import Output, Step, StepConfig, gather_or_cancel


def test_gather_or_cancel_stops_the_other_calls_before_the_error_propagates() -> None:
    """A budget stop in one call must not leave its siblings calling the model after the run has
    written down what it spent."""
    events: list[str] = []

    async def refused() -> int:
        await asyncio.sleep(0.01)
        raise BudgetExceededError("token budget reached")

    async def slow(name: str) -> int:
        try:
            await asyncio.sleep(5)
            events.append(f"{name} finished")
        finally:
            events.append(f"{name} settled")
        return 1

    async def scenario() -> None:
        with pytest.raises(BudgetExceededError):
            await gather_or_cancel(slow("a"), refused(), slow("b"))
        events.append("error seen")

    asyncio.run(scenario())
    assert events == ["a settled", "b settled", "error seen"]


def test_gather_or_cancel_returns_results_in_order() -> None:
    async def value(v: int) -> int:
        await asyncio.sleep(0.001 * (3 - v))
        return v

    assert asyncio.run(gather_or_cancel(*(value(v) for v in range(3)))) == [0, 1, 2]


def test_a_step_cannot_be_both_cpu_bound_and_a_model_caller() -> None:
    """Model-calling steps overlap their calls in one process; worker processes are for steps
    that compute (``cpu_bound``)."""
    with pytest.raises(TypeError, match="both cpu_bound and uses_llm"):

        class Confused(Step[StepConfig]):
            name = "confused"
            Config = StepConfig
            uses_llm = True
            cpu_bound = True

            async def process(self, batch: list[Record]) -> list[Output]:
                return list(batch)
