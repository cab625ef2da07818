"""The checks of the ``refine`` step (refinement by instruction): what a text must not hold
(``must_not_match`` patterns, ``no_entities`` detector types), how much of the rest a rewrite
may change (``max_change``), and the patch fallback (matches replaced by a placeholder).

A check that fails is a ``Finding``: which check, and what it saw (the offending matches), so
that the re-ask can tell the model exactly what went wrong. The judge check asks the model, so
it lives in the step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from datarefinery.detect.base import PIIDetector, Span
from datarefinery.detect.factory import PII_ENTITIES, QUASI_IDENTIFIERS
from datarefinery.text import WORD_OR_MARK, token_f1

KNOWN_ENTITIES = PII_ENTITIES | QUASI_IDENTIFIERS
# A rewrite may put a few words where a removed span stood ("Project BLUEHERON" -> "the
# project"): up to this many more than the span had before they count as change.
REPLACEMENT_SLACK = 2


class JudgeCheck(BaseModel):
    """``judge: {criterion, threshold}``: the model rates 1..5 how well the output meets it."""

    model_config = ConfigDict(extra="forbid")

    criterion: str = Field(..., min_length=3, description="what must hold for the output")
    threshold: int = Field(default=4, ge=1, le=5, description="lowest passing score")


class Checks(BaseModel):
    """``checks:`` of the ``refine`` step; at least one of the first three is needed."""

    model_config = ConfigDict(extra="forbid")

    must_not_match: list[str] = Field(
        default_factory=list, description="regular expressions that must not match the output"
    )
    no_entities: list[str] = Field(
        default_factory=list, description="detector entity types that must not remain"
    )
    judge: JudgeCheck | None = None
    max_change: float | None = Field(
        default=None, ge=0, le=1, description="most of the other tokens a rewrite may change"
    )

    @field_validator("must_not_match")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for index, pattern in enumerate(patterns):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"must_not_match[{index}] {pattern!r} is not a regular expression: {exc}"
                ) from None
            if compiled.match(""):
                raise ValueError(
                    f"must_not_match[{index}] {pattern!r} matches the empty string, so every "
                    "text would fail; make it match at least one character"
                )
        return patterns

    @field_validator("no_entities")
    @classmethod
    def _known(cls, entities: list[str]) -> list[str]:
        unknown = sorted(set(entities) - KNOWN_ENTITIES)
        if unknown:
            raise ValueError(
                f"unknown entity types {unknown}; the detectors know {sorted(KNOWN_ENTITIES)}"
            )
        return entities

    @model_validator(mode="after")
    def _some_criterion(self) -> Checks:
        if not (self.must_not_match or self.no_entities or self.judge):
            raise ValueError(
                "give at least one of must_not_match, no_entities or judge: they say what the "
                "output must satisfy (max_change alone only limits how much it may differ)"
            )
        return self

    def patterns(self) -> list[re.Pattern[str]]:
        return [re.compile(p) for p in self.must_not_match]


@dataclass(frozen=True, slots=True)
class Finding:
    """A failed check: ``check`` is its option name, ``detail`` what it saw (for people and
    the re-ask), ``values`` the offending text, if any.
    """

    check: str
    detail: str
    values: tuple[str, ...] = ()


def pattern_spans(patterns: Sequence[re.Pattern[str]], text: str) -> list[Span]:
    """Every match of every pattern (empty matches skipped), as spans of type ``PATTERN``."""
    spans = []
    for index, pattern in enumerate(patterns):
        for match in pattern.finditer(text):
            if match.end() > match.start():
                spans.append(
                    Span("PATTERN", match.start(), match.end(), match.group(), 1.0, str(index))
                )
    return spans


def entity_spans(detector: PIIDetector | None, text: str) -> list[Span]:
    return detector.detect(text) if detector is not None else []


def _distinct(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def static_findings(
    patterns: Sequence[re.Pattern[str]], matched: list[Span], found: list[Span]
) -> list[Finding]:
    """The pattern and entity findings, given the spans found on the text."""
    findings = []
    for index, pattern in enumerate(patterns):
        values = _distinct([s.value for s in matched if s.detector == str(index)])
        if values:
            shown = ", ".join(f'"{v}"' for v in values)
            detail = f"still matches {pattern.pattern!r}: {shown}"
            findings.append(Finding("must_not_match", detail, values))
    if found:
        shown = ", ".join(f'"{s.value}" ({s.entity_type})' for s in found)
        findings.append(
            Finding("no_entities", f"still contains {shown}", _distinct([s.value for s in found]))
        )
    return findings


def change_outside(original: str, output: str, spans: Sequence[Span]) -> float:
    """1 - preservation: 1 minus the token F1 (as ``delta`` measures it for PII) of the text
    outside what had to change.

    What had to change are ``spans`` of ``original``. The output has no spans of its own, so
    its replacements are found by aligning the two token sequences: the output tokens that an
    aligned edit puts where a span stood are the replacement, up to the span's length plus
    ``REPLACEMENT_SLACK``; every other token, in both texts, is compared.
    """
    source = [(m.group(), m.start(), m.end()) for m in WORD_OR_MARK.finditer(original)]
    target = [m.group() for m in WORD_OR_MARK.finditer(output)]
    inside = [any(s.start < end and start < s.end for s in spans) for _, start, end in source]
    matcher = SequenceMatcher(None, [t for t, _, _ in source], target, autojunk=False)
    reference: list[str] = []
    candidate: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        reference.extend(source[i][0] for i in range(i1, i2) if not inside[i])
        span_tokens = sum(inside[i1:i2])
        touches = span_tokens > 0 or (
            i1 == i2 and ((i1 > 0 and inside[i1 - 1]) or (i1 < len(inside) and inside[i1]))
        )
        if tag == "equal" or not touches:
            candidate.extend(target[j1:j2])
        else:
            candidate.extend(target[j1 + span_tokens + REPLACEMENT_SLACK : j2])
    return round(1.0 - token_f1(reference, candidate), 4)


def replace_spans(text: str, spans: Sequence[Span], placeholder: str) -> str:
    """``text`` with each span replaced: ``placeholder`` for a pattern match, ``<TYPE>`` for a
    detected entity (overlapping spans merged).
    """
    merged: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        label = placeholder if span.entity_type == "PATTERN" else f"<{span.entity_type}>"
        if merged and span.start < merged[-1][1]:
            start, end, first = merged[-1]
            merged[-1] = (start, max(end, span.end), first)
        else:
            merged.append((span.start, span.end, label))
    pieces = []
    cursor = 0
    for start, end, label in merged:
        pieces.append(text[cursor:start])
        pieces.append(label)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)
