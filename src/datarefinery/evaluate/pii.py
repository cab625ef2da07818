"""Scoring PII removal against gold spans (the format of presidio-research's synthetic set:
``text`` + ``spans`` of ``{entity_type, start, end, value}``).

Which gold types count: ``PII_ENTITIES`` of ``detect.factory`` (direct identifiers: names, street
addresses, phones, e-mails, card / bank / ID numbers, IPs, domains). Quasi-identifiers
(``QUASI_IDENTIFIERS``: DATE_TIME, TITLE, NRP, AGE, GPE, ORGANIZATION, ZIP_CODE, LOCATION) and any
other labelled type are neither required nor held against a method: changing them is neutral.

- token_recall (the headline): share of gold PII values of which no identifying token is left
  in the output (words of 3+ letters, numbers of 2+ digits, minus boilerplate such as "Suite",
  "FPO", "www" or "com"; each looked up with ``contains_value``: any case, any spacing, long
  numbers by their digits). Keeping "Nowak" of "Anna Nowak", or the street of an address, is a leak.
  ``leaks`` = gold values with an identifying token left, ``leaked_records`` = records with one.
- lenient_recall: share of gold PII values whose full string no longer occurs in the output
  (``lenient_leaks``, ``lenient_leaked_records``); a value cut in half counts as removed here.
- precision: input tokens are aligned to output tokens (difflib); of the input tokens a method
  changed (replaced or deleted), the share inside a gold PII span. Tokens in quasi-identifier spans
  are left out of the count.
- preservation: share of input tokens outside every gold span that survive unchanged.
- f1: of precision and token recall; lenient_f1: of precision and lenient recall.
A rejected (or missing) record counts as emitted unchanged: the worst case.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datarefinery.detect.factory import PII_ENTITIES
from datarefinery.errors import InputFileError
from datarefinery.io.read import read_records
from datarefinery.text import WORD, WORD_OR_MARK, contains_value

# Words of an address that identify nobody: unit designators and military forms of USPS
# Publication 28 (appendix C2, section 225), common street types, the US ship-type prefixes
# (USS, USNS, USNV, USCGC) and "nan", the benchmark generator's placeholder for a missing field;
# and the parts every web or e-mail address has: the scheme, "www" and the generic top-level
# domains (a surrogate "https://www.other.com" keeping "https", "www" and "com" leaks nothing).
# Country-code domains have two letters and are no identifying token.
_BOILERPLATE = frozenset(
    [
        "apt",
        "apartment",
        "suite",
        "unit",
        "box",
        "psc",
        "cmr",
        "apo",
        "fpo",
        "dpo",
        "street",
        "st",
        "road",
        "rd",
        "avenue",
        "ave",
        "the",
        "and",
        "corner",
        "of",
        "nan",
        "usns",
        "usnv",
        "uss",
        "uscgc",
        "http",
        "https",
        "www",
        "com",
        "org",
        "net",
        "edu",
        "gov",
        "info",
        "biz",
    ]
)


@dataclass(frozen=True)
class GoldSpan:
    entity_type: str
    start: int
    end: int
    value: str


@dataclass(frozen=True)
class GoldRecord:
    id: str
    text: str
    spans: tuple[GoldSpan, ...]


def read_gold(path: str | Path) -> list[GoldRecord]:
    """Read and check a gold file: every span must satisfy ``text[start:end] == value``."""
    records = []
    for line, record in enumerate(read_records(path, required=["text"]), start=1):
        text = record.fields["text"]
        raw = record.fields.get("spans", [])
        if not isinstance(text, str) or not isinstance(raw, list):
            raise InputFileError(str(path), "expected text and a list of spans", line=line)
        spans = []
        for i, item in enumerate(raw):
            try:
                span = GoldSpan(
                    str(item["entity_type"]), int(item["start"]), int(item["end"]), item["value"]
                )
            except (KeyError, TypeError, ValueError):
                raise InputFileError(
                    str(path),
                    "needs entity_type, start, end, value",
                    line=line,
                    field=f"spans[{i}]",
                ) from None
            if text[span.start : span.end] != span.value:
                raise InputFileError(
                    str(path),
                    f"text[{span.start}:{span.end}] is not the span's value",
                    line=line,
                    field=f"spans[{i}]",
                )
            spans.append(span)
        records.append(GoldRecord(record.id, text, tuple(spans)))
    return records


def _identifying_tokens(value: str) -> list[str]:
    found = []
    for token in WORD.findall(value):
        low = token.casefold()
        if low in _BOILERPLATE:
            continue
        digits = sum(c.isdigit() for c in token)
        if (digits >= 2) or (digits == 0 and len(token) >= 3):
            found.append(token)
    return found


def _token_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in WORD_OR_MARK.finditer(text)]


@dataclass
class _Tally:
    gold: int = 0
    token_removed: int = 0
    lenient_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "gold": self.gold,
            "token_removed": self.token_removed,
            "token_recall": _share(self.token_removed, self.gold),
            "lenient_removed": self.lenient_removed,
            "lenient_recall": _share(self.lenient_removed, self.gold),
        }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _f1(precision: float, recall: float) -> float:
    return round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0


def score_pii(
    gold: list[GoldRecord],
    outputs: Mapping[str, str],
    *,
    pii_types: frozenset[str] = PII_ENTITIES,
) -> dict[str, Any]:
    """The figures for one method; ``outputs`` maps record id to output text."""
    # Why long: one pass over the gold values fills every counter (per type, token and lenient);
    # split, the counters would travel between helpers as shared state
    per_type: dict[str, _Tally] = {}
    total = _Tally()
    changed_pii = changed_other = kept_outside = outside = 0
    leaked_records = lenient_leaked_records = missing = 0
    leaked_examples: list[dict[str, Any]] = []
    for record in gold:
        output = outputs.get(record.id)
        if output is None:
            missing += 1
            output = record.text
        record_leaked = record_lenient_leaked = False
        for span in record.spans:
            if span.entity_type not in pii_types:
                continue
            tally = per_type.setdefault(span.entity_type, _Tally())
            removed = not contains_value(output, span.value)
            token_removed = removed and not any(
                contains_value(output, t) for t in _identifying_tokens(span.value)
            )
            for t in (tally, total):
                t.gold += 1
                t.lenient_removed += removed
                t.token_removed += token_removed
            record_lenient_leaked |= not removed
            if not token_removed:
                record_leaked = True
                if len(leaked_examples) < 50:
                    leaked_examples.append(
                        {
                            "id": record.id,
                            "entity_type": span.entity_type,
                            "whole_value": not removed,
                        }
                    )
        leaked_records += record_leaked
        lenient_leaked_records += record_lenient_leaked
        a, b, c, d = _changes(record, output, pii_types)
        changed_pii += a
        changed_other += b
        kept_outside += c
        outside += d
    precision = changed_pii / (changed_pii + changed_other) if changed_pii + changed_other else 1.0
    token_recall = total.token_removed / total.gold if total.gold else 1.0
    lenient_recall = total.lenient_removed / total.gold if total.gold else 1.0
    return {
        "records": len(gold),
        "not_emitted": missing,
        "gold_pii": total.gold,
        "token_recall": round(token_recall, 4),
        "lenient_recall": round(lenient_recall, 4),
        "precision": round(precision, 4),
        "f1": _f1(precision, token_recall),
        "lenient_f1": _f1(precision, lenient_recall),
        "leaks": total.gold - total.token_removed,
        "lenient_leaks": total.gold - total.lenient_removed,
        "leaked_records": leaked_records,
        "lenient_leaked_records": lenient_leaked_records,
        "preservation": round(kept_outside / outside, 4) if outside else 1.0,
        "per_type": {k: v.to_dict() for k, v in sorted(per_type.items())},
        "leaked_examples": leaked_examples,
    }


def _changes(
    record: GoldRecord, output: str, pii_types: frozenset[str]
) -> tuple[int, int, int, int]:
    """(changed tokens in PII spans, changed tokens outside any gold span, unchanged tokens
    outside gold spans, tokens outside gold spans) for one record.
    """
    source = _token_spans(record.text)
    target = [t for t, _, _ in _token_spans(output)]
    matcher = difflib.SequenceMatcher(None, [t for t, _, _ in source], target, autojunk=False)
    changed = [True] * len(source)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag == "equal":
            for i in range(i1, i2):
                changed[i] = False

    def kind(start: int, end: int) -> str:
        types = {s.entity_type for s in record.spans if s.start < end and start < s.end}
        if types & pii_types:
            return "pii"
        # Any other labelled type (quasi-identifiers, types outside both sets) is neutral.
        return "quasi" if types else "outside"

    in_pii = other = kept = outside = 0
    for (_, start, end), was_changed in zip(source, changed, strict=True):
        where = kind(start, end)
        if where == "pii":
            in_pii += was_changed
        elif where == "outside":
            outside += 1
            other += was_changed
            kept += not was_changed
    return in_pii, other, kept, outside
