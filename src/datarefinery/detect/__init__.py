"""Detectors: PII spans in text and toxicity scores. ``make_detector`` picks one (see factory)."""

from datarefinery.detect.address import AddressDetector
from datarefinery.detect.base import PIIDetector, Span
from datarefinery.detect.factory import (
    PII_ENTITIES,
    QUASI_IDENTIFIERS,
    DetectorConfig,
    make_detector,
)
from datarefinery.detect.regex import RegexPIIDetector

__all__ = [
    "PII_ENTITIES",
    "QUASI_IDENTIFIERS",
    "AddressDetector",
    "DetectorConfig",
    "PIIDetector",
    "RegexPIIDetector",
    "Span",
    "make_detector",
]
