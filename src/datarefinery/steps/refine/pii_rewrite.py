"""``pii_rewrite``: Generative Data Refinement for PII, verified.

For a record x the detector finds the PII spans and the planner picks a surrogate for each (the
hints); the model rewrites x into y. Then y is checked, never trusted:

1. no original value detected in x occurs in y (any case, any spacing; numbers by their digits);
2. re-detection on y finds no PII whose value occurs in x (what the first detection missed);
3. the text outside the PII spans is kept (token F1 >= ``min_preservation``), so a model that
   drops or invents content does not pass.

A failed check is re-asked with what leaked (``max_reasks`` times). As a last resort the leaked
values in the model's rewrite are replaced by their surrogates, or, when the rewrite itself is
unusable, x's spans are; a record whose output would still hold an original value is rejected
(``leak``), so a leaking record is never emitted. Provenance keeps the types, offsets and
surrogates of what was replaced, never the original values.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from pydantic import Field

from datarefinery.detect.base import Span
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.errors import RequestRejectedError
from datarefinery.llm.base import Message
from datarefinery.prompts.render import load_template
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, StepContext
from datarefinery.steps.refine.checks import delta, leaked_values
from datarefinery.steps.refine.chunks import join_chunks, split_chunks
from datarefinery.steps.refine.dirs import with_repeats
from datarefinery.steps.refine.surrogates import (
    Consistency,
    Replacement,
    SurrogatePlanner,
    apply_replacements,
    normalize_value,
)
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection, with_text
from datarefinery.steps.refine.verified_rewrite import Part, VerifiedRewrite, chunk_limit
from datarefinery.text import contains_value, value_pattern


class PIIRewriteConfig(TextStepConfig):
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    consistency: Consistency = Field(
        default="record", description="same fake for the same value within a record or dataset"
    )
    rewrite_clean: bool = Field(
        default=False,
        description="also send records with no detected PII to the model (to catch misses)",
    )
    max_reasks: int = Field(default=1, ge=0, le=5, description="re-asks after a failed check")
    min_preservation: float = Field(
        default=0.7, ge=0, le=1, description="token F1 outside PII spans a rewrite must keep"
    )
    chunk_chars: int = Field(
        default=1000,
        ge=100,
        description="longer texts are rewritten in chunks of about this size (paragraphs, then "
        "sentences), each its own model call; smaller where the model's context holds less",
    )
    template: str = "pii_rewrite"
    temperature: float | None = Field(default=0.2, ge=0, le=2)


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

    def _spans(self, text: str) -> list[Span]:
        return with_repeats(text, self.detector.detect(text))

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
        # Detection is CPU work (spaCy): off the event loop, so model calls of other records go on.
        spans = await asyncio.to_thread(self._spans, text)
        plan = self.planner.plan(record.id, spans)
        if not plan and not self.config.rewrite_clean:
            return self._emit(record, text, text, plan, attempts=0, fallback="", caught=[])

        parts = self._parts(text, plan)
        caught: list[str] = []
        last_good: str | None = None
        for attempt in range(self.config.max_reasks + 1):
            try:
                failure = await self.ask_parts(record, parts, attempt, self.config.temperature)
            except RequestRejectedError:
                return self._fallback(record, text, plan, None, attempt + 1, "backend_refused", [])
            if failure is not None:
                return self._fallback(
                    record, text, plan, last_good, attempt + 1, failure.reason, caught
                )
            rewrite = join_chunks([p.chunk for p in parts], [p.rewrite or "" for p in parts])
            leaks = await asyncio.to_thread(self._leaks, text, plan, rewrite)
            plan = self._extend_plan(record.id, plan, leaks)
            kept = delta(text, rewrite, plan)["token_f1_outside_pii"]
            if not leaks and kept >= self.config.min_preservation:
                return self._emit(
                    record, text, rewrite, plan, attempts=attempt + 1, fallback="", caught=caught
                )
            caught.extend(r.entity_type for r in leaks)
            last_good = rewrite if kept >= self.config.min_preservation else last_good
            problem = self._reask_text(leaks, kept)
            for part in self._to_reask(parts, leaks):
                part.reask(problem)
        reason = "leak_after_reask" if caught else "changed_too_much"
        return self._fallback(
            record, text, plan, last_good, self.config.max_reasks + 1, reason, caught
        )

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

    @staticmethod
    def _reask_text(leaks: list[Replacement], kept: float) -> str:
        if leaks:
            listed = "; ".join(
                f'"{r.original}" ({r.entity_type}) -> "{r.replacement}"' for r in leaks
            )
            return (
                f"Your rewrite still contains personal information from the original: {listed}. "
                "Make these replacements, keep the rest of the text as it was, and answer again "
                'with only the JSON object {"text": ...}.'
            )
        return (
            f"Your rewrite changed too much of the text (only {kept:.0%} of the other words "
            "kept). Change only the personal information and answer again with only the JSON "
            'object {"text": ...}.'
        )

    def _fallback(
        self,
        record: Record,
        text: str,
        plan: list[Replacement],
        rewrite: str | None,
        attempts: int,
        reason: str,
        caught: list[str],
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
                    attempts=attempts,
                    fallback=f"patched:{reason}",
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
            attempts=attempts,
            fallback=f"surrogate:{reason}",
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
        *,
        attempts: int,
        fallback: str,
        caught: list[str],
    ) -> Record:
        engine = self.ctx.require_engine()
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique="gdr",
            model=engine.model_identity if attempts else None,
            template_hash=self.template.hash if attempts else None,
            conditioning={
                "replaced": [r.to_public() for r in plan],
                "fallback": fallback,
                "leaks_caught": caught,
            },
            scores={
                "pii_spans": len(plan),
                "attempts": attempts,
                "verified": True,
                **delta(text, output, plan),
            },
        )
