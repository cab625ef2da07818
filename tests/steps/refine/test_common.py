from __future__ import annotations

from datarefinery.records import Record
from datarefinery.steps.refine.common import TextStepConfig, delta, text_or_rejection
from datarefinery.steps.refine.surrogates import Replacement
from datarefinery.text import token_f1


def test_delta_measures_change_outside_the_pii() -> None:
    plan = [Replacement("PERSON", 6, 10, "Anna", "Maria")]
    same = delta("Hello Anna, how are you?", "Hello Maria, how are you?", plan)
    assert same["token_f1_outside_pii"] == 1.0 and same["edit_distance"] == 4
    changed = delta("Hello Anna, how are you?", "Maria is here.", plan)
    assert changed["token_f1_outside_pii"] < 0.3
    assert token_f1([], []) == 1.0


def test_text_checks_name_the_problem() -> None:
    config = TextStepConfig(max_chars=10)
    cases = {
        "missing_field": {"other": "x"},
        "invalid_field": {"text": 3},
        "empty": {"text": "  \n"},
        "too_long": {"text": "x" * 11},
    }
    for reason, fields in cases.items():
        _, rejected = text_or_rejection(Record("r", fields), config, "step")
        assert rejected is not None and rejected.reason == reason, reason
    text, rejected = text_or_rejection(Record("r", {"text": "fine"}), config, "step")
    assert text == "fine" and rejected is None
