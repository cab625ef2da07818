"""SQuAD exact match and F1 on examples worked by hand."""

from __future__ import annotations

import pytest

from datarefinery.evaluate.squad import exact_match, f1, normalize_answer, squad_scores


def test_normalize_drops_case_punctuation_articles_and_extra_spaces() -> None:
    assert (
        normalize_answer("  The Eldon Square,  Shopping-Centre! ") == "eldon square shoppingcentre"
    )
    assert normalize_answer("An apple a day") == "apple day"
    # "a" inside a word is not an article
    assert normalize_answer("Anna and the banana") == "anna and banana"


def test_exact_match_after_normalizing() -> None:
    assert exact_match("the Eldon Square", "Eldon Square.") == 1.0
    assert exact_match("Eldon Square Shopping Centre", "Eldon Square") == 0.0


def test_f1_by_hand() -> None:
    # prediction "emerson bainbridge 1817" (3 words), gold "emerson bainbridge" (2): 2 in common,
    # precision 2/3, recall 1, F1 = 2 * (2/3) / (5/3) = 0.8
    assert f1("Emerson Bainbridge (1817", "Emerson Bainbridge") == pytest.approx(0.8)
    # prediction "in 1838" vs gold "1838": precision 1/2, recall 1 -> 2/3
    assert f1("in 1838", "1838") == pytest.approx(2 / 3)
    # repeated words count as often as they occur in both: "new new york" vs "new york":
    # common = min(2,1) new + 1 york = 2, precision 2/3, recall 1 -> 0.8
    assert f1("new new york", "New York") == pytest.approx(0.8)
    assert f1("Debenhams", "John Lewis") == 0.0
    # only articles and punctuation on both sides: both normalize to nothing
    assert f1("the", "a.") == 1.0
    assert f1("the", "John") == 0.0


def test_scores_are_means() -> None:
    scores = squad_scores(["Eldon Square", "in 1838", "nothing"], ["eldon square", "1838", "x"])
    assert scores["em"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert squad_scores([], []) == {"em": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="2 predictions for 1"):
        squad_scores(["a", "b"], ["a"])
