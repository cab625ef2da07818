"""Choosing a PII detector: the one entry point other modules (refinement steps, privacy metrics)
use, so they share a notion of what counts as PII.

    detector = make_detector("both")                    # Presidio + addresses + patterns
    detector = make_detector("regex")                   # patterns + addresses: no model, fast
    detector = make_detector(DetectorConfig(kind="presidio", entities=["PERSON"]))
    spans = detector.detect(text)                       # list[Span], sorted, no overlaps

``kind``:
- ``regex``: ``RegexPIIDetector`` (e-mail, URL, cards, IBAN, SSN, IP, phone, domain) and
  ``AddressDetector``; finds no names. Microseconds per record.
- ``presidio``: Presidio on spaCy ``en_core_web_sm`` (names, places, organizations, dates, its own
  patterns) and ``AddressDetector``. Milliseconds per record; seconds to load once per process.
- ``both`` (default): the union of the two, overlaps resolved to the longest span.

``entities`` (default ``PII_ENTITIES``) limits what is reported; ``None`` in the config means the
default set, and the string ``"all"`` reports every type a detector knows, quasi-identifiers
(DATE_TIME, NRP, LOCATION, ...) included.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datarefinery.detect.address import AddressDetector
from datarefinery.detect.base import PIIDetector, Span, resolve_overlaps
from datarefinery.detect.regex import RegexPIIDetector

# Direct identifiers: one value points at one person or account. Replaced by default.
PII_ENTITIES: frozenset[str] = frozenset(
    {
        "PERSON",
        "STREET_ADDRESS",
        "PHONE_NUMBER",
        "EMAIL_ADDRESS",
        "CREDIT_CARD",
        "IBAN_CODE",
        "US_SSN",
        "US_DRIVER_LICENSE",
        "US_PASSPORT",
        "US_BANK_NUMBER",
        "US_ITIN",
        "UK_NHS",
        "MEDICAL_LICENSE",
        "IP_ADDRESS",
        "MAC_ADDRESS",
        "URL",
        "DOMAIN_NAME",
        "CRYPTO",
    }
)
# Quasi-identifiers: identify only in combination. Not replaced by default; the benchmark's labels
# of these types are neither required nor held against a method (see evaluate.pii).
QUASI_IDENTIFIERS: frozenset[str] = frozenset(
    {
        "DATE_TIME",
        "AGE",
        "NRP",
        "TITLE",
        "LOCATION",
        "GPE",
        "ORGANIZATION",
        "ZIP_CODE",
    }
)

DetectorKind = Literal["regex", "presidio", "both"]


class DetectorConfig(BaseModel):
    """Which detector a step uses (``detector:`` in a spec)."""

    model_config = ConfigDict(extra="forbid")

    kind: DetectorKind = "both"
    entities: list[str] | Literal["all"] | None = Field(
        default=None, description="types to report; default the direct identifiers (PII_ENTITIES)"
    )
    min_score: float = Field(default=0.4, ge=0, le=1, description="Presidio score threshold")

    def entity_set(self) -> set[str] | None:
        if self.entities == "all":
            return None
        return set(self.entities) if self.entities is not None else set(PII_ENTITIES)


class CombinedDetector:
    """Several detectors as one: the union of their spans, overlaps resolved to the longest."""

    def __init__(self, detectors: list[PIIDetector], name: str) -> None:
        self.detectors = detectors
        self.name = name

    def detect(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for detector in self.detectors:
            spans.extend(detector.detect(text))
        return resolve_overlaps(spans)


class _EntityFilter:
    def __init__(self, inner: PIIDetector, entities: set[str]) -> None:
        self.inner = inner
        self.entities = entities
        self.name = inner.name

    def detect(self, text: str) -> list[Span]:
        return [s for s in self.inner.detect(text) if s.entity_type in self.entities]


def make_detector(
    config: DetectorConfig | DetectorKind = "both",
    *,
    entities: set[str] | None = None,
) -> PIIDetector:
    """A detector for ``config`` (a ``DetectorConfig`` or just its ``kind``). ``entities``
    overrides the config's set. Presidio is loaded on the first ``detect`` call, not here.
    """
    if isinstance(config, str):
        config = DetectorConfig(kind=config)
    wanted = entities if entities is not None else config.entity_set()
    parts: list[PIIDetector] = []
    if config.kind in ("presidio", "both"):
        from datarefinery.detect.presidio import PresidioPIIDetector

        # The address detector runs once, below, whatever the kind.
        parts.append(PresidioPIIDetector(wanted, min_score=config.min_score, addresses=False))
    if config.kind in ("regex", "both"):
        parts.append(RegexPIIDetector(wanted))
    if wanted is None or "STREET_ADDRESS" in wanted:
        parts.append(AddressDetector())
    combined = CombinedDetector(parts, config.kind)
    return combined if wanted is None else _EntityFilter(combined, wanted)
