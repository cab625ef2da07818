"""Fidelity: how close a dataset's distribution is to real data's.

All three work on sentence embeddings (rows L2-normalized):

- ``mmd_rbf``: squared maximum mean discrepancy with a Gaussian kernel (bandwidth: the median
  pairwise distance of the pooled sample), unbiased estimate; about 0 for samples of one
  distribution.
- ``frechet_distance``: the Fréchet distance between Gaussians fitted to the two samples
  (the FID formula on text embeddings); 0 for identical moments.
- ``classifier_auc``: a classifier two-sample test -- cross-validated ROC AUC of logistic
  regression telling the two samples apart on equal-size subsamples; 0.5 means it cannot, 1.0 means
  the synthetic data is trivially recognizable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from datarefinery.errors import MissingDependencyError

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _squared_distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    aa = np.sum(a * a, axis=1)[:, None]
    bb = np.sum(b * b, axis=1)[None, :]
    return np.asarray(np.maximum(aa + bb - 2 * a @ b.T, 0.0))


def mmd_rbf(
    x: NDArray[np.float32], y: NDArray[np.float32], *, bandwidth: float | None = None
) -> float:
    """Unbiased MMD² between the rows of ``x`` and ``y`` with k(a, b) = exp(-|a-b|² / (2σ²))."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    dxx, dyy, dxy = _squared_distances(a, a), _squared_distances(b, b), _squared_distances(a, b)
    if bandwidth is None:
        pooled = np.concatenate([dxx[np.triu_indices(len(a), 1)], dxy.ravel()])
        median = float(np.median(np.sqrt(pooled)))
        bandwidth = median if median > 0 else 1.0
    gamma = 1.0 / (2 * bandwidth**2)
    kxx, kyy, kxy = np.exp(-gamma * dxx), np.exp(-gamma * dyy), np.exp(-gamma * dxy)
    m, n = len(a), len(b)
    term_x = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    term_y = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(term_x + term_y - 2 * kxy.mean())


def frechet_distance(x: NDArray[np.float32], y: NDArray[np.float32]) -> float:
    """|μx − μy|² + Tr(Σx + Σy − 2 (Σx Σy)^½) between Gaussians fitted to the rows."""
    try:
        from scipy import linalg
    except ImportError as exc:
        raise MissingDependencyError("the Fréchet distance", "embed") from exc
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: regularize, as FID implementations do
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = np.real(root)
    value = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * root))
    return max(value, 0.0)


def classifier_auc(
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    *,
    folds: int = 5,
    seed: int = 0,
    max_per_side: int = 2000,
) -> float:
    """Cross-validated ROC AUC of a logistic regression separating rows of ``x`` from rows of
    ``y``; both sides are subsampled (seeded) to the same size so 0.5 is the chance level.
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        raise MissingDependencyError("the classifier two-sample test", "embed") from exc
    size = min(len(x), len(y), max_per_side)
    if size < folds:
        return float("nan")
    rng = np.random.default_rng(seed)
    a = np.asarray(x)[rng.choice(len(x), size, replace=False)]
    b = np.asarray(y)[rng.choice(len(y), size, replace=False)]
    features = np.vstack([a, b])
    target = np.concatenate([np.ones(size), np.zeros(size)])
    scores = np.zeros(len(target))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(features, target):
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(features[train], target[train])
        scores[test] = model.predict_proba(features[test])[:, 1]
    return float(roc_auc_score(target, scores))
