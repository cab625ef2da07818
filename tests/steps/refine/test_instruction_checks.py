from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from datarefinery.detect.base import Span
from datarefinery.steps.refine.instruction_checks import (
    Checks,
    change_outside,
    pattern_spans,
    replace_spans,
    static_findings,
)

TEXT = "The Project BLUEHERON demo moves to Thursday at 3pm."
PATTERNS = [re.compile(r"\bProject\s+[A-Z]{3,}\b"), re.compile(r"\b[A-Z]{3,}-\d+\b")]


def _spans(text: str) -> list[Span]:
    return pattern_spans(PATTERNS, text)


def test_replacing_only_what_had_to_change_is_no_change() -> None:
    spans = _spans(TEXT)
    assert change_outside(TEXT, TEXT.replace("Project BLUEHERON", "project"), spans) == 0.0
    # A replacement may be a little longer than what it replaces.
    longer = TEXT.replace("Project BLUEHERON", "new onboarding project")
    assert change_outside(TEXT, longer, spans) == 0.0
    assert change_outside(TEXT, TEXT.replace("Project BLUEHERON ", ""), spans) == 0.0


def test_changes_elsewhere_count() -> None:
    spans = _spans(TEXT)
    moved = TEXT.replace("Project BLUEHERON", "project").replace("Thursday", "Monday")
    assert 0.05 < change_outside(TEXT, moved, spans) < 0.2
    other = "Everyone can go home early today because the office is closed."
    assert change_outside(TEXT, other, spans) > 0.8
    # A long insertion beside a span is change beyond the slack.
    padded = TEXT.replace("Project BLUEHERON", "project that we started last spring with a team")
    assert change_outside(TEXT, padded, spans) > 0.2


def test_findings_name_the_check_and_the_values() -> None:
    text = "Project BLUEHERON and ORCA-7 and ORCA-7 again"
    found = [Span("EMAIL_ADDRESS", 0, 5, "a@b.c")]
    findings = static_findings(PATTERNS, _spans(text), found)
    assert [f.check for f in findings] == ["must_not_match", "must_not_match", "no_entities"]
    assert findings[1].values == ("ORCA-7",)
    assert '"a@b.c" (EMAIL_ADDRESS)' in findings[2].detail
    assert static_findings(PATTERNS, _spans("nothing here"), []) == []


def test_replace_spans_uses_the_placeholder_and_entity_types() -> None:
    text = "Project BLUEHERON: mail ann@example.com"
    spans = [*_spans(text), Span("EMAIL_ADDRESS", 24, 39, "ann@example.com")]
    assert replace_spans(text, spans, "[X]") == "[X]: mail <EMAIL_ADDRESS>"
    overlapping = [Span("PATTERN", 0, 7, "Project"), Span("PERSON", 4, 17, "ect BLUEHERON")]
    assert replace_spans(text, overlapping, "[X]") == "[X]: mail ann@example.com"


def test_checks_need_a_criterion_and_valid_patterns() -> None:
    with pytest.raises(ValidationError, match="give at least one of"):
        Checks(max_change=0.2)
    with pytest.raises(ValidationError, match=r"must_not_match\[1\]"):
        Checks(must_not_match=["ok", "[unclosed"])
    assert Checks(no_entities=["PERSON"]).no_entities == ["PERSON"]
