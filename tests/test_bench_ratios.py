"""``bench/ratios.py``: every benchmark's ratio is median over median, with the spread."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _ratios() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "bench" / "ratios.py"
    spec = importlib.util.spec_from_file_location("bench_ratios", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_ratio_of_medians_differs_from_the_median_of_ratios() -> None:
    ratios = _ratios()
    ours, theirs = [10.0, 8.0, 12.0], [5.0, 2.0, 6.0]
    figures = ratios.ratio_of_medians(ours, theirs)
    # medians 10 / 5 = 2.0; the per-round ratios are 2.0, 4.0, 2.0 (median 2.0, max 4.0).
    assert figures["ratio"] == 2.0
    assert figures["median"] == [10.0, 5.0]
    assert figures["range"] == [[8.0, 12.0], [2.0, 6.0]]
    assert figures["per_round_ratio_range"] == [2.0, 4.0]
    assert figures["rounds"] == 3 and figures["enough_rounds"] is False
    skewed = ratios.ratio_of_medians([9.0, 10.0, 30.0, 31.0, 32.0], [3.0, 5.0, 10.0, 1.0, 1.0])
    assert skewed["ratio"] == pytest.approx(30.0 / 3.0)  # not the median per-round ratio, 3.0
    assert skewed["enough_rounds"] is True
    line = ratios.describe(skewed, ("ours", "theirs"), "records/s")
    assert line.startswith("10.00x (30.0 vs 3.0 records/s") and "5 rounds)" in line


def test_ratio_needs_paired_rounds() -> None:
    ratios = _ratios()
    with pytest.raises(ValueError):
        ratios.ratio_of_medians([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        ratios.ratio_of_medians([], [])
