"""Executors on a CPU-bound step: ``dirs`` (detect-and-replace PII) with the Presidio detector
(spaCy) over IMDb reviews, the same spec through ``refinery run`` on three sides:

- ``one``: the local executor limited to one worker (``executor: {workers: 1}``): every shard in
  the run's own process, one at a time;
- ``local``: the local executor as it runs by default, its worker processes one per core
  (``executors/workers.py``), each loading Presidio;
- ``ray``: ``--executor ray`` (a local cluster started by the run, one worker actor per CPU, each
  loading Presidio; cluster start-up included).

Each (side, round) is its own ``refinery run`` process into a fresh run directory; the order of
the sides rotates round by round. ``run`` is the manifest's session time (spec loaded to dataset
written: worker start-up and Presidio loading included); ``process`` is the whole command. Every
side's dataset and rejections are checked to be identical. Each speed-up is the ratio of the
median rates (records/s) of a side and the first side over the rounds, with the spread
(``bench/ratios.py``).

    .venv/bin/python bench/executor_scaling.py [--sides one,local] [--data ../shared/data]
        [--records 600] [--rounds 5] [--shard-size 50]

Results go to ``results/executor_scaling_<sides>.json`` (``executor_scaling.json`` holds the
earlier local-vs-Ray run, whose local side was one process: today's ``one``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from ratios import MIN_ROUNDS, describe, ratio_of_medians

HERE = Path(__file__).resolve().parent
REFINERY = [sys.executable, "-m", "datarefinery.cli.app"]


def spec(data: Path, records: int, shard_size: int, workers: int | None) -> dict[str, Any]:
    built: dict[str, Any] = {
        "name": "executor-scaling",
        "seed": 1,
        "input": {"path": str(data / "imdb" / "test.jsonl"), "limit": records},
        "shard_size": shard_size,
        "steps": [{"dirs": {"detector": {"kind": "presidio"}}}],
    }
    if workers is not None:
        built["executor"] = {"workers": workers}
    return built


def run_side(side: str, specs: dict[str, Path], out: Path) -> tuple[float, float, tuple[str, str]]:
    """One ``refinery run``: the session seconds, the process seconds and the outputs."""
    # The end-of-run summary and report are the same work on every side.
    command = [*REFINERY, "run", str(specs[side]), "-o", str(out), "-q"]
    command += ["--no-report", "--no-diversity"]
    if side == "ray":
        command += ["--executor", "ray"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    process = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    outputs = ((out / "dataset.jsonl").read_text(), (out / "rejected.jsonl").read_text())
    return float(manifest["sessions"][-1]["seconds"]), process, outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sides", default="one,local", help="of one, local, ray; first: baseline")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--shard-size", type=int, default=50)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sides = args.sides.split(",")
    if len(sides) < 2 or not set(sides) <= {"one", "local", "ray"}:
        parser.error("--sides takes two or three of one, local, ray")
    times: dict[str, dict[str, list[float]]] = {s: {"run": [], "process": []} for s in sides}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        specs = {}
        for side in sides:
            specs[side] = Path(tmp) / f"{side}.yaml"
            workers = 1 if side == "one" else None
            built = spec(args.data.resolve(), args.records, args.shard_size, workers)
            specs[side].write_text(yaml.safe_dump(built))
        for round_ in range(args.rounds):
            outputs = {}
            shift = round_ % len(sides)
            for side in sides[shift:] + sides[:shift]:
                run, process, outputs[side] = run_side(side, specs, Path(tmp) / f"{side}-{round_}")
                times[side]["run"].append(run)
                times[side]["process"].append(process)
                print(f"round {round_} {side:5s} run {run:6.1f} s  process {process:6.1f} s")
            assert len(set(outputs.values())) == 1, "the sides disagree"

    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "records": args.records,
        "shard_size": args.shard_size,
        "rounds": args.rounds,
        "sides": sides,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "times": times,
    }
    base = sides[0]
    for kind in ("run", "process"):
        # As rates, so the ratio is the one every benchmark reports: median over median.
        rates = {side: [args.records / t for t in times[side][kind]] for side in sides}
        for side in sides[1:]:
            figures = ratio_of_medians(rates[side], rates[base])
            summary[f"speedup_{kind}_{side}_over_{base}"] = figures
            print(
                f"{kind:8s} {base} {statistics.median(times[base][kind]):6.1f} s  "
                f"{side} {statistics.median(times[side][kind]):6.1f} s  "
                f"{side}/{base} {describe(figures, (side, base), 'records/s')}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"executor_scaling_{'_'.join(sides)}.json"
    (args.out / name).write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
