import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import InputFileError
from datarefinery.steps.augment.mix import mix_counts
from tests.support.examples import run_example
from tests.support.fake import read_jsonl
from tests.support.specs import SENTIMENT_TASK


@pytest.mark.parametrize(
    ("available", "ratio", "cap", "expected"),
    [
        ((3, 4), 0.5, None, (3, 3)),
        ((100, 100), 0.3, None, (100, 43)),  # 100 · 0.3 / 0.7 = 42.9 from other
        ((100, 10), 0.5, None, (10, 10)),
        ((100, 100), 0.25, 40, (30, 10)),
        ((5, 7), 0.0, None, (5, 0)),
        ((5, 7), 1.0, None, (0, 7)),
        ((0, 7), 0.5, None, (0, 0)),
    ],
)
def test_mix_counts(
    available: tuple[int, int], ratio: float, cap: int | None, expected: tuple[int, int]
) -> None:
    assert mix_counts(*available, ratio, cap) == expected


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows(prefix: str, positive: int, negative: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{prefix}{i}", "text": f"{prefix} review {i}", "label": label}
        for i, label in enumerate(["positive"] * positive + ["negative"] * negative)
    ]


def spec(tmp_path: Path, options: dict[str, Any], other: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seed": 1,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(write(tmp_path / "synthetic.jsonl", rows("s", 10, 6))),
        "shard_size": 3,  # the step still sees its whole input at once
        "steps": [{"mix": {"other": str(write(tmp_path / "real.jsonl", other))} | options}],
    }


def test_ratio_per_label_tags_and_rejects_the_rest(tmp_path: Path) -> None:
    result = datarefinery.run(
        spec(
            tmp_path,
            {"ratio": 0.25},
            [*rows("r", 2, 5), {"id": "s0", "text": "t", "label": "positive"}],
        ),
        tmp_path / "out",
    )
    kept = read_jsonl(result.dataset_path)
    counts = Counter((r["fields"]["label"], r["provenance"]["source"]) for r in kept)
    # positive: 10 synthetic, 3 real -> 12 (9 + 3); negative: 6 synthetic, 5 real -> 8 (6 + 2)
    assert counts == {
        ("positive", "synthetic"): 9,
        ("positive", "real"): 3,
        ("negative", "synthetic"): 6,
        ("negative", "real"): 2,
    }
    rejected = read_jsonl(result.rejected_path)
    assert [r["reason"] for r in rejected] == ["mix_ratio"]
    assert rejected[0]["record"]["fields"]["label"] == "positive"
    real = [r for r in kept if r["provenance"]["source"] == "real"]
    assert all(r["provenance"]["step"] == "mix" for r in real)
    taken = [r for r in real if r["provenance"]["conditioning"]["file_id"] == "s0"]
    assert all(r["id"] != "s0" for r in taken)  # a file id already used is replaced
    assert len({r["id"] for r in kept}) == len(kept)
    assert result.steps[0].shards == 1


def test_the_other_file_is_checked_with_its_line(tmp_path: Path) -> None:
    bad = [*rows("r", 1, 0), {"id": "x", "text": "t", "label": "neutral"}]
    with pytest.raises(InputFileError, match=r"real.jsonl, line 2, field 'label'"):
        datarefinery.run(spec(tmp_path, {"ratio": 0.5}, bad), tmp_path / "out")


def test_the_example_runs(tmp_path: Path) -> None:
    result = run_example("mix", tmp_path)
    kept = read_jsonl(result.dataset_path)
    counts = Counter((r["fields"]["label"], r["provenance"]["source"]) for r in kept)
    assert counts == {
        ("positive", "synthetic"): 3,
        ("positive", "real"): 3,
        ("negative", "synthetic"): 3,
        ("negative", "real"): 3,
    }
