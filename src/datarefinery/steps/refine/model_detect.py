"""The model's detection pass of ``pii_rewrite``: the model lists the personal values it sees in a
record, each with a kind; the kinds map to the detectors' entity names.

A claim is a hint, never trusted: a value that does not occur in the text is dropped (and
counted), so is one that does not have the shape of its kind (``plausible``: a "name" of twelve
words, a "credit card" without digits; a small model claims whole sentences), a kind outside the
detector's entity set is ignored, and what remains becomes spans
that are united with the detectors' (overlaps resolved to the longest), so the rewrite's leak
check and re-detection cover what only the model found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datarefinery.detect.base import Span
from datarefinery.detect.regex import ip_ok
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
    ``not_in_text`` (the value does not occur in the text), ``implausible`` (not the shape of
    its kind) and ``other_type`` (a kind outside the detector's entity set).
    """

    spans: list[Span]
    not_in_text: int = 0
    other_type: int = 0
    implausible: int = 0


_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_SENTENCE_MARKS = set(',;:!?"()[]{}')
# Lower-case words inside personal names (Ludwig van Beethoven, Maria de la Cruz, Ali bin Hamad);
# any other lower-case word makes a phrase ("driven salesperson"), not a name.
# Closed-class English words (pronouns, articles, determiners, common prepositions and
# conjunctions): no personal name is made of them ("He", "The Princess Royal").
_FUNCTION_WORDS_TEXT = (
    "i me my you your he him his she her hers it its we us our they them their who whom whose "
    "what which this that these those the a an and or but nor of in on at to for with by from "
    "as is are was were be"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())
_NAME_PARTICLES = frozenset(
    "van von der den de del della dei di da das dos du la le bin ibn al el ter ten y e".split()  # noqa: SIM905
)


def _digits(value: str) -> int:
    return sum(c.isdigit() for c in value)


def plausible(kind: str, value: str) -> bool:
    """Whether ``value`` has the shape of ``kind``: what the standard formats allow (digit
    counts of card, phone, SSN and account numbers; IBAN's country code and check digits; an
    e-mail's ``@``; IP syntax), and for names and addresses a length a value has, not a sentence;
    a name's words are capitalised (but for particles such as "van" or "de") and none is a
    pronoun, article or other function word.
    """
    digits = _digits(value)
    compact = re.sub(r"[\s-]", "", value)
    if kind == "name":
        words = value.split()
        return (
            len(words) <= 5
            and len(value) <= 60
            and digits == 0
            and not _SENTENCE_MARKS & set(value)
            and all(w[:1].isupper() or w.casefold() in _NAME_PARTICLES for w in words)
            and any(w[:1].isupper() for w in words)
            and not any(w.casefold() in _FUNCTION_WORDS for w in words)
        )
    if kind == "street_address":
        return digits > 0 and len(value.split()) <= 16
    if kind == "phone":
        return 7 <= digits <= 15 and sum(c.isalpha() for c in value) <= 3
    if kind == "email":
        return _EMAIL.fullmatch(value) is not None
    if kind == "credit_card":
        return 12 <= digits <= 19 and compact.isdigit()
    if kind == "iban":
        return _IBAN.fullmatch(compact.upper()) is not None
    if kind in ("bank_account", "ssn"):
        return 6 <= digits <= 17 and digits >= 0.8 * len(compact)
    if kind == "ip_address":
        return ip_ok(value)
    if kind == "url":
        return "." in value and " " not in value
    # passport, driver_license: one token of 6-20 characters, at least half of them digits
    # (US passports are 9 digits; licences a letter or two and digits), not a word like "Blink-182".
    return " " not in value.strip() and 6 <= len(compact) <= 20 and digits * 2 >= len(compact)


def claims_to_spans(text: str, reply: DetectionReply, entities: set[str] | None) -> ModelFindings:
    """Every occurrence in ``text`` of each claimed value, typed by the detectors' names.
    ``entities`` is the detector's entity set (``None``: every kind counts).
    """
    spans: list[Span] = []
    not_in_text = other_type = implausible = 0
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
        if not plausible(claim.type, value):
            implausible += 1
            continue
        if (entity, value.casefold()) in seen:
            continue
        seen.add((entity, value.casefold()))
        matches = list(value_pattern(value).finditer(text))
        if not matches:
            not_in_text += 1
            continue
        spans.extend(Span(entity, m.start(), m.end(), m.group(0), 0.5, "model") for m in matches)
    return ModelFindings(spans, not_in_text, other_type, implausible)
