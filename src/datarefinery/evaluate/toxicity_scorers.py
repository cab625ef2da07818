"""Toxicity scorers for ``eval detox`` that are independent of the ``detox_rewrite`` gate.

The gate (``alt-profanity-check``, a linear SVM on its own word list corpus, threshold 0.5) both
decides what ``detox_rewrite`` keeps and, scored alone, would grade its own work. The scorers here
are different models trained on different data: logistic regressions fitted on a *reserved* slice
of the evaluation file itself (its toxic sentences against their human neutral rewrites), with the
decision threshold chosen on a held-out part of that slice. The reserved rows are never measured.

- ``tfidf_lr``: TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries).
- ``minilm_lr``: all-MiniLM-L6-v2 sentence embeddings (reads meaning rather than vocabulary).

No PyPI package was found that ships an independent English toxicity model usable here: detoxify
downloads its weights from a hub at run time; tox-block and toxic-comment-classifier need
TensorFlow; best-profanity is a fork of profanity-check (the same approach, pickles pinned to
scikit-learn 1.3.2); lemonify ships only generated C and states no training data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from datarefinery.errors import MissingDependencyError, UsageError

# ``eval detox`` defaults: 300 of ParaDetox's 1,000 test rows are reserved for fitting the
# independent scorers, 100 of those for choosing their thresholds.
RESERVE_SIZE = 300
RESERVE_SEED = 0
CALIBRATION_SHARE = 1 / 3


def reserve_split(ids: Sequence[str], size: int, seed: int) -> tuple[list[str], list[str]]:
    """``(reserved, measured)``: the ``size`` ids whose ``sha256(f"{seed}:{id}")`` is lowest, and
    the rest, each in the order given. A row's rank depends on its id alone, so the slice does not
    change when the file is reordered.
    """
    if size < 0:
        raise UsageError(f"the reserve is a number of rows >= 0, not {size}")
    if len(set(ids)) != len(ids):
        raise UsageError("ids must be unique to reserve a slice of them")
    ranked = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    reserved = set(ranked[:size])
    return [i for i in ids if i in reserved], [i for i in ids if i not in reserved]


@dataclass(frozen=True)
class Calibration:
    """The threshold that maximised balanced accuracy on the held-out texts, and how it did."""

    threshold: float
    balanced_accuracy: float
    toxic_recall: float
    neutral_recall: float
    toxic: int
    neutral: int


def calibrate(toxic_scores: Sequence[float], neutral_scores: Sequence[float]) -> Calibration:
    """Pick the threshold (toxic at or above) with the best balanced accuracy; among ties the one
    closest to 0.5. Candidates are midpoints between neighbouring distinct scores.
    """
    if not toxic_scores or not neutral_scores:
        raise UsageError("calibration needs toxic and neutral texts")
    values = sorted(set(toxic_scores) | set(neutral_scores))
    candidates = [(a + b) / 2 for a, b in pairwise(values)] or [0.5]
    best_key: tuple[float, float] | None = None
    threshold, tpr, tnr = 0.5, 0.0, 0.0
    for t in candidates:
        hit = sum(s >= t for s in toxic_scores) / len(toxic_scores)
        clean = sum(s < t for s in neutral_scores) / len(neutral_scores)
        key = ((hit + clean) / 2, -abs(t - 0.5))
        if best_key is None or key > best_key:
            best_key, threshold, tpr, tnr = key, t, hit, clean
    return Calibration(
        threshold=round(threshold, 4),
        balanced_accuracy=round((tpr + tnr) / 2, 4),
        toxic_recall=round(tpr, 4),
        neutral_recall=round(tnr, 4),
        toxic=len(toxic_scores),
        neutral=len(neutral_scores),
    )


@dataclass
class TrainedToxicityScorer:
    """A fitted scorer: ``score`` gives P(toxic); ``threshold`` is the calibrated cut-off."""

    name: str
    model: str
    predict: Callable[[list[str]], list[float]]
    threshold: float = 0.5
    calibration: Calibration | None = None
    trained_on: dict[str, Any] = field(default_factory=dict)

    def score(self, texts: Sequence[str]) -> list[float]:
        return self.predict(list(texts)) if texts else []

    def describe(self) -> dict[str, Any]:
        return {
            "role": "independent",
            "model": self.model,
            "threshold": self.threshold,
            "trained_on": self.trained_on,
            "calibration": vars(self.calibration) if self.calibration else None,
        }


def _labelled(toxic: Sequence[str], neutral: Sequence[str]) -> tuple[list[str], list[int]]:
    return [*toxic, *neutral], [1] * len(toxic) + [0] * len(neutral)


def fit_tfidf_scorer(
    toxic: Sequence[str], neutral: Sequence[str], *, seed: int = 0
) -> TrainedToxicityScorer:
    """TF-IDF (word 1-2-grams + char 2-5-grams) and a class-balanced logistic regression."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline, make_union
    except ImportError as exc:
        raise MissingDependencyError("the independent toxicity scorer", "embed") from exc
    texts, labels = _labelled(toxic, neutral)
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    clf = LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000, random_state=seed)
    pipeline = make_pipeline(features, clf)
    pipeline.fit(texts, labels)

    def predict(batch: list[str]) -> list[float]:
        return [float(p) for p in pipeline.predict_proba(batch)[:, 1]]

    return TrainedToxicityScorer(
        name="tfidf_lr",
        model="TF-IDF word 1-2-grams + char 2-5-grams, logistic regression (scikit-learn)",
        predict=predict,
    )


