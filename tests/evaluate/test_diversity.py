import numpy as np
import pytest

from datarefinery.evaluate.diversity import distinct_n, mean_pairwise_distance


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


def test_rouge2_and_self_rouge2_hand_checked() -> None:
    from datarefinery.evaluate.diversity import self_rouge2
    from datarefinery.text import rouge2_f1

    # bigrams (the cat)(cat sat) vs (the cat)(cat ran): 1 shared of 2 each -> P = R = F = 0.5
    assert rouge2_f1("the cat sat", "the cat ran") == pytest.approx(0.5)
    assert rouge2_f1("a b", "c d") == 0.0 and rouge2_f1("one", "one") == 0.0
    # pairs: (0,1) = 1.0, (0,2) = 0, (1,2) = 0 -> mean 1/3
    assert self_rouge2(["a b c", "a b c", "x y z"]) == pytest.approx(1 / 3)
    assert self_rouge2(["a b c", "a b c", "x y z"], max_pairs=2) >= 0.0


def test_dispersion_and_vendi_hand_checked() -> None:
    from datarefinery.evaluate.diversity import centroid_dispersion, vendi_score

    eye = np.eye(4, dtype=np.float32)
    # centroid (1/4, ...): distance of each unit vector = sqrt((3/4)^2 + 3 (1/4)^2) = sqrt(3)/2
    assert centroid_dispersion(eye) == pytest.approx(np.sqrt(3) / 2)
    assert vendi_score(eye) == pytest.approx(4.0)  # four orthogonal items
    assert vendi_score(np.ones((5, 3), dtype=np.float32)) == pytest.approx(1.0)  # one item x5
    # two identical + one orthogonal: K/n eigenvalues 2/3, 1/3 -> exp(H)
    two = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    expected = np.exp(-(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)))
    assert vendi_score(two) == pytest.approx(expected)


def test_length_label_and_attribute_stats() -> None:
    from datarefinery.evaluate.diversity import attribute_coverage, label_balance, length_stats

    stats = length_stats(["ab cd", "e"])
    assert stats["words"]["mean"] == 1.5 and stats["chars"]["max"] == 5.0
    balance = label_balance(["a", "a", "b", "b"])
    assert balance["normalized_entropy"] == 1.0 and balance["imbalance_ratio"] == 1.0
    skewed = label_balance(["a", "a", "a", "b"])
    # H = -(3/4 ln 3/4 + 1/4 ln 1/4) / ln 2 = 0.8113
    assert skewed["normalized_entropy"] == pytest.approx(0.8113, abs=1e-4)
    assert skewed["imbalance_ratio"] == 3.0 and skewed["counts"] == {"a": 3, "b": 1}
    grid = {"genre": ["comedy", "drama"], "length": ["short", "long", "medium"]}
    seen = [
        {"genre": "comedy", "length": "short"},
        {"genre": "comedy", "length": "long"},
        {"genre": "comedy", "length": "short"},
    ]
    coverage = attribute_coverage(seen, grid)
    assert coverage["per_attribute"] == {"genre": 0.5, "length": round(2 / 3, 4)}
    assert coverage["grid_coverage"] == round(2 / 6, 4)
