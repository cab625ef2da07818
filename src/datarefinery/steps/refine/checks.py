"""What a refinement is checked with: value matching (any case and spacing; numbers by their
digits), the leak check, and the distance Δ(x, y) between a record and its rewrite."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from datarefinery.steps.refine.surrogates import Replacement

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def value_pattern(value: str) -> re.Pattern[str]:
    escaped = r"\s+".join(re.escape(part) for part in value.split())
    left = r"(?<!\w)" if value[:1].isalnum() else ""
    right = r"(?!\w)" if value[-1:].isalnum() else ""
    return re.compile(left + escaped + right, re.IGNORECASE)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def contains_value(text: str, value: str) -> bool:
    """Whether ``value`` occurs in ``text``: as words (any case, any spacing), or, for numbers of
    seven digits or more (cards, phones, IBANs), as the same digits however they are grouped."""
    value = value.strip()
    if not value:
        return False
    if value_pattern(value).search(text):
        return True
    digits = _digits(value)
    return (
        len(digits) >= 7
        and len(digits) >= 0.6 * len(value.replace(" ", ""))
        and (digits in _digits(text))
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


def token_f1(reference: Sequence[str], candidate: Sequence[str]) -> float:
    """Bag-of-tokens F1 (1.0 for two empty sequences)."""
    if not reference and not candidate:
        return 1.0
    common = sum((Counter(reference) & Counter(candidate)).values())
    if common == 0:
        return 0.0
    precision = common / len(candidate)
    recall = common / len(reference)
    return 2 * precision * recall / (precision + recall)


def mask_values(text: str, values: Iterable[str]) -> str:
    for value in sorted({v for v in values if v.strip()}, key=len, reverse=True):
        text = value_pattern(value).sub(" ", text)
    return text


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
        "token_f1_outside_pii": round(token_f1(tokens(outside_in), tokens(outside_out)), 4),
    }
