from __future__ import annotations

from datarefinery.records import Record
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection


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
