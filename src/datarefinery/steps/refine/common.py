"""What the refinement steps share: the text field to refine and its checks, the leak check, and
the distance Δ(x, y) between a record and its rewrite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import Field

from datarefinery.records import Record, Rejected
from datarefinery.steps.base import StepConfig
from datarefinery.steps.refine.surrogates import Replacement
from datarefinery.text import contains_value, mask_values, token_f1, words_and_marks


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
    kept), and the step's scores added to the earlier ones."""
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


def leaked_values(originals: Iterable[Replacement], output: str) -> list[Replacement]:
    """The replacements whose original value still occurs in ``output`` (first of each value)."""
    seen: set[str] = set()
    leaked = []
    for item in originals:
        key = item.original.casefold()
        if key in seen:
            continue
        seen.add(key)
        if contains_value(output, item.original):
            leaked.append(item)
    return leaked


def delta(
    original: str, output: str, replacements: Sequence[Replacement]
) -> dict[str, float | int]:
    """Δ(x, y): character edit distance (and its ratio to the input length), and token F1 of the
    text outside the PII spans (replaced values removed from the output, the spans from the
    input), which is 1.0 when nothing but PII changed."""
    from rapidfuzz.distance import Levenshtein

    distance = int(Levenshtein.distance(original, output))
    outside_in = mask_values(original, (r.original for r in replacements))
    # Originals left in the output are leaks, judged by the leak check, not by this measure.
    outside_out = mask_values(
        output, [*(r.replacement for r in replacements), *(r.original for r in replacements)]
    )
    return {
        "edit_distance": distance,
        "edit_ratio": round(distance / max(1, len(original)), 4),
        "token_f1_outside_pii": round(
            token_f1(words_and_marks(outside_in), words_and_marks(outside_out)), 4
        ),
    }
