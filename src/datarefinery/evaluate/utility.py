"""Utility: does a model trained on the dataset work on real data?

Train each small model (``models.smallmodel``: TF-IDF + logistic regression, embedding + logistic
regression) on the dataset, test it on the real labeled set, and report accuracy and macro-F1; when
a real training split is given, the same model trained on it is the reference ("gold") to compare
with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from datarefinery.errors import UsageError
from datarefinery.models.smallmodel import ModelKind, make_small_model
from datarefinery.records import Record

if TYPE_CHECKING:
    from datarefinery.embeddings import Embedder


def macro_f1(gold: Sequence[str], predicted: Sequence[str]) -> float:
    """Unweighted mean of the per-label F1 over the labels that occur in ``gold`` or
    ``predicted`` (a label never predicted and never present does not count).
    """
    labels = sorted(set(gold) | set(predicted))
    if not labels:
        return 0.0
    scores = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p != label)
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def train_and_test(
    train: Sequence[Record],
    test: Sequence[Record],
    *,
    kind: ModelKind,
    text_fields: Sequence[str],
    label_field: str = "label",
    seed: int = 0,
    embedder: Embedder | None = None,
) -> dict[str, float]:
    """Accuracy and macro-F1 on ``test`` of ``kind`` trained on ``train``."""
    if not test:
        raise UsageError("the real test set is empty")
    model = make_small_model(kind, text_fields, label_field, seed=seed, embedder=embedder)
    model.fit(train)
    predicted = model.predict(test)
    gold = [str(r.fields[label_field]) for r in test]
    accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    return {
        "accuracy": round(accuracy, 4),
        "macro_f1": round(macro_f1(gold, predicted), 4),
        "train_size": len(train),
        "test_size": len(test),
    }


def utility(
    dataset: Sequence[Record],
    real_test: Sequence[Record],
    *,
    text_fields: Sequence[str],
    label_field: str = "label",
    real_train: Sequence[Record] | None = None,
    kinds: Sequence[ModelKind] = ("tfidf-lr", "embedding-lr"),
    seed: int = 0,
    embedder: Embedder | None = None,
) -> dict[str, Any]:
    """Per model kind: ``{"dataset": scores, "real_reference": scores | None}``; a kind that
    cannot be trained (one label only) reports its error instead of scores.
    """
    result: dict[str, Any] = {}
    for kind in kinds:
        entry: dict[str, Any] = {}
        sources = [("dataset", dataset)]
        if real_train:
            sources.append(("real_reference", real_train))
        for name, train in sources:
            try:
                entry[name] = train_and_test(
                    train,
                    real_test,
                    kind=kind,
                    text_fields=text_fields,
                    label_field=label_field,
                    seed=seed,
                    embedder=embedder,
                )
            except UsageError as exc:
                entry[name] = {"error": str(exc)}
        result[kind] = entry
    return result
