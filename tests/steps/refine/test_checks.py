from __future__ import annotations

from datarefinery.steps.refine.checks import contains_value, delta, token_f1
from datarefinery.steps.refine.surrogates import Replacement


def test_contains_value_ignores_case_spacing_and_number_grouping() -> None:
    assert contains_value("call ANNA  Kowalski now", "Anna Kowalski")
    assert not contains_value("Annabel came", "Anna")
    assert contains_value("card 4111111111111111", "4111 1111 1111 1111")
    assert not contains_value("card 4111 1111 1111 1112", "4111 1111 1111 1111")
    assert not contains_value("anything", "  ")


def test_delta_measures_change_outside_the_pii() -> None:
    plan = [Replacement("PERSON", 6, 10, "Anna", "Maria")]
    same = delta("Hello Anna, how are you?", "Hello Maria, how are you?", plan)
    assert same["token_f1_outside_pii"] == 1.0 and same["edit_distance"] == 4
    changed = delta("Hello Anna, how are you?", "Maria is here.", plan)
    assert changed["token_f1_outside_pii"] < 0.3
    assert token_f1([], []) == 1.0
