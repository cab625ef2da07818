"""What a refinement is checked with: the leak check (value matching, in ``datarefinery.text``:
any case and spacing, numbers by their digits) and the distance Δ(x, y) between a record and its
rewrite.
"""

from __future__ import annotations

import difflib
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
    """Δ(x, y): character edit distance (and its ratio to the input length); token F1 of the
    text outside the PII spans (replaced values removed from the output, the spans from the
    input), which is 1.0 when nothing but PII changed; and ``changed_outside_pii``, the edits
    there in order (``changed_outside``), of ``tokens_outside_pii``.
    """
    from rapidfuzz.distance import Levenshtein

    distance = int(Levenshtein.distance(original, output))
    outside_in = mask_values(original, (r.original for r in replacements))
    # Originals left in the output are leaks, judged by the leak check, not by this measure.
    outside_out = mask_values(
        output, [*(r.replacement for r in replacements), *(r.original for r in replacements)]
    )
    changed, outside = _aligned_changes(outside_in, outside_out)
    return {
        "edit_distance": distance,
        "edit_ratio": round(distance / max(1, len(original)), 4),
        "token_f1_outside_pii": round(
            token_f1(words_and_marks(outside_in), words_and_marks(outside_out)), 4
        ),
        "changed_outside_pii": changed,
        "tokens_outside_pii": outside,
    }


def changed_outside(
    original: str, output: str, replacements: Sequence[Replacement]
) -> tuple[int, int]:
    """(edits, tokens): how many words and marks outside the PII spans the output deleted,
    replaced or inserted, aligned in order (a replaced run counts its longer side), and how
    many such tokens the original has.

    Unlike a bag-of-words F1 this counts a moved or dropped phrase in a long text as the edits
    it is (dropping "Please call" is 2 edits however long the text), so a gate on it can be
    scaled to the text's length instead of hiding a few edits in many kept words.
    """
    outside_in = mask_values(original, (r.original for r in replacements))
    outside_out = mask_values(
        output, [*(r.replacement for r in replacements), *(r.original for r in replacements)]
    )
    return _aligned_changes(outside_in, outside_out)


def _aligned_changes(outside_in: str, outside_out: str) -> tuple[int, int]:
    source = words_and_marks(outside_in)
    target = words_and_marks(outside_out)
    matcher = difflib.SequenceMatcher(None, source, target, autojunk=False)
    # A replaced run counts as its longer side: "a" -> "an" is one edit, not a deletion plus an
    # insertion.
    edits = sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )
    return edits, len(source)


def reask_text(leaks: list[Replacement], changed: int) -> str:
    """What a re-ask tells the model: the values that leaked, or how much it changed."""
    if leaks:
        listed = "; ".join(f'"{r.original}" ({r.entity_type}) -> "{r.replacement}"' for r in leaks)
        return (
            f"Your rewrite still contains personal information from the original: {listed}. "
            "Make these replacements, keep the rest of the text as it was, and answer again "
            'with only the JSON object {"text": ...}.'
        )
    return (
        f"Your rewrite changed {changed} words or marks besides the personal information. "
        "Copy every other word exactly as it was, change only the personal information, and "
        'answer again with only the JSON object {"text": ...}.'
    )
