"""Diversity metrics over a list of texts.

``distinct_n`` is the share of unique n-grams among all n-grams (Li et al. 2016), over the whole
corpus. Embedding dispersion is the mean pairwise L2 distance between normalized sentence
embeddings (on a seeded sample of pairs when the set is large), which is 0 for identical texts and
√2 for orthogonal ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _TOKEN.findall(text.lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams across ``texts`` (0.0 when there are none)."""
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        tokens = tokenize(text)
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


def mean_pairwise_distance(
    vectors: NDArray[np.float32], *, max_pairs: int = 200_000, seed: int = 0
) -> float:
    """Mean L2 distance over all pairs of rows, or over ``max_pairs`` random pairs."""
    count = len(vectors)
    if count < 2:
        return 0.0
    all_pairs = count * (count - 1) // 2
    if all_pairs <= max_pairs:
        rows, cols = np.triu_indices(count, k=1)
    else:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, count, size=max_pairs)
        cols = rng.integers(0, count - 1, size=max_pairs)
        cols = cols + (cols >= rows)  # never pair a row with itself
    diffs = vectors[rows] - vectors[cols]
    return float(np.mean(np.linalg.norm(diffs, axis=1)))
