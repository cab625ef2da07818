"""``code_anonymize``: PII and secrets out of source code, line by line, the code still valid.

Only comments and string literals are touched (found with Python's own ``tokenize`` for Python;
for other languages, whole lines), so identifiers and syntax cannot break. In them it replaces
secrets (cloud keys, tokens, private keys, passwords assigned to secret-looking names) with
same-shaped fakes, and PII found by the detector (e-mails, IPs, phones, names in comments and
strings) with surrogates. Python must still ``ast.parse`` afterwards, or the record is rejected
(``unparsable_after``); input that does not parse is rejected up front (``unparsable``). No model
is used: deterministic rewriting is what keeps code valid.
``provenance.conditioning.changed_lines`` lists the 1-based line numbers that changed
(``scores.changed_lines`` their count).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from typing import Literal

from pydantic import Field

from datarefinery.detect.base import Span, resolve_overlaps
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.records import Record
from datarefinery.steps.base import Output, RecordStep, StepContext
from datarefinery.steps.refine.dirs import with_repeats
from datarefinery.steps.refine.surrogates import SurrogatePlanner, apply_replacements
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection, with_text

# (type, pattern, group holding the secret)
SECRET_PATTERNS: list[tuple[str, re.Pattern[str], int]] = [
    ("AWS_ACCESS_KEY", re.compile(r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b"), 1),
    ("GITHUB_TOKEN", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{36,255})\b"), 1),
    ("SLACK_TOKEN", re.compile(r"\b(xox[abposr]-[A-Za-z0-9-]{10,})\b"), 1),
    ("OPENAI_KEY", re.compile(r"\b(sk-(?:proj-)?[A-Za-z0-9_-]{20,})\b"), 1),
    ("GOOGLE_API_KEY", re.compile(r"\b(AIza[0-9A-Za-z_-]{35})\b"), 1),
    ("STRIPE_KEY", re.compile(r"\b((?:sk|pk|rk)_(?:live|test)_[0-9A-Za-z]{16,})\b"), 1),
    ("JWT", re.compile(r"\b(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b"), 1),
    (
        "PRIVATE_KEY",
        re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----)"),
        1,
    ),
    # password = "...", api_key: '...', "token": "..."  (the value, whatever its shape)
    (
        "SECRET",
        re.compile(
            r"(?i)(?:pass(?:word|wd)?|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token|"
            r"client[_-]?secret)[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"
        ),
        1,
    ),
    ("URL_CREDENTIALS", re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@"), 1),
]


def find_secrets(text: str) -> list[Span]:
    spans = []
    for kind, pattern, group in SECRET_PATTERNS:
        for match in pattern.finditer(text):
            start, end = match.span(group)
            spans.append(Span(kind, start, end, match.group(group), 1.0, "secrets"))
    return resolve_overlaps(spans)


def _offsets(code: str) -> list[int]:
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def python_regions(code: str) -> list[tuple[int, int]]:
    """Character ranges of comments and string literals (f-string parts included)."""
    starts = _offsets(code)
    kinds = {tokenize.COMMENT, tokenize.STRING}
    fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", None)
    if fstring_middle is not None:
        kinds.add(fstring_middle)
    regions = []
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type in kinds:
            (srow, scol), (erow, ecol) = token.start, token.end
            regions.append((starts[srow - 1] + scol, starts[erow - 1] + ecol))
    return regions


def changed_lines(before: str, after: str) -> list[int]:
    """1-based numbers of the lines that differ (replacements never add or remove lines)."""
    old, new = before.splitlines(), after.splitlines()
    if len(old) != len(new):
        return list(range(1, max(len(old), len(new)) + 1))
    return [i for i, (a, b) in enumerate(zip(old, new, strict=True), start=1) if a != b]


class CodeAnonymizeConfig(TextStepConfig):
    language: Literal["python", "other"] = Field(
        default="python", description="python: only comments/strings change and ast.parse checks"
    )
    detector: DetectorConfig = Field(
        default_factory=lambda: DetectorConfig(
            entities=[
                "PERSON",
                "EMAIL_ADDRESS",
                "IP_ADDRESS",
                "PHONE_NUMBER",
                "URL",
                "CREDIT_CARD",
                "IBAN_CODE",
                "US_SSN",
                "STREET_ADDRESS",
            ]
        )
    )
    secrets: bool = Field(default=True, description="replace keys, tokens and passwords")


class CodeAnonymize(RecordStep[CodeAnonymizeConfig]):
    name = "code_anonymize"
    Config = CodeAnonymizeConfig

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.detector = make_detector(self.config.detector)
        self.planner = SurrogatePlanner("surrogate", "record", ctx.seed)

    def apply(self, record: Record) -> Output:
        from datarefinery.records import Rejected

        code, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert code is not None
        python = self.config.language == "python"
        if python:
            try:
                ast.parse(code)
                regions = python_regions(code)
            except (SyntaxError, tokenize.TokenError, ValueError) as exc:
                return Rejected(record, self.ctx.name, "unparsable", f"not valid Python: {exc}")
        else:
            regions = [(0, len(code))]
        # Secrets over the whole code (the name before "=" tells a password), kept where they
        # fall inside a comment or string.
        spans: list[Span] = [
            s
            for s in (find_secrets(code) if self.config.secrets else [])
            if any(a <= s.start and s.end <= b for a, b in regions)
        ]
        for start, end in regions:
            piece = code[start:end]
            found = self.detector.detect(piece)
            spans.extend(
                Span(s.entity_type, s.start + start, s.end + start, s.value, s.score, s.detector)
                for s in resolve_overlaps(found)
            )
        # A value seen in a comment is replaced wherever it recurs inside comments and strings.
        spans = [
            s
            for s in with_repeats(code, resolve_overlaps(spans))
            if any(a <= s.start and s.end <= b for a, b in regions)
        ]
        replacements = self.planner.plan(record.id, spans)
        output = apply_replacements(code, replacements)
        if python:
            try:
                ast.parse(output)
            except SyntaxError as exc:  # a replacement that broke a literal: never emit it
                return Rejected(record, self.ctx.name, "unparsable_after", str(exc))
        lines = changed_lines(code, output)
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique="code_anonymize",
            conditioning={
                "replaced": [r.to_public() for r in replacements],
                "changed_lines": lines,
            },
            scores={"pii_spans": len(replacements), "changed_lines": len(lines)},
        )
