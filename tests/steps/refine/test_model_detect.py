from __future__ import annotations

import pytest

from datarefinery.steps.refine.model_detect import (
    DetectionReply,
    FoundValue,
    claims_to_spans,
    plausible,
)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("name", "Anna Kowalski"),
        ("name", "J. R. R. Tolkien"),
        ("name", "Andrea Ólafsdóttir"),
        ("name", "Ludwig van Beethoven"),
        ("name", "Jean-Luc O'Neil"),
        ("driver_license", "D123-4567-8901"),
        ("street_address", "654 Diaz Lights Suite 448, Brockstad"),
        ("phone", "+48 (22) 555-0100"),
        ("phone", "555-123-4567 ext. 12"),
        ("email", "anna.k@example.org"),
        ("credit_card", "4754 5406 5916 8970"),
        ("iban", "GB82 WEST 1234 5698 7654 32"),
        ("ssn", "078-05-1120"),
        ("ip_address", "192.168.0.1"),
        ("ip_address", "2001:db8::1"),
        ("url", "https://example.org/anna"),
        ("passport", "X1234567"),
    ],
)
def test_values_of_their_kind_are_plausible(kind: str, value: str) -> None:
    assert plausible(kind, value)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        # What the small default model claimed on the validation split.
        ("name", "I want to add Andrea Ólafsdóttir as a beneficiary to my account"),
        ("name", "The Big Three Killed My Baby"),
        ("name", "White, Willis and Hoffman"),
        ("credit_card", "the whole thing"),
        ("street_address", "We all liked the idea of writing a song about our state"),
        ("name", "the account"),
        # ... and what the stronger model claimed there.
        ("name", "Energetic and driven salesperson"),
        ("name", "RR commenter"),
        ("passport", "Blink-182"),
        ("name", "He"),
        ("name", "The Princess Royal"),
        ("phone", "12"),
        ("email", "anna at example"),
        ("credit_card", "4754-5406"),
        ("iban", "GB82"),
        ("ip_address", "999.1.1.1"),
        ("url", "see you there"),
    ],
)
def test_sentences_and_wrong_shapes_are_not(kind: str, value: str) -> None:
    assert not plausible(kind, value)


def test_an_implausible_claim_is_counted_not_used() -> None:
    text = "I want to add Andrea Ólafsdóttir as a beneficiary to my account"
    reply = DetectionReply(
        values=[
            FoundValue(value=text, type="name"),
            FoundValue(value="Andrea Ólafsdóttir", type="name"),
            FoundValue(value="Bob Smith", type="name"),
        ]
    )
    found = claims_to_spans(text, reply, None)
    assert [s.value for s in found.spans] == ["Andrea Ólafsdóttir"]
    assert (found.implausible, found.not_in_text) == (1, 1)
