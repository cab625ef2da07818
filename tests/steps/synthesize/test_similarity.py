import random

import pytest

from datarefinery.steps.synthesize.similarity import (
    SimilarityPool,
    lcs_length,
    rouge_l,
    rouge_tokens,
)


def test_tokens_are_lowercase_alphanumeric_runs() -> None:
    assert rouge_tokens("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Lin (2004), section 3.1: reference S1, candidates S2 and S3.
        ("police killed the gunman", "police kill the gunman", 3 / 4),
        ("police killed the gunman", "the gunman kill police", 2 / 4),
        # LCS "the cat on the mat" = 5 of 6 tokens each: P = R = F = 5/6.
        ("the cat sat on the mat", "the cat lay on the mat", 5 / 6),
        # LCS 2, lengths 4 and 2: P = 1, R = 1/2, F = 2/3.
        ("a b c d", "a c", 2 / 3),
        ("Hello, World!", "hello world", 1.0),
        ("one two three", "four five six", 0.0),
        ("", "anything at all", 0.0),
        ("!!!", "???", 0.0),
    ],
)
def test_rouge_l_on_hand_checked_pairs(a: str, b: str, expected: float) -> None:
    assert rouge_l(a, b) == pytest.approx(expected)
    assert rouge_l(b, a) == pytest.approx(expected)


def test_lcs_length() -> None:
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # the textbook example (CLRS 15.4)
    assert lcs_length([], ["a"]) == 0


def test_pool_closest_matches_brute_force() -> None:
    rng = random.Random(0)
    words = [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "under",
        "mat",
        "log",
        "big",
        "small",
        "red",
    ]
    texts = [" ".join(rng.choices(words, k=rng.randint(2, 9))) for _ in range(60)]
    pool = SimilarityPool(texts[:50])
    for query in texts[50:]:
        best = max(rouge_l(query, t) for t in texts[:50])
        score, closest = pool.closest(query)
        assert score == pytest.approx(best)
        assert closest is not None and rouge_l(query, closest) == pytest.approx(best)
    assert SimilarityPool().closest("anything") == (0.0, None)
