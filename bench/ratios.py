"""How every benchmark reports a comparison: the ratio of the median rates over the rounds, with
the spread (each side's min-max rate and the range of the per-round ratios).

A ratio of medians compares two typical rates; a median of per-round ratios can land on a round
where one side was unusually slow. The per-round range shows how much the machine's noise moves
the comparison. Rates are "more is better" (records/s, tokens/s, docs/s); for times, pass
``work / seconds``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

MIN_ROUNDS = 5  # the house rule: a reported ratio comes from at least this many rounds


def ratio_of_medians(
    numerator: Sequence[float], denominator: Sequence[float], *, digits: int = 3
) -> dict[str, Any]:
    """``median(numerator) / median(denominator)`` and its spread. The per-round ratios pair the
    rates round by round (both sides measured back to back), so both lists must be as long."""
    if not numerator or len(numerator) != len(denominator):
        raise ValueError("one rate per round on each side, as many rounds on both")
    top, bottom = statistics.median(numerator), statistics.median(denominator)
    per_round = [n / d for n, d in zip(numerator, denominator, strict=True)]
    return {
        "ratio": round(top / bottom, digits),
        "median": [round(top, 2), round(bottom, 2)],
        "range": [
            [round(min(numerator), 2), round(max(numerator), 2)],
            [round(min(denominator), 2), round(max(denominator), 2)],
        ],
        "per_round_ratio_range": [round(min(per_round), digits), round(max(per_round), digits)],
        "rounds": len(per_round),
        "enough_rounds": len(per_round) >= MIN_ROUNDS,
    }


def describe(figures: dict[str, Any], names: tuple[str, str], unit: str) -> str:
    """One line: ``2.65x (747.8 vs 281.7 records/s; ours 723.9-865.5, ...; per round 2.6-3.1x;
    3 rounds, fewer than 5)``."""
    (lo_a, hi_a), (lo_b, hi_b) = figures["range"]
    low, high = figures["per_round_ratio_range"]
    rounds = figures["rounds"]
    note = "" if figures["enough_rounds"] else f", fewer than {MIN_ROUNDS}"
    return (
        f"{figures['ratio']:.2f}x ({figures['median'][0]:.1f} vs {figures['median'][1]:.1f} "
        f"{unit}, medians; {names[0]} {lo_a:.1f}-{hi_a:.1f}, {names[1]} {lo_b:.1f}-{hi_b:.1f}; "
        f"per round {low:.2f}-{high:.2f}x; {rounds} rounds{note})"
    )
