"""Mean ± sd per method and the data-efficiency view, on hand-made runs."""

from __future__ import annotations

from typing import Any

import pytest

from datarefinery.loop.table import (
    efficiency,
    gaps,
    records_to_reach,
    summarize,
    table_markdown,
)


def run(method: str, seed: int, points: list[tuple[int, float]], **extra: Any) -> dict[str, Any]:
    records, accuracy = points[-1]
    return {
        "method": method,
        "seed": seed,
        "records": records,
        "accuracy": accuracy,
        "val_accuracy": accuracy,
        "train_accuracy": 1.0,
        "tokens": 100 * (seed + 1),
        "points": [{"records": r, "accuracy": a} for r, a in points],
        **extra,
    }


RUNS = [
    run("gold", 0, [(500, 0.8)], tokens=None, val_accuracy=None),
    run("gold", 1, [(500, 0.8)], tokens=None, val_accuracy=None),
    run("ZeroGen", 0, [(10, 0.5), (20, 0.6)]),
    run("ZeroGen", 1, [(10, 0.5), (20, 0.62)]),
    run("S3", 0, [(10, 0.55), (15, 0.62), (20, 0.7)]),
    # a run stopped early (no errors left): its curve is shorter
    run("S3", 1, [(10, 0.55), (14, 0.66)]),
    {"method": "S3 without rationales", "note": "does not apply: pairs"},
]


def test_summarize_gives_mean_and_sample_sd() -> None:
    rows = {row["method"]: row for row in summarize(RUNS)}
    assert list(rows) == ["gold", "ZeroGen", "S3", "S3 without rationales"]
    s3 = rows["S3"]
    assert s3["runs"] == 2 and s3["records"] == 17
    assert s3["accuracy"] == pytest.approx(0.68) and s3["accuracy_sd"] == pytest.approx(
        0.0283, abs=1e-4
    )
    assert rows["gold"]["tokens"] is None and rows["gold"]["accuracy_sd"] == 0.0
    assert rows["S3 without rationales"] == {
        "method": "S3 without rationales",
        "runs": 0,
        "note": "does not apply: pairs",
    }
    single = summarize([RUNS[2]])[0]
    assert single["accuracy"] == 0.6 and single["accuracy_sd"] is None


def test_curves_average_point_by_point() -> None:
    view = efficiency(RUNS, [0.6])
    s3 = view["curves"]["S3"]
    assert [p["records"] for p in s3] == [10, 14.5, 17]  # the short run stays at its last set
    assert [p["runs"] for p in s3] == [2, 2, 1]
    assert s3[1]["accuracy"] == pytest.approx(0.64)
    assert "S3 without rationales" not in view["curves"]
    (target,) = view["targets"]
    # ZeroGen needs 20 records for 60 %, S3 14.5 (mean of its runs' second points)
    assert target["records"] == {"gold": 500, "ZeroGen": 20, "S3": 14.5}
    assert target["fewest"] == ["S3"]  # gold is real data, not a generating method


def test_default_targets_are_the_final_accuracies() -> None:
    view = efficiency(RUNS)
    assert [t["accuracy"] for t in view["targets"]] == [0.61, 0.68]  # ZeroGen's, S3's
    last = view["targets"][-1]
    assert last["records"]["ZeroGen"] is None and last["fewest"] == ["S3"]


def test_records_to_reach() -> None:
    curve = [{"records": 10, "accuracy": 0.5}, {"records": 20, "accuracy": 0.7}]
    assert records_to_reach(curve, 0.5) == 10
    assert records_to_reach(curve, 0.6) == 20
    assert records_to_reach(curve, 0.71) is None


def test_markdown_shows_spreads_notes_and_the_view() -> None:
    table = {
        "test": 200,
        "rows": summarize(RUNS),
        "efficiency": efficiency(RUNS),
        "extra_data_analysis": {"pairs": 0},
    }
    text = table_markdown(table)
    assert "| S3 | 2 | 17 ± 4.2 | 68.00 ± 2.83 |" in text
    assert "- S3 without rationales: does not apply: pairs" in text
    assert "- S3: 10 → 55.00, 14.5 → 64.00, 17 → 68.00" in text
    assert "| 68.00 | 500 | — | 17 | S3 |" in text


def test_gaps_in_units_of_the_runs_spread() -> None:
    (gap,) = gaps(summarize(RUNS))  # gold is real data: only S3 against ZeroGen
    assert (gap["higher"], gap["lower"], gap["runs"]) == ("S3", "ZeroGen", [2, 2])
    assert gap["difference"] == pytest.approx(0.07)
    # sds 0.0283 (S3) and 0.0141 (ZeroGen): pooled sqrt((0.0008 + 0.0002) / 2) = 0.02236
    assert gap["sds"] == pytest.approx(0.07 / 0.02236, abs=0.01)
    # standard error sqrt(0.0008 / 2 + 0.0002 / 2) = 0.02236 as well with two runs a side
    assert gap["t"] == pytest.approx(0.07 / 0.02236, abs=0.01)
    text = table_markdown(
        {
            "test": 200,
            "rows": summarize(RUNS),
            "efficiency": efficiency(RUNS),
            "extra_data_analysis": {"pairs": 0},
        }
    )
    assert "- S3 − ZeroGen: +7.00, 3.13 sd, t = 3.13 (2 and 2 runs)" in text


def test_gaps_without_repeats_say_there_is_no_spread() -> None:
    single = [r for r in RUNS if r.get("seed") == 0]
    (gap,) = gaps(summarize(single))
    assert gap["sds"] is None and gap["t"] is None
    assert gap["difference"] == pytest.approx(0.1)
