from __future__ import annotations

import pytest
from pydantic import ValidationError

from datarefinery.detect.factory import (
    PII_ENTITIES,
    QUASI_IDENTIFIERS,
    DetectorConfig,
    make_detector,
)

TEXT = "Mail anna@example.com or call 555-123-4567. I live at 12 Main Street, Springfield."


def test_regex_kind_finds_structured_pii_and_addresses_without_a_model() -> None:
    spans = make_detector("regex").detect(TEXT)
    assert {s.entity_type: s.value for s in spans} == {
        "EMAIL_ADDRESS": "anna@example.com",
        "PHONE_NUMBER": "555-123-4567",
        "STREET_ADDRESS": "12 Main Street, Springfield",
    }


def test_entities_limit_what_is_reported() -> None:
    detector = make_detector(DetectorConfig(kind="regex", entities=["EMAIL_ADDRESS"]))
    assert [s.entity_type for s in detector.detect(TEXT)] == ["EMAIL_ADDRESS"]


def test_pii_and_quasi_identifier_sets_are_disjoint() -> None:
    assert not PII_ENTITIES & QUASI_IDENTIFIERS
    assert DetectorConfig().entity_set() == set(PII_ENTITIES)
    assert DetectorConfig(entities="all").entity_set() is None


def test_unknown_kind_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        DetectorConfig(kind="magic")  # type: ignore[arg-type]
