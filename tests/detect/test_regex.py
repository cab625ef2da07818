import pytest

from datarefinery.detect.regex import RegexPIIDetector, iban_ok, luhn_ok

DETECTOR = RegexPIIDetector()


def found(text: str) -> list[tuple[str, str]]:
    return [(s.entity_type, s.value) for s in DETECTOR.detect(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail jane.doe+x@example.co.uk now", ("EMAIL_ADDRESS", "jane.doe+x@example.co.uk")),
        ("card 4111 1111 1111 1111 thanks", ("CREDIT_CARD", "4111 1111 1111 1111")),
        ("IBAN DE89 3704 0044 0532 0130 00.", ("IBAN_CODE", "DE89 3704 0044 0532 0130 00")),
        ("ssn 123-45-6789", ("US_SSN", "123-45-6789")),
        ("from 192.168.0.12 today", ("IP_ADDRESS", "192.168.0.12")),
        ("call (555) 123-4567 now", ("PHONE_NUMBER", "(555) 123-4567")),
        ("see https://example.org/a?b=1 ok", ("URL", "https://example.org/a?b=1")),
        ("visit shop.example.com", ("DOMAIN_NAME", "shop.example.com")),
    ],
)
def test_each_entity(text: str, expected: tuple[str, str]) -> None:
    spans = DETECTOR.detect(text)
    assert expected in found(text)
    for span in spans:
        assert text[span.start : span.end] == span.value


def test_checksums_reject_lookalikes() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert all(kind != "CREDIT_CARD" for kind, _ in found("order 4111 1111 1111 1112 shipped"))
    assert found("IP 999.1.1.1") == []
    # four numbers inside a longer dotted run are no address; one ending a sentence is
    assert found("see 4.25.2017.1.73.2.3 and 1.2.3.4.5") == []
    assert found("It was at 10.0.0.7. Then") == [("IP_ADDRESS", "10.0.0.7")]
    assert all(kind != "US_SSN" for kind, _ in found("id 000-12-3456"))


def test_overlaps_resolve_to_the_longest_span() -> None:
    assert found("jane@example.com") == [("EMAIL_ADDRESS", "jane@example.com")]


def test_entity_filter() -> None:
    only_email = RegexPIIDetector({"EMAIL_ADDRESS"})
    spans = only_email.detect("jane@example.com 192.168.0.1")
    assert [s.entity_type for s in spans] == ["EMAIL_ADDRESS"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Nobody picks up at 45-12-88-03 today", "45-12-88-03"),
        ("Ring me on +33 6 12 34 56 78 tonight", "+33 6 12 34 56 78"),
        ("you can ring me on 284 9917 after six", "284 9917"),
        ("her mobile: 0176 2280 1931", "0176 2280 1931"),
    ],
)
def test_phone_numbers_without_the_usual_shape(text: str, value: str) -> None:
    assert ("PHONE_NUMBER", value) in found(text)


def test_numbers_without_a_phone_cue_stay() -> None:
    assert found("In 2019 we sold 4 500 000 units, order 88 1203 shipped") == []
    assert found("Met on 12.05.2020 at 10") == []
