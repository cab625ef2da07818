"""``pii_rewrite``: Generative Data Refinement for PII, verified.

For a record x the detectors find PII spans and, by default (``detection: model+detectors``), the
model lists the personal values it sees (``model_detect``): the claims found in x are united with
the detectors' spans, so the model reads every record and detection does not bound recall. The
planner picks a surrogate for each span (the hints); the model rewrites x into y. Then y is
checked, never trusted, against every span, the model's included:

1. no original value detected in x occurs in y (any case, any spacing; numbers by their digits);
2. re-detection on y finds no PII whose value occurs in x (what the first detection missed);
3. the text outside the PII spans is kept: at most ``max_edits.tokens`` + ``max_edits.share``
   x (its tokens) words and marks there are edited, aligned in order (``checks.changed_outside``),
   so a model that drops, moves or invents content does not pass, in a short text or a long one.

A failed check is re-asked with what leaked (``max_reasks`` times). As a last resort the leaked
values in the model's rewrite are replaced by their surrogates, or, when the rewrite itself is
unusable, x's spans are; a record whose output would still hold an original value is rejected
(``leak``), so a leaking record is never emitted. Provenance keeps the types, offsets and
surrogates of what was replaced, never the original values.

Each emitted record's ``conditioning["outcome"]`` says which of these it is (``outcomes``:
``rewritten``, ``rewritten_patched``, ``replaced``, ``unchanged``), and the technique follows it;
``scores["verified"]`` is the leak check's result on the output, for every outcome.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from datarefinery.detect.base import Span
from datarefinery.detect.factory import make_detector
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Message, Request
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Failure, LLMCall, Output, StepContext
from datarefinery.steps.refine.checks import changed_outside, delta, leaked_values, reask_text
from datarefinery.steps.refine.chunks import join_chunks, split_chunks
from datarefinery.steps.refine.dirs import with_repeats
from datarefinery.steps.refine.model_detect import (
    MAX_VALUES,
    DetectionReply,
    ModelFindings,
    claims_to_spans,
)
from datarefinery.steps.refine.outcomes import TECHNIQUE_OF_OUTCOME, Outcome
from datarefinery.steps.refine.pii_config import PIIRewriteConfig
from datarefinery.steps.refine.surrogates import (
    Replacement,
    SurrogatePlanner,
    apply_replacements,
    normalize_value,
)
from datarefinery.steps.refine.text_field import text_or_rejection, with_text
from datarefinery.steps.refine.verified_rewrite import Part, VerifiedRewrite, chunk_limit
from datarefinery.text import contains_value, value_pattern

log = logging.getLogger(__name__)


def _literal(value: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: value


class PIIRewrite(VerifiedRewrite[PIIRewriteConfig]):
    name = "pii_rewrite"
    uses_surrogate_key = True
    Config = PIIRewriteConfig

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.detector = make_detector(self.config.detector)
        self.planner = SurrogatePlanner(
            "surrogate", self.config.consistency, ctx.read_surrogate_key()
        )
        self.template = load_template(self.config.template)
        self.detect_template = load_template(self.config.detect_template)

    def _spans(self, text: str) -> list[Span]:
        return with_repeats(text, self.detector.detect(text))

    async def _find(self, record: Record, text: str) -> tuple[list[Span], dict[str, Any]]:
        """The spans to replace (the detectors' and, by default, the model's), and how many each
        found (for provenance: counts, never values).
        """
        # Detection is CPU work (spaCy): off the event loop, so model calls of other records go on.
        spans = await asyncio.to_thread(self._spans, text)
        found: dict[str, Any] = {"detectors": len(spans)}
        if self.config.detection == "model+detectors":
            findings, failed = await self._model_findings(record, text)
            found.update(
                model=len(findings.spans),
                model_not_in_text=findings.not_in_text,
                model_other_type=findings.other_type,
                model_implausible=findings.implausible,
                model_failed=failed,
            )
            spans = with_repeats(text, [*spans, *findings.spans])
        return spans, found

    async def _model_findings(self, record: Record, text: str) -> tuple[ModelFindings, str]:
        """What the model claims to see in ``text``, checked against it; and ``""``, or why the
        detection call gave nothing (the record then goes on with the detectors' spans).
        """
        request = Request(
            messages=self.detect_template.render(text=text),
            params=self.sampling(temperature=0.0, max_tokens=64 + 48 * MAX_VALUES),
            json_schema=DetectionReply.model_json_schema(),
            seed=self.ctx.call_seed(record.id, "detect"),
        )
        answer = await self.ask(LLMCall(request, DetectionReply))
        if isinstance(answer, Failure):
            return ModelFindings([]), answer.reason
        findings = claims_to_spans(text, answer.value, self.config.detector.entity_set())
        if findings.not_in_text:
            # A count only: the claimed values may be personal data and never reach the logs.
            log.debug(
                "%s: record %s: %d model-claimed value(s) not in the text, ignored",
                self.ctx.name,
                record.id,
                findings.not_in_text,
            )
        return findings, ""

    def _messages(self, text: str, plan: list[Replacement]) -> tuple[Message, ...]:
        unique = {(r.original, r.entity_type): r for r in plan}
        return self.template.render(text=text, replacements=list(unique.values()))

    def _parts(self, text: str, plan: list[Replacement]) -> list[Part]:
        """One part per chunk, each with the hints of the spans inside it."""
        overhead = sum(len(m.content) for m in self._messages("", []))
        limit = chunk_limit(self.ctx.require_engine(), self.config.chunk_chars, overhead)
        parts = []
        for chunk in split_chunks(text, limit, [(r.start, r.end) for r in plan]):
            inside = [
                Replacement(
                    r.entity_type,
                    r.start - chunk.start,
                    r.end - chunk.start,
                    r.original,
                    r.replacement,
                    r.detector,
                )
                for r in plan
                if chunk.start <= r.start and r.end <= chunk.end
            ]
            expected = apply_replacements(chunk.body, inside)
            parts.append(Part(chunk, expected, self._messages(chunk.body, inside)))
        return parts

    @staticmethod
    def _to_reask(parts: list[Part], leaks: list[Replacement]) -> list[Part]:
        """The parts whose rewrite holds a leaked value; every part when none does (a rewrite
        that changed too much, or a leak only the whole text shows).
        """
        leaking = [
            part
            for part in parts
            if any(contains_value(part.rewrite or "", r.original) for r in leaks)
        ]
        return leaking or parts

    async def refine(self, record: Record) -> Output:
        text, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert text is not None
        spans, found = await self._find(record, text)
        plan = self.planner.plan(record.id, spans)
        if not plan:
            # Nothing found: the leak check has nothing to look for, and re-detection of the
            # unchanged text is the detection just made, so the output is verified as it is.
            return self._emit(record, text, text, plan, "unchanged", found, attempts=0)

        parts = self._parts(text, plan)
        caught: list[str] = []
        last_good: str | None = None
        for attempt in range(self.config.max_reasks + 1):
            try:
                failure = await self.ask_parts(record, parts, attempt, self.config.temperature)
            except RequestRejectedError:
                return self._fallback(
                    record, text, plan, None, attempt + 1, "backend_refused", [], found
                )
            if failure is not None:
                # A long text whose other chunks came back is a rewrite with the failed chunks
                # replaced, not a whole-text replacement: the leak check and patch still follow.
                answered = [p.rewrite if p.rewrite is not None else p.expected for p in parts]
                partial = join_chunks([p.chunk for p in parts], answered)
                if len(parts) > 1 and any(p.rewrite is not None for p in parts):
                    last_good = partial if self._kept(text, partial, plan) else last_good
                return self._fallback(
                    record, text, plan, last_good, attempt + 1, failure.reason, caught, found
                )
            rewrite = join_chunks([p.chunk for p in parts], [p.rewrite or "" for p in parts])
            leaks = await asyncio.to_thread(self._leaks, text, plan, rewrite)
            plan = self._extend_plan(record.id, plan, leaks)
            changed, outside = changed_outside(text, rewrite, plan)
            kept = self.config.max_edits.allows(changed, outside)
            if not leaks and kept:
                return self._emit(
                    record,
                    text,
                    rewrite,
                    plan,
                    "rewritten",
                    found,
                    attempts=attempt + 1,
                    caught=caught,
                )
            caught.extend(r.entity_type for r in leaks)
            last_good = rewrite if kept else last_good
            problem = reask_text(leaks, changed)
            for part in self._to_reask(parts, leaks):
                part.reask(problem)
        reason = "leak_after_reask" if caught else "changed_too_much"
        return self._fallback(
            record, text, plan, last_good, self.config.max_reasks + 1, reason, caught, found
        )

    def _kept(self, text: str, rewrite: str, plan: list[Replacement]) -> bool:
        return self.config.max_edits.allows(*changed_outside(text, rewrite, plan))

    def _leaks(self, text: str, plan: list[Replacement], rewrite: str) -> list[Replacement]:
        """Original values still in the rewrite, and PII re-detected in it that occurs in x."""
        leaks = leaked_values(plan, rewrite)
        surrogates = {normalize_value(r.replacement) for r in plan}
        known = {normalize_value(r.original) for r in leaks}
        for span in self.detector.detect(rewrite):
            value = normalize_value(span.value)
            if value in known or any(value in s for s in surrogates) or len(value) < 2:
                continue
            if contains_value(text, span.value):
                known.add(value)
                leaks.append(Replacement(span.entity_type, -1, -1, span.value, "", span.detector))
        return leaks

    def _extend_plan(
        self, record_id: str, plan: list[Replacement], leaks: list[Replacement]
    ) -> list[Replacement]:
        """Give every leak found only in the rewrite a surrogate (offsets -1: not a span of x)."""
        new = [r for r in leaks if r.start < 0 and not r.replacement]
        if not new:
            return plan
        spans = [Span(r.entity_type, 0, len(r.original), r.original) for r in new]
        planned = self.planner.plan(record_id, spans)
        extra = [Replacement(p.entity_type, -1, -1, p.original, p.replacement) for p in planned]
        for item in extra:
            for i, leak in enumerate(leaks):
                if leak.start < 0 and leak.original == item.original:
                    leaks[i] = item
        return [*plan, *extra]

    def _fallback(
        self,
        record: Record,
        text: str,
        plan: list[Replacement],
        rewrite: str | None,
        attempts: int,
        reason: str,
        caught: list[str],
        found: dict[str, Any],
    ) -> Output:
        """Surrogates for what still leaks: in the model's rewrite when it kept the text, else in
        x. Rejected only if even that leaves an original value in place.
        """
        if rewrite is not None:
            scrubbed = self._scrub(record.id, text, plan, rewrite)
            if scrubbed is not None:
                patched, plan = scrubbed
                return self._emit(
                    record,
                    text,
                    patched,
                    plan,
                    "rewritten_patched",
                    found,
                    attempts=attempts,
                    fallback=reason,
                    caught=caught,
                )
        in_x = [r for r in plan if r.start >= 0]
        scrubbed = self._scrub(record.id, text, in_x, apply_replacements(text, in_x))
        if scrubbed is None:
            detail = "surrogate replacement still leaves original values in place"
            return Rejected(record, self.ctx.name, "leak", detail)
        replaced, plan = scrubbed
        return self._emit(
            record,
            text,
            replaced,
            plan,
            "replaced",
            found,
            attempts=attempts,
            fallback=reason,
            caught=caught,
        )

    def _scrub(
        self, record_id: str, text: str, plan: list[Replacement], candidate: str
    ) -> tuple[str, list[Replacement]] | None:
        """Replace every value of x still found in ``candidate`` by its surrogate, re-checking
        (re-detection may find more); ``None`` if values remain after three rounds.
        """
        for _ in range(3):
            leaks = self._leaks(text, plan, candidate)
            if not leaks:
                return candidate, plan
            plan = self._extend_plan(record_id, plan, leaks)
            for item in leaks:
                # A function, not a template string: a surrogate may hold a backslash.
                candidate = value_pattern(item.original).sub(_literal(item.replacement), candidate)
        return None

    def _emit(
        self,
        record: Record,
        text: str,
        output: str,
        plan: list[Replacement],
        outcome: Outcome,
        found: dict[str, Any],
        *,
        attempts: int,
        fallback: str = "",
        caught: list[str] | None = None,
    ) -> Record:
        """The refined record. Every caller has run the leak check on ``output`` (and emits
        nothing that failed it), so ``verified`` is true here for every outcome.
        """
        asked = attempts > 0 or "model" in found
        template = self.template if attempts else self.detect_template if asked else None
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique=TECHNIQUE_OF_OUTCOME[outcome],
            model=self.ctx.require_engine().model_identity if asked else None,
            template_hash=template.hash if template is not None else None,
            conditioning={
                "outcome": outcome,
                "replaced": [r.to_public() for r in plan],
                "found": found,
                "fallback": fallback,
                "leaks_caught": caught or [],
            },
            scores={
                "pii_spans": len(plan),
                "attempts": attempts,
                "verified": True,
                **delta(text, output, plan),
            },
        )
