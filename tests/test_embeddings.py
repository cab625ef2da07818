"""The packaged all-MiniLM-L6-v2 model, loaded offline."""

import pytest

from datarefinery.embeddings import Embedder, cosine

pytestmark = pytest.mark.slow


def test_similar_sentences_are_closer_than_unrelated_ones() -> None:
    embedder = Embedder()
    vectors = embedder.encode(
        [
            "The movie was wonderful and I loved it.",
            "I really enjoyed this film, it was great.",
            "The invoice is due at the end of the month.",
        ]
    )
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    close = float(cosine(vectors[:1], vectors[1:2])[0])
    far = float(cosine(vectors[:1], vectors[2:3])[0])
    assert close > 0.5 > far
    assert embedder.encode([]).shape == (0, 384)
