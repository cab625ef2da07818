"""Privacy: what personal data a dataset carries, and how much of its source it repeats verbatim.

- ``pii_found``: records in which a ``PIIDetector`` finds something, by entity type.
- ``verbatim_overlap``: for each record, the longest span of words it shares verbatim with a
  source record (case and spacing ignored), as characters and as a share of the record's length;
  and the share of records with a span of at least ``min_chars`` (50) characters. Candidates are
  the source records sharing the most word 3-grams with it (3-grams found in more than
  ``common_df`` source records are too common to count as evidence), so spans shorter than three
  words count as none.
- ``known_value_leaks``: records containing any of a list of known sensitive values.
- ``source_pii_leaks``: PII values the detector finds in the source that reappear in the dataset.

Reports carry counts, ids and lengths, never the sensitive values themselves.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datarefinery.detect.base import PIIDetector
from datarefinery.text import WORD, casefold_spaces


def pii_found(texts: Sequence[str], detector: PIIDetector) -> dict[str, Any]:
    by_type: Counter[str] = Counter()
    records = 0
    for text in texts:
        spans = detector.detect(text)
        if spans:
            records += 1
            by_type.update(span.entity_type for span in spans)
    return {
        "detector": detector.name,
        "records_with_pii": records,
        "share_with_pii": round(records / len(texts), 4) if texts else 0.0,
        "spans_by_type": dict(sorted(by_type.items())),
    }


@dataclass(frozen=True)
class Overlap:
    chars: int
    ratio: float
    source_index: int | None


class SourceIndex:
    """Word 3-gram index of the source records, for finding verbatim spans."""

    def __init__(self, sources: Sequence[str], *, n: int = 3, common_df: int = 50) -> None:
        self.n = n
        self.docs = [WORD.findall(casefold_spaces(s)) for s in sources]
        postings: dict[tuple[str, ...], set[int]] = {}
        for index, words in enumerate(self.docs):
            for i in range(len(words) - n + 1):
                postings.setdefault(tuple(words[i : i + n]), set()).add(index)
        self.postings = {g: d for g, d in postings.items() if len(d) <= common_df}

    def longest_span(self, text: str, *, candidates: int = 5) -> Overlap:
        normalized = casefold_spaces(text)
        matches = list(WORD.finditer(normalized))
        words = [m.group(0) for m in matches]
        n = self.n
        shared: Counter[int] = Counter()
        for i in range(len(words) - n + 1):
            for doc in self.postings.get(tuple(words[i : i + n]), ()):
                shared[doc] += 1
        best_chars, best_doc = 0, None
        for doc, _ in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:candidates]:
            length, start = _longest_common_run(words, self.docs[doc])
            if length >= n:
                chars = matches[start + length - 1].end() - matches[start].start()
                if chars > best_chars:
                    best_chars, best_doc = chars, doc
        ratio = best_chars / len(normalized) if normalized else 0.0
        return Overlap(best_chars, round(ratio, 4), best_doc)


def _longest_common_run(a: list[str], b: list[str]) -> tuple[int, int]:
    """(length, start in ``a``) of the longest run of words shared by ``a`` and ``b``."""
    positions: dict[str, list[int]] = {}
    for j, word in enumerate(b):
        positions.setdefault(word, []).append(j)
    best, best_start = 0, 0
    previous: dict[int, int] = {}
    for i, word in enumerate(a):
        current: dict[int, int] = {}
        for j in positions.get(word, ()):
            current[j] = previous.get(j - 1, 0) + 1
            if current[j] > best:
                best, best_start = current[j], i - current[j] + 1
        previous = current
    return best, best_start


def verbatim_overlap(
    texts: Sequence[str],
    sources: Sequence[str],
    *,
    min_chars: int = 50,
    ids: Sequence[str] | None = None,
    source_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    index = SourceIndex(sources)
    overlaps = [index.longest_span(text) for text in texts]
    flagged = [i for i, o in enumerate(overlaps) if o.chars >= min_chars]
    worst = sorted(range(len(overlaps)), key=lambda i: -overlaps[i].chars)[:5]
    return {
        "mean_lcs_ratio": round(sum(o.ratio for o in overlaps) / len(overlaps), 4)
        if overlaps
        else 0.0,
        "max_lcs_ratio": max((o.ratio for o in overlaps), default=0.0),
        "max_lcs_chars": max((o.chars for o in overlaps), default=0),
        f"share_with_{min_chars}char_span": round(len(flagged) / len(texts), 4) if texts else 0.0,
        "records_with_span": len(flagged),
        "longest": [
            {
                "record": ids[i] if ids else i,
                "source": (
                    source_ids[o.source_index]
                    if source_ids and o.source_index is not None
                    else o.source_index
                ),
                "chars": o.chars,
                "ratio": o.ratio,
            }
            for i in worst
            if (o := overlaps[i]).chars > 0
        ],
    }


def _value_pattern(values: Sequence[str]) -> re.Pattern[str] | None:
    cleaned = sorted(
        {casefold_spaces(v) for v in values if len(v.strip()) >= 4}, key=len, reverse=True
    )
    if not cleaned:
        return None
    return re.compile("|".join(re.escape(v) for v in cleaned))


def known_value_leaks(texts: Sequence[str], values: Sequence[str]) -> dict[str, Any]:
    """Records containing any of ``values`` (case and spacing ignored; values shorter than four
    characters are skipped as too ambiguous).
    """
    pattern = _value_pattern(values)
    leaked_values: set[str] = set()
    records = 0
    if pattern is not None:
        for text in texts:
            found = set(pattern.findall(casefold_spaces(text)))
            if found:
                records += 1
                leaked_values |= found
    return {
        "values_checked": len({v for v in values if len(v.strip()) >= 4}),
        "values_leaked": len(leaked_values),
        "records_with_leak": records,
    }


def source_pii_leaks(
    texts: Sequence[str], sources: Sequence[str], detector: PIIDetector
) -> dict[str, Any]:
    """PII values found in the source by ``detector`` that occur in the dataset."""
    values = [span.value for source in sources for span in detector.detect(source)]
    result = known_value_leaks(texts, values)
    return {
        "source_pii_values": result["values_checked"],
        "values_leaked": result["values_leaked"],
        "records_with_leak": result["records_with_leak"],
    }
