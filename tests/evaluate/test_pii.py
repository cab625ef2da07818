from __future__ import annotations

import json
from pathlib import Path

import pytest

from datarefinery.errors import InputFileError
from datarefinery.evaluate.pii import GoldRecord, GoldSpan, read_gold, score_pii

TEXT = "Anna Smith lives in Paris, call 555-123-4567 today."
GOLD = GoldRecord(
    "g",
    TEXT,
    (
        GoldSpan("PERSON", 0, 10, "Anna Smith"),
        GoldSpan("GPE", 20, 25, "Paris"),
        GoldSpan("PHONE_NUMBER", 32, 44, "555-123-4567"),
    ),
)


def test_perfect_replacement() -> None:
    out = "Maria Lopez lives in Paris, call 555-999-0000 today."
    figures = score_pii([GOLD], {"g": out})
    assert figures["recall"] == 1.0 and figures["precision"] == 1.0 and figures["leaks"] == 0
    assert figures["preservation"] == 1.0
    assert figures["per_type"]["PERSON"] == {
        "gold": 1,
        "removed": 1,
        "recall": 1.0,
        "token_recall": 1.0,
    }
    assert "GPE" not in figures["per_type"]  # quasi-identifier: not scored


def test_leak_overreach_and_quasi_change() -> None:
    # The phone leaks (regrouped digits still count), "today" was needlessly changed, and the
    # quasi-identifier Paris changed: neutral.
    out = "Maria Lopez lives in Rome, call 555 123 4567 tomorrow."
    figures = score_pii([GOLD], {"g": out})
    assert figures["recall"] == 0.5 and figures["leaks"] == 1 and figures["leaked_records"] == 1
    # changed tokens: Anna, Smith and the phone's two dashes (PII), today (not PII); Paris is
    # neutral
    assert figures["precision"] == pytest.approx(4 / 5, abs=1e-4)


def test_missing_output_counts_as_unchanged() -> None:
    figures = score_pii([GOLD], {})
    assert figures["recall"] == 0.0 and figures["not_emitted"] == 1


def test_read_gold_checks_offsets(tmp_path: Path) -> None:
    good = tmp_path / "gold.jsonl"
    good.write_text(
        json.dumps(
            {
                "id": "a",
                "text": "Hi Bob",
                "spans": [{"entity_type": "PERSON", "start": 3, "end": 6, "value": "Bob"}],
            }
        )
        + "\n"
    )
    assert read_gold(good)[0].spans[0].value == "Bob"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(
            {
                "id": "a",
                "text": "Hi Bob",
                "spans": [{"entity_type": "PERSON", "start": 0, "end": 3, "value": "Bob"}],
            }
        )
        + "\n"
    )
    with pytest.raises(InputFileError, match=r"bad.jsonl, line 1, field 'spans\[0\]'"):
        read_gold(bad)
