"""The model's detection pass of ``pii_rewrite``: the model lists the personal values it sees in a
record, each with a kind; the kinds map to the detectors' entity names.

A claim is a hint, never trusted: a value that does not occur in the text is dropped (and
counted), a kind outside the detector's entity set is ignored, and what remains becomes spans
that are united with the detectors' (overlaps resolved to the longest), so the rewrite's leak
check and re-detection cover what only the model found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datarefinery.detect.base import Span
from datarefinery.text import value_pattern

Kind = Literal[
    "name",
    "street_address",
    "phone",
    "email",
    "credit_card",
    "iban",
    "bank_account",
    "ssn",
    "passport",
    "driver_license",
    "ip_address",
    "url",
]

# Plain words for the model (a small model follows "email" better than "EMAIL_ADDRESS").
ENTITY_OF_KIND: dict[str, str] = {
    "name": "PERSON",
    "street_address": "STREET_ADDRESS",
    "phone": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
    "credit_card": "CREDIT_CARD",
    "iban": "IBAN_CODE",
    "bank_account": "US_BANK_NUMBER",
    "ssn": "US_SSN",
    "passport": "US_PASSPORT",
    "driver_license": "US_DRIVER_LICENSE",
    "ip_address": "IP_ADDRESS",
    "url": "URL",
}

# The decoding grammar grows with these caps; a record rarely holds more than a few values.
MAX_VALUES = 16
MAX_VALUE_CHARS = 120


class FoundValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(..., min_length=1, max_length=MAX_VALUE_CHARS)
    type: Kind


class DetectionReply(BaseModel):
    """``{"values": [{"value": ..., "type": ...}]}``; an empty list means nothing personal."""

    model_config = ConfigDict(extra="forbid")

    values: list[FoundValue] = Field(default_factory=list, max_length=MAX_VALUES)


@dataclass(frozen=True)
class ModelFindings:
    """The spans the model's claims became, and how many claims were dropped or ignored:
    ``not_in_text`` (the value does not occur in the text) and ``other_type`` (a kind outside
    the detector's entity set).
    """

    spans: list[Span]
    not_in_text: int = 0
    other_type: int = 0


def claims_to_spans(text: str, reply: DetectionReply, entities: set[str] | None) -> ModelFindings:
    """Every occurrence in ``text`` of each claimed value, typed by the detectors' names.
    ``entities`` is the detector's entity set (``None``: every kind counts).
    """
    spans: list[Span] = []
    not_in_text = other_type = 0
    seen: set[tuple[str, str]] = set()
    for claim in reply.values:
        value = claim.value.strip()
        entity = ENTITY_OF_KIND[claim.type]
        if entities is not None and entity not in entities:
            other_type += 1
            continue
        # One character, or punctuation alone, identifies nobody and would match everywhere.
        if len(value) < 2 or not any(c.isalnum() for c in value):
            not_in_text += 1
            continue
        if (entity, value.casefold()) in seen:
            continue
        seen.add((entity, value.casefold()))
        matches = list(value_pattern(value).finditer(text))
        if not matches:
            not_in_text += 1
            continue
        spans.extend(Span(entity, m.start(), m.end(), m.group(0), 0.5, "model") for m in matches)
    return ModelFindings(spans, not_in_text, other_type)