def fit_embedding_scorer(
    toxic: Sequence[str], neutral: Sequence[str], *, seed: int = 0
) -> TrainedToxicityScorer:
    """all-MiniLM-L6-v2 embeddings and a class-balanced logistic regression."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingDependencyError("the independent toxicity scorer", "embed") from exc
    from datarefinery.embeddings import Embedder

    embedder = Embedder()
    texts, labels = _labelled(toxic, neutral)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed)
    clf.fit(embedder.encode(texts), labels)

    def predict(batch: list[str]) -> list[float]:
        return [float(p) for p in clf.predict_proba(embedder.encode(batch))[:, 1]]

    return TrainedToxicityScorer(
        name="minilm_lr",
        model=f"{embedder.name} sentence embeddings, logistic regression (scikit-learn)",
        predict=predict,
    )


FITTERS: dict[str, Callable[..., TrainedToxicityScorer]] = {
    "tfidf_lr": fit_tfidf_scorer,
    "minilm_lr": fit_embedding_scorer,
}


def fit_independent_scorers(
    pairs: Sequence[tuple[str, str, Sequence[str]]],
    *,
    names: Sequence[str] = ("tfidf_lr", "minilm_lr"),
    seed: int = 0,
    calibration_share: float = CALIBRATION_SHARE,
) -> list[TrainedToxicityScorer]:
    """Fit each scorer on ``(id, toxic, neutral_references)`` rows: the first part (by the same
    id hash as the reserve, seed + 1) trains, the held-out part picks the threshold.
    """
    unknown = [n for n in names if n not in FITTERS]
    if unknown:
        raise UsageError(f"unknown toxicity scorer {unknown}; choose from {sorted(FITTERS)}")
    by_id = {row[0]: row for row in pairs}
    held = max(1, round(len(pairs) * calibration_share))
    calibration_ids, train_ids = reserve_split(list(by_id), held, seed + 1)
    train = [by_id[i] for i in train_ids]
    held_out = [by_id[i] for i in calibration_ids]
    train_toxic = [t for _, t, _ in train]
    train_neutral = [n for _, _, refs in train for n in refs]
    cal_toxic = [t for _, t, _ in held_out]
    cal_neutral = [n for _, _, refs in held_out for n in refs]
    if not train_toxic or not train_neutral or not cal_toxic or not cal_neutral:
        raise UsageError(
            f"{len(pairs)} reserved rows are too few to train and calibrate a toxicity scorer "
            "(each part needs toxic texts and neutral references); reserve more rows"
        )
    scorers = []
    for name in names:
        scorer = FITTERS[name](train_toxic, train_neutral, seed=seed)
        scorer.calibration = calibrate(scorer.score(cal_toxic), scorer.score(cal_neutral))
        scorer.threshold = scorer.calibration.threshold
        scorer.trained_on = {
            "rows": len(train),
            "toxic": len(train_toxic),
            "neutral": len(train_neutral),
            "calibration_rows": len(held_out),
        }
        scorers.append(scorer)
    return scorers
