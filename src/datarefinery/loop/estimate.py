"""The arithmetic of ``refinery plan``: from what each step did on a small sample to what the run
will do.

Every quantity is a ``Range`` (low, estimate, high):

- per input record, a step's kept records and model calls; per model call, its prompt and
  completion tokens and its latency. Each is a 95 % Student-t interval of the sample's mean
  (clipped at 0); a single observation gives a point, with no spread.
- a step's records and calls are its input count times those per-record rates
  (``Step.estimate_calls``, proportional unless the step says otherwise); its input count is the
  previous step's output, so the ranges widen step by step.
- tokens are calls times tokens per call, cost is ``pricing`` on tokens, and wall time is calls
  times latency spread over the calls that run at once; its high end assumes they run one at a
  time.

Low ends multiply low ends and high ends high ends, so a range holds wherever the true rates lie
inside their intervals.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from datarefinery.llm.base import Usage
from datarefinery.llm.limits import Pricing
from datarefinery.steps.base import CallEstimate, Step

# Student t, two-sided 95 % (the 0.975 quantile), for 1 to 30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(degrees: int) -> float:
    return _T975[degrees - 1] if degrees <= len(_T975) else 1.96


@dataclass(frozen=True, slots=True)
class Range:
    """An estimate and the range it is sure of."""

    low: float
    mid: float
    high: float

    @classmethod
    def point(cls, value: float) -> Range:
        return cls(value, value, value)

    def __add__(self, other: Range) -> Range:
        return Range(self.low + other.low, self.mid + other.mid, self.high + other.high)

    def __mul__(self, other: Range) -> Range:
        return Range(self.low * other.low, self.mid * other.mid, self.high * other.high)


ZERO = Range.point(0.0)


def mean_interval(values: Sequence[float]) -> Range:
    """The sample mean and its 95 % t-interval, clipped at 0 (every quantity here is a count)."""
    if not values:
        return ZERO
    mean = statistics.fmean(values)
    if len(values) == 1:
        return Range.point(mean)
    half = t975(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Range(max(0.0, mean - half), mean, mean + half)


@dataclass
class StepSample:
    """What one step did on its sample: per sampled input record, the records it kept, its model
    calls and its seconds; per model call, tokens and latency. A whole-input step is sampled as
    one batch, so its per-record lists hold one entry, the batch's average.
    """

    name: str
    step: str
    uses_llm: bool
    records: int = 0
    kept: list[float] = field(default_factory=list)
    calls: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    cached_calls: int = 0
    prompt: str | None = None
    failed: str | None = None  # why the sample could not be processed


@dataclass(frozen=True)
class StepEstimate:
    """One step's estimate for the whole run."""

    name: str
    step: str
    uses_llm: bool
    records_in: Range
    records_out: Range
    calls: Range
    prompt_tokens: Range
    completion_tokens: Range
    cost_usd: Range
    seconds: Range
    sampled: int
    sample_calls: int
    cached_calls: int
    prompt: str | None = None

    @property
    def tokens(self) -> Range:
        return self.prompt_tokens + self.completion_tokens


def _cost(pricing: Pricing, prompt: float, completion: float) -> float:
    return pricing.cost(Usage(round(prompt), round(completion)))


def estimate_step(
    step: Step[Any], sample: StepSample, records_in: Range, pricing: Pricing, parallel: int
) -> StepEstimate:
    """Scale ``sample`` to ``records_in`` input records. ``parallel`` is how many model calls run
    at once in the run (the estimate's wall time divides by it; the high end does not).
    """
    kept, calls = mean_interval(sample.kept), mean_interval(sample.calls)
    low = step.estimate_calls(records_in.low, CallEstimate(kept.low, calls.low))
    mid = step.estimate_calls(records_in.mid, CallEstimate(kept.mid, calls.mid))
    high = step.estimate_calls(records_in.high, CallEstimate(kept.high, calls.high))
    records_out = Range(low.records_out, mid.records_out, high.records_out)
    total_calls = Range(low.calls, mid.calls, high.calls)
    prompt = total_calls * mean_interval(sample.prompt_tokens)
    completion = total_calls * mean_interval(sample.completion_tokens)
    cost = Range(
        _cost(pricing, prompt.low, completion.low),
        _cost(pricing, prompt.mid, completion.mid),
        _cost(pricing, prompt.high, completion.high),
    )
    if sample.uses_llm:
        latency = total_calls * mean_interval(sample.latency_s)
        seconds = Range(latency.low / parallel, latency.mid / parallel, latency.high)
    else:
        seconds = records_in * mean_interval(sample.seconds)
    return StepEstimate(
        name=sample.name,
        step=sample.step,
        uses_llm=sample.uses_llm,
        records_in=records_in,
        records_out=records_out,
        calls=total_calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cost_usd=cost,
        seconds=seconds,
        sampled=sample.records,
        sample_calls=len(sample.prompt_tokens),
        cached_calls=sample.cached_calls,
        prompt=sample.prompt,
    )


def estimate_run(
    steps: Sequence[Step[Any]],
    samples: Sequence[StepSample],
    first_input: int,
    pricing: Pricing,
    parallel: int,
) -> list[StepEstimate]:
    """Every step's estimate, each step's input being the previous step's output."""
    estimates: list[StepEstimate] = []
    records_in = Range.point(float(first_input))
    for step, sample in zip(steps, samples, strict=True):
        estimate = estimate_step(step, sample, records_in, pricing, parallel)
        estimates.append(estimate)
        records_in = estimate.records_out
    return estimates


@dataclass(frozen=True)
class Totals:
    calls: Range
    prompt_tokens: Range
    completion_tokens: Range
    cost_usd: Range
    seconds: Range

    @property
    def tokens(self) -> Range:
        return self.prompt_tokens + self.completion_tokens


def totals(estimates: Sequence[StepEstimate]) -> Totals:
    total = Totals(ZERO, ZERO, ZERO, ZERO, ZERO)
    for e in estimates:
        total = Totals(
            total.calls + e.calls,
            total.prompt_tokens + e.prompt_tokens,
            total.completion_tokens + e.completion_tokens,
            total.cost_usd + e.cost_usd,
            total.seconds + e.seconds,
        )
    return total


def budget_warnings(total: Totals, max_tokens: int | None, max_cost_usd: float | None) -> list[str]:
    """Warnings for a budget the run would (estimate above it) or could (high end above it)
    exceed. The run counts the sample's calls against its budget too (it spent them), so the
    whole run's estimate is what the budget must cover.
    """
    warnings = []
    checks: list[tuple[str, float | None, Range, str]] = [
        ("max_tokens", max_tokens, total.tokens, "{:,.0f} tokens"),
        ("max_cost_usd", max_cost_usd, total.cost_usd, "${:,.4f}"),
    ]
    for name, limit, needed, unit in checks:
        if limit is None:
            continue
        shown = (
            f"{unit.format(needed.mid)} ({unit.format(needed.low)} to {unit.format(needed.high)})"
        )
        if needed.mid > limit:
            warnings.append(
                f"budget: llm.budget.{name} = {limit:g} would stop the run early: it needs about "
                f"{shown}. Raise the budget or make the run smaller."
            )
        elif needed.high > limit:
            warnings.append(
                f"budget: llm.budget.{name} = {limit:g} may stop the run early: it needs about "
                f"{shown}."
            )
    return warnings
