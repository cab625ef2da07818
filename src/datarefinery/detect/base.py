"""The detector contract: text in, character spans out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Span:
    """A detected value: ``text[start:end] == value``. ``entity_type`` uses Presidio's names
    (PERSON, EMAIL_ADDRESS, PHONE_NUMBER, CREDIT_CARD, ...).
    """

    entity_type: str
    start: int
    end: int
    value: str
    score: float = 1.0
    detector: str = ""


class PIIDetector(Protocol):
    name: str

    def detect(self, text: str) -> list[Span]:
        """Spans sorted by start; overlapping detections resolved to the longest."""
        ...


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep the longest (then highest-scoring) span where spans overlap; sorted by start."""
    ordered = sorted(spans, key=lambda s: (-(s.end - s.start), -s.score, s.start))
    kept: list[Span] = []
    for span in ordered:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)
