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
from typing import Any, Literal

from pydantic import Field

from datarefinery.detect.base import Span, resolve_overlaps
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.llm.base import Request
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import (
    Failure,
    LLMCall,
    ModelStep,
    Output,
    StepContext,
    gather_or_cancel,
)
from datarefinery.steps.refine import code_lines
from datarefinery.steps.refine.code_lines import LineRewrite, LinesReply
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
    model_pass: bool = Field(
        default=True,
        description="the model reads every comment and string line and rewrites what it finds "
        "(verified; false: regexes and detectors only, no model loaded)",
    )
    batch_lines: int = Field(
        default=code_lines.MAX_LINES, ge=1, le=code_lines.MAX_LINES, description="lines a request"
    )
    max_reasks: int = Field(default=1, ge=0, le=3, description="re-asks after a failed check")
    template: str = "code_anonymize"


class CodeAnonymize(ModelStep[CodeAnonymizeConfig]):
    name = "code_anonymize"
    uses_surrogate_key = True
    Config = CodeAnonymizeConfig

    def __init__(self, config: CodeAnonymizeConfig) -> None:
        super().__init__(config)
        # Without the model pass the run must not load a model.
        self.uses_llm = config.model_pass  # type: ignore[misc]

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.detector = make_detector(self.config.detector)
        self.planner = SurrogatePlanner("surrogate", "record", ctx.read_surrogate_key())
        self.template = load_template(self.config.template)

    async def process(self, batch: list[Record]) -> list[Output]:
        async def one(record: Record) -> Output:
            output = await self.refine(record)
            if self.config.model_pass:
                self.report([output])
            return output

        return await gather_or_cancel(*(one(record) for record in batch))

    def _regions(self, record: Record, code: str) -> list[tuple[int, int]] | Rejected:
        if self.config.language != "python":
            return [(0, len(code))]
        try:
            ast.parse(code)
            return python_regions(code)
        except (SyntaxError, tokenize.TokenError, ValueError) as exc:
            return Rejected(record, self.ctx.name, "unparsable", f"not valid Python: {exc}")

    def _spans(self, code: str, regions: list[tuple[int, int]], claims: list[str]) -> list[Span]:
        """The values to replace inside comments and strings: secrets over the whole code (the
        name before "=" tells a password), the detectors' finds, and the model's checked claims.
        """
        spans: list[Span] = list(find_secrets(code) if self.config.secrets else [])
        for start, end in regions:
            found = self.detector.detect(code[start:end])
            spans.extend(
                Span(s.entity_type, s.start + start, s.end + start, s.value, s.score, s.detector)
                for s in resolve_overlaps(found)
            )
        for value in claims:
            spans.extend(
                Span("SECRET", m.start(), m.end(), value, 0.5, "model")
                for m in re.finditer(re.escape(value), code)
            )
        # A value seen in a comment is replaced wherever it recurs inside comments and strings.
        return [
            s
            for s in with_repeats(code, resolve_overlaps(spans))
            if any(a <= s.start and s.end <= b for a, b in regions)
        ]

    async def refine(self, record: Record) -> Output:
        code, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert code is not None
        regions = self._regions(record, code)
        if isinstance(regions, Rejected):
            return regions
        spans = self._spans(code, regions, [])
        if not self.config.model_pass:
            return self._replace(record, code, spans, {})
        return await self._model_pass(record, code, regions, spans)

    async def _model_pass(
        self, record: Record, code: str, regions: list[tuple[int, int]], spans: list[Span]
    ) -> Output:
        python = self.config.language == "python"
        shown = code_lines.python_lines(code) if python else code_lines.other_lines(code)
        found: dict[str, Any] = {"detectors": len(spans), "model_lines_shown": len(shown)}
        problem = ""
        claims: list[str] = []
        for attempt in range(self.config.max_reasks + 1):
            reply = await self._ask(record, code, shown, problem, attempt)
            if isinstance(reply, Failure):
                found["model_failed"] = reply.reason
                break
            rewrite, ignored = code_lines.apply_lines(code, set(shown), reply)
            new_claims, dropped = code_lines.claimed_values(code, reply)
            claims.extend(c for c in new_claims if c not in claims)
            found.update(model_lines=len(reply), model_ignored=ignored, model_dropped=dropped)
            values = [*{s.value for s in spans}, *claims]
            problem = code_lines.structure_problem(code, rewrite, python)
            left = code_lines.remaining(rewrite, values)
            if not problem and left:
                problem = "a secret or personal value is still on line(s) " + ", ".join(
                    map(str, left)
                )
            if not problem:
                found["attempts"] = attempt + 1
                outcome = "rewritten" if rewrite != code else "unchanged"
                return self._emit(record, code, rewrite, outcome, [], found)
        found["fallback"] = problem or found.get("model_failed", "")
        return self._replace(record, code, self._spans(code, regions, claims), found)

    async def _ask(
        self, record: Record, code: str, shown: list[int], problem: str, attempt: int
    ) -> list[LineRewrite] | Failure:
        """Every batch of shown lines asked; the reply lines of all batches together."""
        lines = code.splitlines()
        calls = []
        for index, numbers in enumerate(code_lines.batches(shown, self.config.batch_lines)):
            request = Request(
                messages=self.template.render(
                    language=self.config.language,
                    lines=code_lines.numbered(lines, numbers),
                    problem=problem,
                ),
                params=self.sampling(temperature=0.0, max_tokens=64 + 160 * len(numbers)),
                json_schema=LinesReply.model_json_schema(),
                seed=self.ctx.call_seed(record.id, index, attempt),
            )
            calls.append(self.ask(LLMCall(request, LinesReply)))
        answers = await gather_or_cancel(*calls)
        reply: list[LineRewrite] = []
        for answer in answers:
            if isinstance(answer, Failure):
                return answer
            reply.extend(answer.value.lines)
        return reply

    def _replace(
        self, record: Record, code: str, spans: list[Span], found: dict[str, Any]
    ) -> Output:
        replacements = self.planner.plan(record.id, spans)
        output = apply_replacements(code, replacements)
        if self.config.language == "python":
            try:
                ast.parse(output)
            except SyntaxError as exc:  # a replacement that broke a literal: never emit it
                return Rejected(record, self.ctx.name, "unparsable_after", str(exc))
        outcome = "replaced" if replacements else "unchanged"
        return self._emit(record, code, output, outcome, replacements, found)

    def _emit(
        self,
        record: Record,
        code: str,
        output: str,
        outcome: str,
        replacements: list[Any],
        found: dict[str, Any],
    ) -> Record:
        lines = changed_lines(code, output)
        conditioning: dict[str, Any] = {
            "outcome": outcome,
            "replaced": [r.to_public() for r in replacements],
            "changed_lines": lines,
        }
        if found:
            conditioning["found"] = found  # counts only: never a value
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique="code_anonymize",
            conditioning=conditioning,
            scores={"pii_spans": len(replacements), "changed_lines": len(lines)},
        )
