"""Detectors: PII spans in text (and, later, toxicity scores)."""

from datarefinery.detect.base import PIIDetector, Span
from datarefinery.detect.regex import RegexPIIDetector

__all__ = ["PIIDetector", "RegexPIIDetector", "Span"]
