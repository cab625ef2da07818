import numpy as np
import pytest

from datarefinery.evaluate.diversity import distinct_n, mean_pairwise_distance, tokenize


def test_tokenize_splits_words_and_punctuation() -> None:
    assert tokenize("Great film, truly!") == ["great", "film", ",", "truly", "!"]


def test_distinct_n_on_a_hand_checked_list() -> None:
    texts = ["the cat sat", "the cat ran"]
    # unigrams: the cat sat the cat ran -> 4 unique of 6
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    # bigrams: (the cat) (cat sat) (the cat) (cat ran) -> 3 unique of 4
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(texts, 3) == pytest.approx(2 / 2)
    assert distinct_n(["same words"] * 4, 2) == pytest.approx(1 / 4)
    assert distinct_n(["one"], 2) == 0.0


def test_mean_pairwise_distance_exact_and_sampled() -> None:
    vectors = np.eye(3, dtype=np.float32)  # orthogonal unit vectors: every distance is sqrt(2)
    assert mean_pairwise_distance(vectors) == pytest.approx(np.sqrt(2))
    assert mean_pairwise_distance(np.ones((5, 2), dtype=np.float32)) == 0.0
    assert mean_pairwise_distance(vectors, max_pairs=2) == pytest.approx(np.sqrt(2))
    assert mean_pairwise_distance(vectors[:1]) == 0.0
