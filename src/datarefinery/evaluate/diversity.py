"""Diversity metrics over a list of texts (and their embeddings, labels and conditioning).

``distinct_n`` is the share of unique n-grams among all n-grams (Li et al. 2016), over the whole
corpus. Embedding dispersion is the mean pairwise L2 distance between normalized sentence
embeddings (on a seeded sample of pairs when the set is large), which is 0 for identical texts and
√2 for orthogonal ones. The rest: self-ROUGE-2 (how much texts share phrasing), centroid
dispersion, the Vendi score, length statistics, label balance and attribute coverage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from datarefinery.text import lower_words_and_marks, rouge2_f1

if TYPE_CHECKING:
    from numpy.typing import NDArray


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Unique n-grams / total n-grams across ``texts`` (0.0 when there are none)."""
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        tokens = lower_words_and_marks(text)
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
    # In chunks: 200,000 pairs of 384-d vectors at once took three arrays of 300 MB each.
    norms = np.empty(len(rows), dtype=vectors.dtype)
    for start in range(0, len(rows), _PAIR_CHUNK):
        stop = start + _PAIR_CHUNK
        diffs = vectors[rows[start:stop]] - vectors[cols[start:stop]]
        norms[start:stop] = np.linalg.norm(diffs, axis=1)
    return float(np.mean(norms))


_PAIR_CHUNK = 8192


def self_rouge2(texts: Sequence[str], *, max_pairs: int = 2000, seed: int = 0) -> float:
    """Mean ROUGE-2 F1 between texts of the set (all pairs, or ``max_pairs`` seeded random
    pairs): high means the texts repeat each other's phrasing. Lower is more diverse.
    """
    count = len(texts)
    if count < 2:
        return 0.0
    if count * (count - 1) // 2 <= max_pairs:
        pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    else:
        rng = np.random.default_rng(seed)
        rows = rng.integers(0, count, size=max_pairs)
        cols = rng.integers(0, count - 1, size=max_pairs)
        cols = cols + (cols >= rows)
        pairs = list(zip(rows.tolist(), cols.tolist(), strict=True))
    return float(np.mean([rouge2_f1(texts[i], texts[j]) for i, j in pairs]))


def centroid_dispersion(vectors: NDArray[np.float32]) -> float:
    """Mean L2 distance of the embeddings to their centroid (0 when all are the same)."""
    if len(vectors) == 0:
        return 0.0
    centroid = vectors.mean(axis=0)
    return float(np.mean(np.linalg.norm(vectors - centroid, axis=1)))


def vendi_score(vectors: NDArray[np.float32]) -> float:
    """The Vendi score (Friedman & Dieng 2023) with the cosine kernel: exp of the entropy of the
    eigenvalues of K/n, the "effective number of distinct items" (1 for n copies of one text, n
    for n orthogonal ones). Computed from the d x d matrix X^T X / n, which has the same non-zero
    eigenvalues as K/n, so it costs O(n d^2), not O(n^3).
    """
    count = len(vectors)
    if count == 0:
        return 0.0
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    eigenvalues = np.linalg.eigvalsh(x.T @ x / count)
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-np.sum(eigenvalues * np.log(eigenvalues))))


def length_stats(texts: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation, min, median, 90th percentile and max of the lengths in
    characters and in words (whitespace-separated).
    """
    stats: dict[str, dict[str, float]] = {}
    for unit, lengths in (
        ("chars", [len(t) for t in texts]),
        ("words", [len(t.split()) for t in texts]),
    ):
        values = np.asarray(lengths or [0], dtype=np.float64)
        stats[unit] = {
            "mean": round(float(values.mean()), 2),
            "std": round(float(values.std()), 2),
            "min": float(values.min()),
            "p50": round(float(np.percentile(values, 50)), 2),
            "p90": round(float(np.percentile(values, 90)), 2),
            "max": float(values.max()),
        }
    return stats


def label_balance(labels: Sequence[str]) -> dict[str, Any]:
    """Counts per label, the normalized entropy (1.0 = perfectly balanced, 0.0 = one label) and
    the majority / minority ratio.
    """
    counts = Counter(str(label) for label in labels)
    total = sum(counts.values())
    if not total:
        return {"counts": {}, "normalized_entropy": 0.0, "imbalance_ratio": 0.0}
    shares = np.asarray([c / total for c in counts.values()])
    entropy = float(-np.sum(shares * np.log(shares)))
    normalized = float(entropy / np.log(len(counts))) if len(counts) > 1 else 0.0
    return {
        "counts": dict(sorted(counts.items())),
        "normalized_entropy": round(normalized, 4),
        "imbalance_ratio": round(max(counts.values()) / min(counts.values()), 4),
    }


def attribute_coverage(
    conditionings: Sequence[dict[str, Any]], attributes: dict[str, list[str]]
) -> dict[str, Any]:
    """How much of a declared attribute grid the records cover: per attribute, the share of its
    values that some record was conditioned on; and the share of the full grid's combinations
    (the product of all values) that occur. ``conditionings`` are the records' provenance
    conditioning mappings.
    """
    if not attributes:
        return {}
    per_attribute: dict[str, float] = {}
    for name, values in attributes.items():
        seen = {str(c.get(name)) for c in conditionings if name in c}
        per_attribute[name] = round(len(seen & set(values)) / len(values), 4) if values else 0.0
    names = sorted(attributes)
    grid = 1
    for name in names:
        grid *= max(1, len(attributes[name]))
    combos = {
        tuple(str(c.get(n)) for n in names)
        for c in conditionings
        if all(str(c.get(n)) in attributes[n] for n in names)
    }
    return {"per_attribute": per_attribute, "grid_coverage": round(len(combos) / grid, 4)}
