"""Small labeled datasets written to files for the evaluation tests (fixture: ``labeled``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

POSITIVE = [
    "A wonderful film with a moving story and superb acting.",
    "I loved every minute; the cast is brilliant and the music soars.",
    "Funny, warm and clever. The best comedy I have seen this year.",
    "A beautiful, heartfelt drama that stayed with me for days.",
    "Great direction and a gripping plot; I would watch it again.",
    "The performances are excellent and the ending is perfect.",
]
NEGATIVE = [
    "A dull film with a predictable story and wooden acting.",
    "I hated every minute; the cast is wasted and the music grates.",
    "Unfunny, cold and lazy. The worst comedy I have seen this year.",
    "A tedious, hollow drama that I forgot the moment it ended.",
    "Poor direction and a confusing plot; never again.",
    "The performances are flat and the ending makes no sense.",
]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def labeled(tmp_path: Path) -> tuple[Path, Path]:
    """(synthetic-like dataset, real set): the real set has 0/1 labels under label_text names."""
    data = [{"id": f"d{i}", "text": t, "label": "positive"} for i, t in enumerate(POSITIVE)]
    data += [{"id": f"e{i}", "text": t, "label": "negative"} for i, t in enumerate(NEGATIVE)]
    data.append(
        {
            "id": "x",
            "text": "Mail me at jane@example.org <script>alert(1)</script>",
            "label": "positive",
        }
    )
    real = [
        {"id": f"r{i}", "text": t.replace("film", "movie"), "label": 1, "label_text": "positive"}
        for i, t in enumerate(POSITIVE)
    ] + [
        {"id": f"s{i}", "text": t.replace("film", "movie"), "label": 0, "label_text": "negative"}
        for i, t in enumerate(NEGATIVE)
    ]
    # the dataset in the record format, with judge scores and provenance as a run writes them
    records = [
        {
            "id": row.pop("id"),
            "fields": row,
            "provenance": {"step": "zero_shot", "technique": "zero_shot", "source": "synthetic"},
            "scores": {"judge": 1 + i % 5, "judge_reason": "fine"},
        }
        for i, row in enumerate(data)
    ]
    return write_jsonl(tmp_path / "data.jsonl", records), write_jsonl(tmp_path / "real.jsonl", real)
