"""What became of a record in ``pii_rewrite``, named honestly (``conditioning["outcome"]``).

- ``rewritten``: the model's rewrite passed the leak check and the preservation gate;
- ``rewritten_patched``: the model's rewrite, with the values that still leaked replaced;
- ``replaced``: the input's spans replaced by surrogates (detect-and-replace, the fallback);
- ``unchanged``: neither the detectors nor the model found anything.

Only the first two are the model's work (technique ``gdr``); ``replaced`` is ``dirs``;
``unchanged`` has no technique.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from datarefinery.records import Record

Outcome = Literal["rewritten", "rewritten_patched", "replaced", "unchanged"]
OUTCOMES: tuple[Outcome, ...] = ("rewritten", "rewritten_patched", "replaced", "unchanged")
TECHNIQUE_OF_OUTCOME: dict[Outcome, str] = {
    "rewritten": "gdr",
    "rewritten_patched": "gdr",
    "replaced": "dirs",
    "unchanged": "",
}


def count_outcomes(records: Iterable[Record], step: str | None = None) -> dict[str, int]:
    """Records per outcome (each of ``OUTCOMES`` present, zeros included, when any record has
    one); ``step`` counts only records that step emitted.
    """
    counts: dict[str, int] = {}
    for record in records:
        if step is not None and record.provenance.step != step:
            continue
        outcome = record.provenance.conditioning.get("outcome")
        if isinstance(outcome, str) and outcome:
            counts[outcome] = counts.get(outcome, 0) + 1
    if not counts:
        return {}
    return {**dict.fromkeys(OUTCOMES, 0), **counts}
