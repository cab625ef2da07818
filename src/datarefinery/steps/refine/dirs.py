"""``dirs``: detect-and-replace, the baseline of the GDR paper (DIRS).

Each detected span is replaced by a placeholder (``<PERSON>``) or a Faker surrogate; no model.
Every other occurrence of a detected value in the record is replaced too (a name detected once but
written twice must not survive the second time).
"""

from __future__ import annotations

from pydantic import Field

from datarefinery.detect.base import PIIDetector, Span, resolve_overlaps
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.records import Record
from datarefinery.steps.base import Output, RecordStep, StepContext
from datarefinery.steps.refine.checks import delta
from datarefinery.steps.refine.surrogates import (
    Consistency,
    Mode,
    Replacement,
    SurrogatePlanner,
    apply_replacements,
)
from datarefinery.steps.refine.text_field import TextStepConfig, text_or_rejection, with_text
from datarefinery.text import value_pattern


class DirsConfig(TextStepConfig):
    mode: Mode = Field(default="placeholder", description="placeholder (<PERSON>) or surrogate")
    consistency: Consistency = Field(
        default="record", description="same fake for the same value within a record or dataset"
    )
    detector: DetectorConfig = Field(default_factory=DetectorConfig)


def with_repeats(text: str, spans: list[Span]) -> list[Span]:
    """``spans`` plus every other occurrence of their values in ``text``."""
    extra = [
        Span(span.entity_type, m.start(), m.end(), m.group(0), span.score, "repeat")
        for span in spans
        for m in value_pattern(span.value).finditer(text)
        if len(span.value.strip()) >= 2
    ]
    return resolve_overlaps([*spans, *extra])


def replace_pii(
    text: str, record_id: str, detector: PIIDetector, planner: SurrogatePlanner
) -> tuple[str, list[Replacement]]:
    """Detect, plan and apply: the replaced text and what was replaced."""
    spans = with_repeats(text, detector.detect(text))
    replacements = planner.plan(record_id, spans)
    return apply_replacements(text, replacements), replacements


class Dirs(RecordStep[DirsConfig]):
    name = "dirs"
    uses_surrogate_key = True
    cpu_bound = True
    Config = DirsConfig

    def writes(self, task: object) -> set[str]:
        return {self.config.field}

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.detector = make_detector(self.config.detector)
        key = ctx.read_surrogate_key() if self.config.mode == "surrogate" else None
        self.planner = SurrogatePlanner(self.config.mode, self.config.consistency, key)

    def apply(self, record: Record) -> Output:
        text, rejected = text_or_rejection(record, self.config, self.ctx.name)
        if rejected is not None:
            return rejected
        assert text is not None
        output, replacements = replace_pii(text, record.id, self.detector, self.planner)
        return with_text(
            record,
            self.config.field,
            output,
            step=self.ctx.name,
            technique=f"dirs_{self.config.mode}",
            conditioning={"replaced": [r.to_public() for r in replacements]},
            scores={"pii_spans": len(replacements), **delta(text, output, replacements)},
        )
