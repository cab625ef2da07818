"""Out-of-fold predictions of a small model over a dataset (cross-fitting).

Each record is scored by a model that never saw it, trained on the other folds -- which is what
both the classifier consistency check and adversarial filtering need.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from datarefinery.errors import UsageError
from datarefinery.models.smallmodel import ModelKind, make_small_model
from datarefinery.records import Record

if TYPE_CHECKING:
    from numpy.typing import NDArray


def out_of_fold_proba(
    records: Sequence[Record],
    *,
    kind: ModelKind,
    text_fields: Sequence[str],
    label_field: str,
    folds: int,
    seed: int,
) -> tuple[NDArray[np.float64], list[str]]:
    """Probabilities (rows = records, columns = the returned labels, sorted) from stratified
    ``folds``-fold cross-fitting. Folds shrink to the rarest label's count; fewer than two records
    of a label, or fewer than two labels, is a usage error.
    """
    labels = [str(r.fields[label_field]) for r in records]
    counts = Counter(labels)
    if len(counts) < 2 or min(counts.values()) < 2:
        raise UsageError(
            f"cross-fitting a classifier needs at least two labels with two records each; "
            f"got {dict(counts)}"
        )
    from sklearn.model_selection import StratifiedKFold

    folds = max(2, min(folds, min(counts.values())))
    classes = sorted(counts)
    proba = np.zeros((len(records), len(classes)))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(np.zeros(len(labels)), labels):
        model = make_small_model(kind, text_fields, label_field, seed=seed)
        model.fit([records[i] for i in train_index])
        fold_proba = model.predict_proba([records[i] for i in test_index])
        for column, label in enumerate(model.classes_):
            proba[test_index, classes.index(label)] = fold_proba[:, column]
    return proba, classes
