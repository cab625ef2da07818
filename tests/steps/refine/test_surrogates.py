from __future__ import annotations

import pytest

from datarefinery.detect.base import Span
from datarefinery.steps.refine.surrogates import SurrogatePlanner, apply_replacements

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
TEXT = "Anna Kowalski wrote to Piotr Nowak. Later Anna called anna.k@example.org."


def spans() -> list[Span]:
    return [
        Span("PERSON", 0, 13, "Anna Kowalski"),
        Span("PERSON", 23, 34, "Piotr Nowak"),
        Span("PERSON", 42, 46, "Anna"),
        Span("EMAIL_ADDRESS", 54, 71, "anna.k@example.org"),
    ]


def test_surrogates_are_consistent_within_a_record_and_never_the_original() -> None:
    plan = SurrogatePlanner("surrogate", "record", KEY).plan("r1", spans())
    full, other, first, email = (r.replacement for r in plan)
    assert full != "Anna Kowalski" and other != "Piotr Nowak" and full != other
    assert first == full.split()[0]  # the first name alone follows the full name
    assert "@" in email and email != "anna.k@example.org"
    output = apply_replacements(TEXT, plan)
    assert "Anna" not in output and "Kowalski" not in output and "Nowak" not in output


def test_dataset_consistency_is_a_function_of_the_value_not_of_order() -> None:
    a = SurrogatePlanner("surrogate", "dataset", KEY)
    b = SurrogatePlanner("surrogate", "dataset", KEY)  # another shard, another process
    first = a.plan("r1", [Span("PERSON", 0, 11, "Piotr Nowak")])
    b.plan("r9", [Span("PERSON", 0, 8, "Jan Baum")])  # processed something else first
    second = b.plan("r2", [Span("PERSON", 5, 16, "Piotr Nowak")])
    assert first[0].replacement == second[0].replacement


def test_record_consistency_differs_across_records_and_keys_matter() -> None:
    planner = SurrogatePlanner("surrogate", "record", KEY)
    one = planner.plan("r1", [Span("PERSON", 0, 11, "Piotr Nowak")])[0].replacement
    two = planner.plan("r2", [Span("PERSON", 0, 11, "Piotr Nowak")])[0].replacement
    other_key = SurrogatePlanner("surrogate", "dataset", OTHER_KEY).plan(
        "r1", [Span("PERSON", 0, 11, "Piotr Nowak")]
    )[0]
    same_key = SurrogatePlanner("surrogate", "dataset", KEY).plan(
        "r1", [Span("PERSON", 0, 11, "Piotr Nowak")]
    )[0]
    assert one != two
    assert other_key.replacement != same_key.replacement


def test_placeholders_and_case() -> None:
    plan = SurrogatePlanner("placeholder", "record").plan("r", spans())
    assert [r.replacement for r in plan] == ["<PERSON>", "<PERSON>", "<PERSON>", "<EMAIL_ADDRESS>"]
    lower = SurrogatePlanner("surrogate", "record", KEY).plan(
        "r", [Span("PERSON", 0, 11, "piotr nowak")]
    )[0]
    assert lower.replacement == lower.replacement.lower()
    assert "original" not in lower.to_public()


def test_surrogate_values_need_a_key_and_the_planner_does_not_show_it() -> None:
    with pytest.raises(ValueError, match="secret key"):
        SurrogatePlanner("surrogate", "dataset")
    assert "k" * 32 not in repr(SurrogatePlanner("surrogate", "dataset", KEY))
