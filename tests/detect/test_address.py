from __future__ import annotations

import pytest

from datarefinery.detect.address import AddressDetector


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Ship it to 2450 Crown Street, Toronto please", "2450 Crown Street, Toronto"),
        ("Meet me at PSC 1437, Box 3833\nAPO AA 66791", "PSC 1437, Box 3833\nAPO AA 66791"),
        ("The bus drops you off at 07576 Magasinsgatan 7", "07576 Magasinsgatan 7"),
        (
            "I live at 12 Main St Apt. 4, Springfield for this year",
            "12 Main St Apt. 4, Springfield",
        ),
        (
            "it is the corner of Dalbraut 99 and Frederikke Coves",
            "Dalbraut 99 and Frederikke Coves",
        ),
    ],
)
def test_finds_addresses(text: str, address: str) -> None:
    spans = AddressDetector().detect(text)
    assert [s.value for s in spans] == [address]
    assert all(text[s.start : s.end] == s.value for s in spans)
    assert spans[0].entity_type == "STREET_ADDRESS"


@pytest.mark.parametrize(
    "text",
    [
        "He just turned 22 years old",
        "My credit card statement could be wrong",
        "See Guilty Pleasures: 5 Musicians Of The 70s You're Supposed To Hate",
        "We met 3 times at the park last year.",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert AddressDetector().detect(text) == []
