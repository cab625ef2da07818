"""Small models trained on records: the learner in S3, the utility metric, the adversarial filter.

Every model has the same verbs: ``fit(records)`` and ``predict_proba(records)`` (columns in the
order of ``classes_``). Inputs are the task's text fields; for sentence pairs (NLI) the two fields
are encoded jointly -- TF-IDF of "premise [SEP] hypothesis" plus word-overlap features, or the
embedding concatenation [u, v, |u - v|, u * v] -- so the model sees the relation, not two bags of
words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import Field

from datarefinery.config import StrictModel
from datarefinery.errors import MissingDependencyError, UsageError
from datarefinery.records import Record

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from datarefinery.embeddings import Embedder

ModelKind = Literal["tfidf-lr", "embedding-lr", "transformer"]
BUNDLED_WEIGHTS = "minilm"


class LinearModelOptions(StrictModel):
    """A linear small model: features (TF-IDF or sentence embeddings) + logistic regression."""

    kind: Literal["tfidf-lr", "embedding-lr"]
    c: float = Field(
        default=1.0,
        gt=0,
        le=1e6,
        description="inverse regularisation strength of the logistic regression (smaller: "
        "stronger regularisation)",
    )


class TransformerOptions(StrictModel):
    """A fine-tuned local encoder (``models.finetune``)."""

    kind: Literal["transformer"]
    weights: str = Field(
        default=BUNDLED_WEIGHTS,
        description="a local Hugging Face model folder, or 'minilm' for the bundled "
        "all-MiniLM-L6-v2",
    )
    epochs: int = Field(default=3, ge=1, le=100)
    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    batch_size: int = Field(default=16, ge=1, le=4096)
    max_length: int = Field(default=128, ge=8, le=8192)

    def weights_folder(self) -> str | None:
        """The local model folder, or ``None`` for the bundled weights."""
        return None if self.weights == BUNDLED_WEIGHTS else self.weights


SmallModelOptions = Annotated[LinearModelOptions | TransformerOptions, Field(discriminator="kind")]


def small_model_options(
    value: ModelKind | LinearModelOptions | TransformerOptions,
) -> LinearModelOptions | TransformerOptions:
    """A bare kind as the options of that kind with their defaults (a spec may give either)."""
    if isinstance(value, str):
        if value == "transformer":
            return TransformerOptions(kind=value)
        if value in ("tfidf-lr", "embedding-lr"):
            return LinearModelOptions(kind=value)
        raise UsageError(
            f"unknown small model {value!r}: use tfidf-lr, embedding-lr or transformer"
        )
    return value


class SmallModel(Protocol):
    classes_: list[str]

    def fit(self, records: Sequence[Record]) -> SmallModel: ...

    def predict_proba(self, records: Sequence[Record]) -> NDArray[np.float64]: ...

    def predict(self, records: Sequence[Record]) -> list[str]: ...


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("small models", "embed") from exc


class _Base:
    def __init__(
        self,
        text_fields: Sequence[str],
        label_field: str = "label",
        *,
        seed: int = 0,
        c: float = 1.0,
    ) -> None:
        if not 1 <= len(text_fields) <= 2:
            raise UsageError("a small model reads one text field, or two for a sentence pair")
        self.text_fields = list(text_fields)
        self.label_field = label_field
        self.seed = seed
        self.c = c
        self.classes_: list[str] = []
        self._clf: Any = None

    def _labels(self, records: Sequence[Record]) -> list[str]:
        return [str(r.fields[self.label_field]) for r in records]

    def _features(self, records: Sequence[Record], fit: bool) -> Any:
        raise NotImplementedError

    def fit(self, records: Sequence[Record]) -> _Base:
        _require_sklearn()
        from sklearn.linear_model import LogisticRegression

        labels = self._labels(records)
        if len(set(labels)) < 2:
            raise UsageError(
                f"cannot train a classifier on {len(records)} records with fewer than two labels "
                f"({sorted(set(labels))})"
            )
        features = self._features(records, fit=True)
        self._clf = LogisticRegression(C=self.c, max_iter=2000, random_state=self.seed)
        self._clf.fit(features, labels)
        self.classes_ = [str(c) for c in self._clf.classes_]
        return self

    def predict_proba(self, records: Sequence[Record]) -> NDArray[np.float64]:
        if self._clf is None:
            raise RuntimeError("fit the model first")
        if not records:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(self._clf.predict_proba(self._features(records, fit=False)))

    def predict(self, records: Sequence[Record]) -> list[str]:
        proba = self.predict_proba(records)
        return [self.classes_[i] for i in np.argmax(proba, axis=1)]


class TfidfLR(_Base):
    """TF-IDF of word 1-2-grams + logistic regression (pairs: joint text + overlap features)."""

    def _joined(self, records: Sequence[Record]) -> list[str]:
        if len(self.text_fields) == 1:
            return [str(r.fields[self.text_fields[0]]) for r in records]
        a, b = self.text_fields
        return [f"{r.fields[a]} [SEP] {r.fields[b]}" for r in records]

    def _features(self, records: Sequence[Record], fit: bool) -> Any:
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = self._joined(records)
        if fit:
            self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
            matrix = self._vectorizer.fit_transform(texts)
        else:
            matrix = self._vectorizer.transform(texts)
        if len(self.text_fields) == 1:
            return matrix
        return hstack([matrix, csr_matrix(_overlap_features(records, self.text_fields))]).tocsr()


class EmbeddingLR(_Base):
    """Sentence embeddings (all-MiniLM-L6-v2) + logistic regression."""

    def __init__(
        self,
        text_fields: Sequence[str],
        label_field: str = "label",
        *,
        embedder: Embedder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(text_fields, label_field, **kwargs)
        from datarefinery.embeddings import Embedder

        # A caller that already embedded the texts (the evaluation report) passes a caching one.
        self._embedder = embedder or Embedder()

    def _features(self, records: Sequence[Record], fit: bool) -> Any:
        first = self._embedder.encode([str(r.fields[self.text_fields[0]]) for r in records])
        if len(self.text_fields) == 1:
            return first
        second = self._embedder.encode([str(r.fields[self.text_fields[1]]) for r in records])
        return np.hstack([first, second, np.abs(first - second), first * second])


def _overlap_features(records: Sequence[Record], fields: Sequence[str]) -> NDArray[np.float64]:
    """Share of the second text's words found in the first, and the length ratio."""
    from datarefinery.text import lower_words_and_marks

    rows = []
    for record in records:
        a = set(lower_words_and_marks(str(record.fields[fields[0]])))
        b = lower_words_and_marks(str(record.fields[fields[1]]))
        overlap = sum(1 for w in b if w in a) / len(b) if b else 0.0
        rows.append([overlap, len(b) / max(1, len(a))])
    return np.asarray(rows, dtype=np.float64)


def make_small_model(
    kind: ModelKind | LinearModelOptions | TransformerOptions,
    text_fields: Sequence[str],
    label_field: str = "label",
    *,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> SmallModel:
    """The small model ``kind`` names (a kind with default options, or the options)."""
    options = small_model_options(kind)
    if isinstance(options, TransformerOptions):
        from datarefinery.models.finetune import TransformerClassifier

        return TransformerClassifier(
            text_fields,
            label_field,
            seed=seed,
            weights=options.weights_folder(),
            epochs=options.epochs,
            batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            max_length=options.max_length,
        )
    if options.kind == "tfidf-lr":
        return TfidfLR(text_fields, label_field, seed=seed, c=options.c)
    return EmbeddingLR(text_fields, label_field, seed=seed, c=options.c, embedder=embedder)


def accuracy(model: SmallModel, records: Sequence[Record], label_field: str = "label") -> float:
    if not records:
        return 0.0
    predicted = model.predict(records)
    return sum(
        p == str(r.fields[label_field]) for p, r in zip(predicted, records, strict=True)
    ) / len(records)
