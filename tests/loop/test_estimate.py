"""The arithmetic of ``refinery plan``: intervals, scaling through steps, budgets."""

from __future__ import annotations

import math

import pytest

from datarefinery.config import TaskSpec
from datarefinery.llm.limits import Pricing
from datarefinery.loop.estimate import (
    Range,
    StepSample,
    Totals,
    budget_warnings,
    estimate_run,
    mean_interval,
    totals,
)
from datarefinery.records import Record
from datarefinery.steps.base import CallEstimate, RecordStep, StepConfig
from datarefinery.steps.curate.select import Select, SelectConfig


class _Pass(RecordStep[StepConfig]):
    name = "pass"
    Config = StepConfig

    def apply(self, record: Record) -> Record:
        return record

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set()


def test_mean_interval_is_the_t_interval_by_hand() -> None:
    # mean 12, sample sd 2, n 3: t(0.975, 2 df) = 4.303, half-width 4.303 * 2 / sqrt(3)
    got = mean_interval([10, 12, 14])
    half = 4.303 * 2 / math.sqrt(3)
    assert got.mid == 12
    assert got.low == pytest.approx(12 - half) and got.high == pytest.approx(12 + half)
    assert mean_interval([5, 5, 5]) == Range.point(5)
    assert mean_interval([7]) == Range.point(7)  # one observation: no spread to speak of
    assert mean_interval([]) == Range.point(0)
    assert mean_interval([0, 10]).low == 0  # clipped: counts are never negative


def test_estimate_scales_the_sample_through_the_steps() -> None:
    # Step 1 (model): every record kept, one call a record, 100 prompt and 20..40 completion
    # tokens a call. Step 2 (no model): keeps one of two sampled records.
    first = StepSample(
        "gen", "pass", True, records=2, kept=[1, 1], calls=[1, 1],
        prompt_tokens=[100, 100], completion_tokens=[20, 40], latency_s=[1.0, 1.0],
    )  # fmt: skip
    second = StepSample("cut", "pass", False, records=2, kept=[1, 0], calls=[0, 0])
    pricing = Pricing(input_per_mtok=1.0, output_per_mtok=2.0)
    gen, cut = estimate_run(
        [_Pass(StepConfig()), _Pass(StepConfig())], [first, second], 50, pricing, 2
    )
    assert gen.records_in == Range.point(50) and gen.calls == Range.point(50)
    assert gen.prompt_tokens == Range.point(5000)
    half = 12.706 * math.sqrt(200) / math.sqrt(2)  # t(1 df) * sd / sqrt(n) of [20, 40]
    assert gen.completion_tokens.mid == 1500
    assert gen.completion_tokens.low == pytest.approx(50 * max(0, 30 - half))
    assert gen.completion_tokens.high == pytest.approx(50 * (30 + half))
    assert gen.cost_usd.mid == pytest.approx((5000 * 1 + 1500 * 2) / 1e6)
    # 50 calls of 1 s, two at a time; the high end assumes one at a time.
    assert gen.seconds == Range(25, 25, 50)
    assert cut.records_in == gen.records_out and cut.records_out.mid == 25
    assert cut.calls == Range.point(0)
    total = totals([gen, cut])
    assert total.calls == Range.point(50) and total.tokens.mid == 6500


def test_a_fixed_size_step_does_not_scale() -> None:
    select = Select(SelectConfig(n=10))
    assert select.estimate_calls(500, CallEstimate(1.0, 0.0)) == CallEstimate(10, 0.0)
    assert select.estimate_calls(4, CallEstimate(1.0, 0.0)) == CallEstimate(4, 0.0)


def test_budget_warnings_say_would_or_may() -> None:
    total = totals([])
    assert budget_warnings(total, 100, None) == []
    tokens = Range(800, 1000, 1400)
    busy = Totals(Range.point(10), tokens, tokens, Range(1, 2, 3), Range.point(0))
    # tokens: prompt + completion = 1600 / 2000 / 2800
    (would,) = budget_warnings(busy, 1500, None)
    assert "max_tokens = 1500 would stop the run early" in would and "2,000 tokens" in would
    (may,) = budget_warnings(busy, 2500, None)
    assert "may stop" in may
    assert budget_warnings(busy, 3000, None) == []
    (cost,) = budget_warnings(busy, None, 1.5)
    assert "max_cost_usd = 1.5 would stop" in cost
