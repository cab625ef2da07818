"""Recompute every stored ratio in ``bench/results/`` as the ratio of the median rates, with the
spread, from the raw per-round figures the JSON files keep (``bench/ratios.py``). Results with
fewer than 5 rounds are marked: they still need a 5-round run.

    .venv/bin/python bench/recompute_ratios.py [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ratios import describe, ratio_of_medians

HERE = Path(__file__).resolve().parent


def orchestration(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    results = data["results"]
    for tool in ("distilabel", "curator"):
        if tool in results:
            for kind, key in (("run", "rate"), ("process", "wall_rate")):
                figures = ratio_of_medians(results["ours"][key], results[tool][key])
                yield f"ours/{tool} ({kind})", figures, ("ours", tool)


def embedded(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    for mode in ("json_schema", "free_text"):
        rounds = data[mode]["rounds"]
        for side in ("p4", "p8"):
            figures = ratio_of_medians(rounds[side], rounds["bare"])
            yield f"{mode} {side}/bare", figures, (side, "bare")


def saturation(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    rates, best = data["rates"], data["best_direct"]
    for side in rates:
        if side != best:
            yield f"{side}/{best}", ratio_of_medians(rates[side], rates[best]), (side, best)


def executors(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    n = data["records"]
    for kind in ("run", "process"):
        local = [n / t for t in data["times"]["local"][kind]]
        ray = [n / t for t in data["times"]["ray"][kind]]
        yield f"ray/local ({kind})", ratio_of_medians(ray, local), ("ray", "local")


def dedup(data: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], tuple[str, str]]]:
    n = data["docs"]
    ours = [n / t for t in data["results"]["refinery dedup (rensa)"]["seconds"]]
    theirs = [n / t for t in data["results"]["datasketch"]["seconds"]]
    yield "rensa/datasketch", ratio_of_medians(ours, theirs), ("rensa", "datasketch")


READERS = {
    "orchestration_overhead.json": (orchestration, "records/s"),
    "embedded_throughput.json": (embedded, "tok/s"),
    "server_saturation.json": (saturation, "tok/s"),
    "executor_scaling.json": (executors, "records/s"),
    "dedup.json": (dedup, "docs/s"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    args = parser.parse_args()
    for name, (reader, unit) in READERS.items():
        path = args.results / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        print(f"{name} ({data.get('date', '?')}, load before {data.get('load_before', '?')})")
        for label, figures, names in reader(data):
            print(f"  {label}: {describe(figures, names, unit)}")


if __name__ == "__main__":
    main()
