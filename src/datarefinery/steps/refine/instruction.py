"""``refine``: refinement by instruction, GDR's "any criterion by prompt".

The model edits each record as ``instruction`` says; ``checks`` say what the output must satisfy,
and are verified, never taken from the model's word:

- ``must_not_match``: regular expressions that must not match the output;
- ``no_entities``: detector entity types (``detector:``) that must not remain;
- ``judge: {criterion, threshold}``: the model, in a separate request, rates 1..5 whether the
  criterion holds for the output (asked only once the cheap checks pass);
- ``max_change``: the share of the text outside what had to change (the input's pattern
  matches and entities) a rewrite may change, 1 - token F1 as ``delta`` measures it for PII.

A record whose input already passes every check is not sent to the model (outcome
``unchanged``) unless ``always_rewrite``. A failed check is re-asked with the checks named and
the offending matches (``max_reasks`` times); then ``on_fail`` decides: ``reject`` (the reason
names the check), ``keep_original`` (the input, ``verified: false``) or ``regex_replace`` (the
matches and entities of the last rewrite, else of the input, replaced by ``placeholder`` and
``<TYPE>``, then verified again; rejected if that still fails).

Provenance ``conditioning.outcome`` is one of ``rewritten``, ``rewritten_patched``, ``replaced``,
``kept_original``, ``unchanged``; ``technique`` is ``gdr`` for the first two, ``dirs`` for
``replaced`` and empty otherwise. The offending values are never written to provenance.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Literal

from pydantic import ConfigDict, Field, create_model, model_validator

from datarefinery.detect.base import Span
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Message, Request
from datarefinery.llm.structured import schema_of
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Failure, LLMCall, Output, StepContext
from datarefinery.steps.refine.instruction_checks import (
    Checks,
    Finding,
    change_outside,
    entity_spans,
    pattern_spans,
    replace_spans,
    static_findings,
)
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection, with_text
from datarefinery.steps.refine.verified_rewrite import VerifiedRewrite

OnFail = Literal["reject", "keep_original", "regex_replace"]
REASONS = {
    "must_not_match": "pattern_remains",
    "no_entities": "entity_remains",
    "judge": "judge_below_threshold",
    "max_change": "changed_too_much",
}
TECHNIQUES = {"rewritten": "gdr", "rewritten_patched": "gdr", "replaced": "dirs"}


class RefineConfig(TextStepConfig):
    instruction: str = Field(..., min_length=3, description="what to change in each record")
    checks: Checks
    detector: DetectorConfig = Field(
        default_factory=DetectorConfig, description="the detector of checks.no_entities"
    )
    on_fail: OnFail = Field(default="reject", description="after the last re-ask still fails")
    placeholder: str = Field(default="[REDACTED]", description="regex_replace: for each match")
    always_rewrite: bool = Field(
        default=False, description="also ask the model when the input already passes every check"
    )
    max_reasks: int = Field(default=1, ge=0, le=5, description="re-asks after a failed check")
    template: str = "refine"
    judge_template: str = "refine_judge"
    temperature: float | None = Field(default=0.2, ge=0, le=2)

    @model_validator(mode="after")
    def _replace_needs_patterns(self) -> RefineConfig:
        if self.on_fail == "regex_replace" and not (
            self.checks.must_not_match or self.checks.no_entities
        ):
            raise ValueError(
                "on_fail: regex_replace replaces what checks.must_not_match or "
                "checks.no_entities find; give one of them, or use on_fail: reject"
            )
        return self


class Refine(VerifiedRewrite[RefineConfig]):
    name = "refine"
    Config = RefineConfig

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        checks = self.config.checks
        self.patterns = checks.patterns()
        self.detector = (
            make_detector(self.config.detector, entities=set(checks.no_entities))
            if checks.no_entities
            else None
        )
        self.template = load_template(self.config.template)
        self.judge_template = load_template(self.config.judge_template) if checks.judge else None
        self.verdict_model = create_model(
            "CriterionVerdict",
            __config__=ConfigDict(extra="forbid"),
            reason=(str, Field(..., min_length=1, max_length=200)),
            score=(Literal[1, 2, 3, 4, 5], ...),
        )

    def _spans(self, text: str) -> tuple[list[Span], list[Span]]:
        return pattern_spans(self.patterns, text), entity_spans(self.detector, text)

    async def _judge(self, record: Record, text: str, key: object) -> tuple[int | None, str]:
        """The judge's score of ``text`` and its reason (``None`` and why, without a verdict)."""
        assert self.judge_template is not None and self.config.checks.judge is not None
        messages = self.judge_template.render(
            criterion=self.config.checks.judge.criterion, text=text
        )
        request = Request(
            messages=messages,
            params=self.sampling(temperature=0.0, max_tokens=128),
            json_schema=schema_of(self.verdict_model),
            seed=self.ctx.call_seed(record.id, "judge", key),
        )
        answer = await self.ask(LLMCall(request, self.verdict_model))
        if isinstance(answer, Failure):
            return None, answer.reason
        return int(answer.value.score), str(answer.value.reason)

    async def verify(
        self, record: Record, text: str, candidate: str, must_change: list[Span], key: object
    ) -> tuple[list[Finding], int | None]:
        """The failed checks of ``candidate`` (a rewrite of ``text``, or ``text`` itself) and the
        judge's score when it was asked: only when the other checks pass, to spare a call.
        """
        checks = self.config.checks
        matched, found = await asyncio.to_thread(self._spans, candidate)
        findings = static_findings(self.patterns, matched, found)
        if checks.max_change is not None and candidate != text:
            change = change_outside(text, candidate, must_change)
            if change > checks.max_change:
                detail = (
                    f"changed {change:.0%} of the text that had to stay "
                    f"(at most {checks.max_change:.0%})"
                )
                findings.append(Finding("max_change", detail))
        if checks.judge is None or findings:
            return findings, None
        score, reason = await self._judge(record, candidate, key)
        if score is None:
            findings.append(Finding("judge", f"the judge gave no valid verdict ({reason})"))
        elif score < checks.judge.threshold:
            detail = f"scored {score} of 5 (needs {checks.judge.threshold}): {reason}"
            findings.append(Finding("judge", detail))
        return findings, score

    @staticmethod
    def reask_text(findings: list[Finding]) -> str:
        listed = "\n".join(f"- {f.check}: {f.detail}" for f in findings)
        return (
            f"Your edit does not pass these checks:\n{listed}\n"
            "Fix them, keep the rest of the original text as it was, and answer again with "
            'only the JSON object {"text": ...}.'
        )

    async def refine(self, record: Record) -> Output:
        text, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert text is not None
        matched, found = await asyncio.to_thread(self._spans, text)
        must_change = [*matched, *found]
        on_input = static_findings(self.patterns, matched, found)
        score = None
        if not on_input and not self.config.always_rewrite:
            on_input, score = await self.verify(record, text, text, must_change, "input")
            if not on_input:
                return self._emit(record, text, text, must_change, "unchanged", 0, score)
        hints = list(dict.fromkeys(s.value for s in must_change))
        messages = self.template.render(instruction=self.config.instruction, text=text, hints=hints)
        return await self._rewrite(record, text, must_change, messages, on_input)

    async def _rewrite(
        self,
        record: Record,
        text: str,
        must_change: list[Span],
        messages: tuple[Message, ...],
        on_input: list[Finding],
    ) -> Output:
        """Ask, verify, re-ask with what failed; then the fallback."""
        engine = self.ctx.require_engine()
        failed = list(dict.fromkeys(c.check for c in on_input))
        findings: list[Finding] = []
        last: str | None = None
        attempts = 0
        for attempt in range(self.config.max_reasks + 1):
            call = self.rewrite_call(record, messages, text, attempt, self.config.temperature)
            try:
                result = await engine.complete_structured(call.request, call.reply_model)
            except RequestRejectedError as exc:
                findings = [Finding("backend_refused", str(exc))]
                break
            attempts += 1
            if result.value is None:
                reason = result.failure.reason if result.failure else "invalid_reply"
                findings = [Finding(reason, f"last reply {result.raw_text[:300]!r}")]
                break
            rewrite = str(result.value.text)
            findings, score = await self.verify(record, text, rewrite, must_change, attempt)
            if not findings:
                return self._emit(
                    record, text, rewrite, must_change, "rewritten", attempts, score, failed
                )
            last = rewrite
            messages = (
                *call.request.messages,
                Message("assistant", result.raw_text),
                Message("user", self.reask_text(findings)),
            )
        return await self._fall_back(record, text, last, must_change, findings, attempts, failed)

    async def _fall_back(
        self,
        record: Record,
        text: str,
        rewrite: str | None,
        must_change: list[Span],
        findings: list[Finding],
        attempts: int,
        failed: list[str],
    ) -> Output:
        why = ", ".join(f.check for f in findings)
        if self.config.on_fail == "keep_original":
            return self._emit(
                record,
                text,
                text,
                must_change,
                "kept_original",
                attempts,
                None,
                failed,
                why,
                verified=False,
            )
        if self.config.on_fail == "regex_replace":
            for candidate, outcome in ((rewrite, "rewritten_patched"), (text, "replaced")):
                if candidate is None:
                    continue
                matched, found = await asyncio.to_thread(self._spans, candidate)
                patched = replace_spans(candidate, [*matched, *found], self.config.placeholder)
                remaining, score = await self.verify(record, text, patched, must_change, outcome)
                if not remaining:
                    return self._emit(
                        record, text, patched, must_change, outcome, attempts, score, failed, why
                    )
                findings = remaining
        first = findings[0].check if findings else "invalid_reply"
        detail = "; ".join(f"{f.check}: {f.detail}" for f in findings)
        if self.config.on_fail == "regex_replace":
            detail = f"after {self.config.placeholder!r} replacement: {detail}"
        return Rejected(record, self.ctx.name, REASONS.get(first, first), detail)

    def _emit(
        self,
        record: Record,
        text: str,
        output: str,
        must_change: list[Span],
        outcome: str,
        attempts: int,
        score: int | None = None,
        failed: list[str] | None = None,
        fallback: str = "",
        *,
        verified: bool = True,
    ) -> Record:
        scores: dict[str, Any] = {
            "attempts": attempts,
            "verified": verified,
            "change_outside": change_outside(text, output, must_change),
        }
        if score is not None:
            scores["judge_score"] = score
        model = self.ctx.require_engine().model_identity if attempts else None
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique=TECHNIQUES.get(outcome, ""),
            model=model,
            template_hash=self.template.hash if attempts else None,
            conditioning={
                "outcome": outcome,
                # Check names and entity types only: the matched values are what had to go.
                "failed_on_input": failed or [],
                "fallback": fallback,
                "spans_to_change": dict(Counter(s.entity_type for s in must_change)),
            },
            scores=scores,
        )
