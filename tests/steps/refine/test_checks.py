from __future__ import annotations

from datarefinery.steps.refine.checks import changed_outside, delta
from datarefinery.steps.refine.surrogates import Replacement
from datarefinery.text import token_f1


def test_delta_measures_change_outside_the_pii() -> None:
    plan = [Replacement("PERSON", 6, 10, "Anna", "Maria")]
    same = delta("Hello Anna, how are you?", "Hello Maria, how are you?", plan)
    assert same["token_f1_outside_pii"] == 1.0 and same["edit_distance"] == 4
    changed = delta("Hello Anna, how are you?", "Maria is here.", plan)
    assert changed["token_f1_outside_pii"] < 0.3
    assert token_f1([], []) == 1.0


def test_changed_outside_counts_edits_in_order_whatever_the_length() -> None:
    plan = [Replacement("PERSON", 5, 9, "Anna", "Maria")]
    x = "Ask Anna. Please call the office before noon."
    assert changed_outside(x, "Ask Maria. Please call the office before noon.", plan) == (0, 9)
    # Dropping "Please call" is two edits; a substituted word is one.
    assert changed_outside(x, "Ask Maria. the office before noon.", plan)[0] == 2
    assert changed_outside(x, "Ask Maria. Please call an office before noon.", plan)[0] == 1
    # Moving a phrase is edits too, where a bag of words sees nothing.
    moved = "Ask Maria. before noon Please call the office."
    assert changed_outside(x, moved, plan)[0] >= 2
    assert delta(x, moved, plan)["token_f1_outside_pii"] > 0.9


def test_a_dropped_phrase_is_visible_in_a_long_text() -> None:
    """The failure the bag-of-words F1 let through: in a long text, losing "Please call" kept
    F1 near 1, while the edit count is the same as in a short one.
    """
    plan = [Replacement("PERSON", 0, 4, "Anna", "Maria")]
    tail = " The order ships on Monday and the invoice follows by post." * 20
    x = "Anna here. Please call me back." + tail
    y = "Maria here. me back." + tail
    assert delta(x, y, plan)["token_f1_outside_pii"] > 0.98
    changed, outside = changed_outside(x, y, plan)
    assert changed == 2 and outside > 200
