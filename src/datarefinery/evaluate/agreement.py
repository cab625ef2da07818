"""The statistics behind judge calibration: Cohen's kappa with a bootstrap interval, the threshold
scan, and the Wilson interval of a share. Pure functions over plain values, no I/O.

Why a bootstrap over records for kappa's interval, not the large-sample standard error of
Fleiss, Cohen and Everitt (1969): people review tens to a few hundred records, where the normal
approximation is poor and its interval can pass 1 when agreement is high; resampling the records
stays inside [-1, 1], treats a many-label labeller and a keep/reject judge alike, and with a fixed
seed prints the same interval on every run.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Kappa of (person, model) pairs: (p_o - p_e) / (1 - p_e); ``None`` when undefined (no
    pairs, or both raters always gave the one same answer, so p_e = 1).
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(count * second[value] for value, count in first.items()) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def _percentile(sorted_values: list[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def kappa_interval(
    pairs: Sequence[tuple[str, str]],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float] | None:
    """95 % percentile-bootstrap interval of kappa, resampling the records with replacement.

    Resamples where kappa is undefined (every pair the same answer) are left out; ``None`` when
    more than half are, since the interval would then describe a different sample.
    """
    if not pairs:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        value = cohen_kappa(rng.choices(pairs, k=len(pairs)))
        if value is not None:
            values.append(value)
    if len(values) * 2 < resamples:
        return None
    values.sort()
    return _percentile(values, 0.025), _percentile(values, 0.975)


def wilson_interval(successes: int, n: int) -> tuple[float, float] | None:
    """95 % Wilson score interval of a binomial share (better than the Wald interval near 0 or 1
    and at small n).
    """
    if n == 0:
        return None
    share = successes / n
    denominator = 1 + Z95**2 / n
    centre = (share + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(share * (1 - share) / n + Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def balanced_accuracy(pairs: Sequence[tuple[str, str]], positive: str) -> float | None:
    """Mean of the recall on the person's positives and on their negatives (``None`` when the
    person gave only one of the two).
    """
    recalls = []
    for side in (True, False):
        rows = [(a, b) for a, b in pairs if (a == positive) is side]
        if not rows:
            return None
        recalls.append(sum(1 for a, b in rows if a == b) / len(rows))
    return sum(recalls) / 2


@dataclass(frozen=True, slots=True)
class ThresholdFit:
    threshold: float
    kappa: float | None
    balanced_accuracy: float | None


def keep_pairs(scored: Sequence[tuple[float, bool]], threshold: float) -> list[tuple[str, str]]:
    """(person, judge) answers as ``keep`` / ``drop``: the judge keeps a score >= threshold."""
    return [
        ("keep" if kept else "drop", "keep" if score >= threshold else "drop")
        for score, kept in scored
    ]


def best_threshold(scored: Sequence[tuple[float, bool]]) -> ThresholdFit | None:
    """The threshold, among the distinct scores, whose keep/drop agrees best with the people.

    It maximises kappa, the figure reported beside it, so the choice and its agreement are the
    same measure; balanced accuracy is given too. Among equal kappas the lowest threshold wins:
    it keeps the most records. ``None`` when the people kept everything or dropped everything:
    then no threshold can agree better than chance.
    """
    if len({kept for _, kept in scored}) < 2:
        return None
    best: ThresholdFit | None = None
    for threshold in sorted({score for score, _ in scored}):
        pairs = keep_pairs(scored, threshold)
        kappa = cohen_kappa(pairs)
        if kappa is None:
            continue
        if best is None or best.kappa is None or kappa > best.kappa + 1e-12:
            best = ThresholdFit(threshold, kappa, balanced_accuracy(pairs, "keep"))
    return best
