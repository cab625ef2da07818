"""The gazetteer name rules on real Presidio + spaCy (the US Census name lists of ``names``)."""

from __future__ import annotations

import pytest

from datarefinery.detect.base import PIIDetector, Span
from datarefinery.detect.factory import make_detector
from datarefinery.detect.names import name_lists
from datarefinery.detect.presidio import name_rules

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def presidio() -> PIIDetector:
    return make_detector("presidio", entities={"PERSON"})


def names(detector: PIIDetector, text: str) -> list[str]:
    return [s.value for s in detector.detect(text)]


def test_census_lists_load() -> None:
    lists = name_lists()
    assert {"mary", "james", "linda"} <= lists.first
    assert lists.surname_rank["smith"] == 1
    assert "my" not in lists.first  # a census "first name", but a word first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # spaCy's small model tags none of these names
        ("Did you see a Wilbur Ostrowski show last year?", ["Wilbur Ostrowski"]),
        ("Please register Dragoslav Kemeny as my second account holder", ["Dragoslav Kemeny"]),
        ("Have you ever met Oskar T Lindqvist at the club?", ["Oskar T Lindqvist"]),
        ("Tavish, could you forward the slides?", ["Tavish"]),
        ("Brandon is a careful driver and a good neighbour.", ["Brandon"]),
    ],
)
def test_names_the_small_model_misses(
    presidio: PIIDetector, text: str, expected: list[str]
) -> None:
    assert names(presidio, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Will you bring the roses? May we start?",
        "Sorry, can you repeat that?",
        "Honesty and Patience are virtues we teach.",
        "Our Salesperson of the Year award goes out in June.",
        "The White House and the Golden Gate are landmarks.",
    ],
)
def test_words_that_are_no_names(presidio: PIIDetector, text: str) -> None:
    assert names(presidio, text) == []


def test_one_word_person_that_is_an_english_word_is_dropped() -> None:
    rules = name_rules()
    assert not rules.keep(Span("PERSON", 0, 10, "Discipline"))
    assert rules.keep(Span("PERSON", 0, 4, "Hope"))  # a listed first name
    assert rules.keep(Span("PERSON", 0, 7, "Tavares"))  # no English word
    assert rules.keep(Span("PERSON", 0, 9, "Ann White"))  # two words: spaCy's call
