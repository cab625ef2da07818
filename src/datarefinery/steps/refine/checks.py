"""What a refinement is checked with: the leak check (value matching, in ``datarefinery.text``:
any case and spacing, numbers by their digits) and the distance Δ(x, y) between a record and its
rewrite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from datarefinery.steps.refine.surrogates import Replacement
from datarefinery.text import contains_value, mask_values, token_f1, words_and_marks


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
    input), which is 1.0 when nothing but PII changed.
    """
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


def reask_text(leaks: list[Replacement], kept: float) -> str:
    """What a re-ask tells the model: the values that leaked, or how much it changed."""
    if leaks:
        listed = "; ".join(f'"{r.original}" ({r.entity_type}) -> "{r.replacement}"' for r in leaks)
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
