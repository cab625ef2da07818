"""The text field a refinement step rewrites: its options, why a record's text cannot be
refined, and the refined record.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepConfig


class TextStepConfig(StepConfig):
    field: str = Field(default="text", description="the text field to refine")
    max_chars: int = Field(
        default=100_000, ge=1, description="longer records are rejected (reason too_long)"
    )


def text_or_rejection(
    record: Record, config: TextStepConfig, step: str
) -> tuple[str, None] | tuple[None, Rejected]:
    """The record's text, or why it cannot be refined: missing, not text, empty, too long."""
    if config.field not in record.fields:
        present = ", ".join(sorted(record.fields)) or "none"
        detail = f"no field {config.field!r} (the record has: {present}); set the step's field"
        return None, Rejected(record, step, "missing_field", detail)
    value = record.fields[config.field]
    if not isinstance(value, str):
        detail = f"field {config.field!r} holds {type(value).__name__}, not text"
        return None, Rejected(record, step, "invalid_field", detail)
    if not value.strip():
        return None, Rejected(record, step, "empty", f"field {config.field!r} is empty")
    if len(value) > config.max_chars:
        detail = (
            f"field {config.field!r} has {len(value):,} characters; the limit is "
            f"{config.max_chars:,} (option max_chars)"
        )
        return None, Rejected(record, step, "too_long", detail)
    return value, None


def with_text(
    record: Record,
    field: str,
    text: str,
    *,
    step: str,
    technique: str,
    conditioning: dict[str, Any],
    scores: dict[str, Any],
    model: str | None = None,
    template_hash: str | None = None,
) -> Record:
    """The refined record: same id, the new text, provenance naming this step (the input's source
    kept), and the step's scores added to the earlier ones.
    """
    provenance = type(record.provenance).from_dict(record.provenance.to_dict())
    provenance.step = step
    provenance.technique = technique
    provenance.model = model
    provenance.template_hash = template_hash
    provenance.parent_ids = [record.id]
    provenance.conditioning = conditioning
    return Record(
        id=record.id,
        fields={**record.fields, field: text},
        provenance=provenance,
        scores={**record.scores, **scores},
    )
