from __future__ import annotations

from datarefinery.steps.refine.checks import delta
from datarefinery.steps.refine.surrogates import Replacement
from datarefinery.text import token_f1


def test_delta_measures_change_outside_the_pii() -> None:
    plan = [Replacement("PERSON", 6, 10, "Anna", "Maria")]
    same = delta("Hello Anna, how are you?", "Hello Maria, how are you?", plan)
    assert same["token_f1_outside_pii"] == 1.0 and same["edit_distance"] == 4
    changed = delta("Hello Anna, how are you?", "Maria is here.", plan)
    assert changed["token_f1_outside_pii"] < 0.3
    assert token_f1([], []) == 1.0
