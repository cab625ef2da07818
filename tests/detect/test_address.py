from __future__ import annotations

import pytest

from datarefinery.detect.address import AddressDetector


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Ship it to 2450 Crown St, Toronto please", "2450 Crown St, Toronto"),
        ("Meet me at PSC 1437, Box 3833\nAPO AA 66791", "PSC 1437, Box 3833\nAPO AA 66791"),
        ("The bus drops you off at 07576 Magasinsgatan 7", "07576 Magasinsgatan 7"),
        (
            "I live at 12 Elm St Apt. 4, Springfield for this year",
            "12 Elm St Apt. 4, Springfield",
        ),
        # military forms of USPS Publication 28, section 225 (a unit or a ship's name, then
        # APO / FPO / DPO); the first is a validation-split value
        ("Post it to USNV Botolen\nFPO AE 12382 by May", "USNV Botolen\nFPO AE 12382"),
        ("Mail for CMR 1250\nAPO AA 09045-1250", "CMR 1250\nAPO AA 09045-1250"),
        ("Send it to USS Alder (DDG 99), FPO AP 96601", "USS Alder (DDG 99), FPO AP 96601"),
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
        "My card bill could be wrong",
        "Read Top Picks: 8 Bands Of The 90s Everyone Forgot",
        "We met 3 times at the park last year.",
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert AddressDetector().detect(text) == []
