"""Local vs Ray executor on a CPU-bound step: ``dirs`` (detect-and-replace PII) with the Presidio
detector (spaCy) over IMDb reviews, the same spec through ``refinery run`` with and without
``--executor ray``.

Each (executor, round) is its own ``refinery run`` process into a fresh run directory; the order
alternates round by round. ``run`` is the manifest's session time (spec loaded to dataset written:
for Ray it includes starting a local cluster and its worker actors, each loading Presidio);
``process`` is the whole command. Both outputs are checked to be identical. The speed-up is the
ratio of the median rates (records/s) of Ray and local over the rounds, with the spread
(``bench/ratios.py``).

    .venv/bin/python bench/executor_scaling.py [--data ../shared/data] [--records 600] [--rounds 5]
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


def spec(data: Path, records: int) -> dict[str, Any]:
    return {
        "name": "executor-scaling",
        "seed": 1,
        "input": {"path": str(data / "imdb" / "test.jsonl"), "limit": records},
        "shard_size": 50,
        "steps": [{"dirs": {"detector": {"kind": "presidio"}}}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sides = ["local", "ray"]
    times: dict[str, dict[str, list[float]]] = {s: {"run": [], "process": []} for s in sides}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec(args.data.resolve(), args.records)))
        for round_ in range(args.rounds):
            outputs = {}
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                out = Path(tmp) / f"{side}-{round_}"
                # The end-of-run summary and report are the same work on either executor.
                command = [*REFINERY, "run", str(spec_path), "-o", str(out), "-q"]
                command += ["--no-report", "--no-diversity"]
                if side == "ray":
                    command += ["--executor", "ray"]
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                process = time.perf_counter() - started
                if done.returncode != 0:
                    raise RuntimeError(
                        f"{side} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
                    )
                manifest = json.loads((out / "manifest.json").read_text())
                run = float(manifest["sessions"][-1]["seconds"])
                times[side]["run"].append(run)
                times[side]["process"].append(process)
                outputs[side] = (out / "dataset.jsonl").read_text()
                print(f"round {round_} {side:5s} run {run:6.1f} s  process {process:6.1f} s")
            assert outputs["local"] == outputs["ray"], "the executors disagree"

    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "records": args.records,
        "rounds": args.rounds,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "times": times,
    }
    for kind in ("run", "process"):
        # As rates, so the ratio is the one every benchmark reports: median over median.
        rates = {side: [args.records / t for t in times[side][kind]] for side in sides}
        figures = ratio_of_medians(rates["ray"], rates["local"])
        summary[f"speedup_{kind}"] = figures
        print(
            f"{kind:8s} local {statistics.median(times['local'][kind]):6.1f} s  "
            f"ray {statistics.median(times['ray'][kind]):6.1f} s  "
            f"ray/local {describe(figures, ('ray', 'local'), 'records/s')}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "executor_scaling.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
