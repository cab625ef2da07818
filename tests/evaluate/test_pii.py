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
    out = "Maria Lopez lives in Paris, call 201-999-0000 today."
    figures = score_pii([GOLD], {"g": out})
    assert figures["token_recall"] == 1.0 and figures["lenient_recall"] == 1.0
    assert figures["precision"] == 1.0 and figures["f1"] == 1.0 and figures["leaks"] == 0
    assert figures["preservation"] == 1.0
    assert figures["per_type"]["PERSON"] == {
        "gold": 1,
        "token_removed": 1,
        "token_recall": 1.0,
        "lenient_removed": 1,
        "lenient_recall": 1.0,
    }
    assert "GPE" not in figures["per_type"]  # quasi-identifier: not scored


def test_leak_overreach_and_quasi_change() -> None:
    # The phone leaks (regrouped digits still count), "today" was needlessly changed, and the
    # quasi-identifier Paris changed: neutral.
    out = "Maria Lopez lives in Rome, call 555 123 4567 tomorrow."
    figures = score_pii([GOLD], {"g": out})
    assert figures["token_recall"] == 0.5 and figures["lenient_recall"] == 0.5
    assert figures["leaks"] == 1 and figures["leaked_records"] == 1
    # changed tokens: Anna, Smith and the phone's two dashes (PII), today (not PII); Paris is
    # neutral
    assert figures["precision"] == pytest.approx(4 / 5, abs=1e-4)


def test_token_recall_counts_a_half_removed_value_as_a_leak() -> None:
    # The surname and the last digits stay: the full strings are gone (lenient recall 1.0), but
    # an identifying token of each is left (token recall 0.0).
    out = "Maria Smith lives in Paris, call 555-123-0000 today."
    figures = score_pii([GOLD], {"g": out})
    assert figures["lenient_recall"] == 1.0 and figures["lenient_leaks"] == 0
    assert figures["token_recall"] == 0.0 and figures["leaks"] == 2
    assert figures["leaked_records"] == 1 and figures["lenient_leaked_records"] == 0
    assert figures["f1"] == 0.0 and figures["lenient_f1"] > 0.5
    assert [e["whole_value"] for e in figures["leaked_examples"]] == [False, False]


def test_boilerplate_tokens_are_no_leak() -> None:
    text = "See https://www.annasmith.com or PSC 1437, Box 3833 APO AA 66791"
    gold = GoldRecord(
        "b",
        text,
        (
            GoldSpan("DOMAIN_NAME", 4, 29, "https://www.annasmith.com"),
            GoldSpan("STREET_ADDRESS", 33, 64, "PSC 1437, Box 3833 APO AA 66791"),
        ),
    )
    out = "See https://www.other.com or PSC 2210, Box 7710 APO AA 10234"
    figures = score_pii([gold], {"b": out})
    assert figures["token_recall"] == 1.0 and figures["leaks"] == 0


def test_missing_output_counts_as_unchanged() -> None:
    figures = score_pii([GOLD], {})
    assert figures["token_recall"] == 0.0 and figures["not_emitted"] == 1
    assert figures["lenient_recall"] == 0.0


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
