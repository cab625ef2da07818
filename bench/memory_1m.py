"""Peak memory of a 1M-record pipeline without a model: filter + exact dedup + write.

The input is generated (seeded): 1,000,000 short reviews, about 5 % failing the filter (too short,
or a label outside the task's) and about 10 % exact duplicates up to case and spacing. The run is
``datarefinery.run`` in a child process; its peak resident set size comes from ``wait4`` (the
kernel's high-water mark of that process), so nothing in the measuring process counts. Two runs:
the pipeline alone (``diversity=False``) and with the end-of-run diversity summary a run adds by
default (it loads torch and the sentence-embedding model, a fixed cost of several hundred MiB).

Steps: ``filter`` + ``dedup`` (method ``exact``) when this tree has them (issue 5); otherwise
``validate`` (rejects bad labels and empty text) + an exact-duplicate step defined here on the
machinery ``zero_shot`` uses for its own duplicates (``normalized_key``, restore / postprocess in
shard order), registered for this process only. The output says which.

    .venv/bin/python bench/memory_1m.py [--records 1000000] [--shard-size 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
WORDS = [
    "film",
    "movie",
    "plot",
    "actor",
    "actress",
    "scene",
    "ending",
    "story",
    "music",
    "camera",
    "cast",
    "director",
    "script",
    "great",
    "awful",
    "slow",
    "funny",
    "moving",
    "dull",
    "brilliant",
    "weak",
    "strong",
    "charming",
    "boring",
    "clever",
]


def write_input(path: Path, count: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    recent: list[str] = []
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            roll = rng.random()
            label = ("positive", "negative")[i % 2]
            if roll < 0.10 and recent:
                # An exact duplicate of a recent text up to case and spacing.
                text = "  " + rng.choice(recent).upper() + " "
            elif roll < 0.13:
                text = "too short"
            else:
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 30)))
                text = f"Review {i}: {text}."
                recent = [*recent[-99:], text]
            if 0.13 <= roll < 0.15:
                label = "neutral"
            handle.write(json.dumps({"id": f"r{i:07d}", "text": text, "label": label}) + "\n")


def has_curation_steps() -> bool:
    from datarefinery.steps.registry import STEPS

    return "filter" in STEPS and "dedup" in STEPS


def spec(input_path: Path, shard_size: int, curation: bool) -> dict[str, Any]:
    steps: list[dict[str, Any]]
    if curation:
        steps = [
            {"filter": {"min_chars": 20, "labels": ["positive", "negative"]}},
            {"dedup": {"method": "exact"}},
        ]
    else:
        steps = [{"validate": {}}, {"bench_exact_dedup": {}}]
    return {
        "name": "memory-1m",
        "task": {
            "description": "movie reviews",
            "fields": {"text": {"min_chars": 20}, "label": {"type": "label"}},
            "labels": ["positive", "negative"],
        },
        "input": str(input_path),
        "shard_size": shard_size,
        "steps": steps,
    }


def child(spec_path: Path, out: Path, diversity: str) -> None:
    """The measured process: registers the stand-in dedup step if needed, then runs the spec."""
    import datarefinery
    from datarefinery.steps import registry

    if not has_curation_steps():
        registry.STEPS["bench_exact_dedup"] = "memory_1m:ExactDedup"
        sys.path.insert(0, str(HERE))
    result = datarefinery.run(spec_path, out, diversity=diversity == "on")
    print(json.dumps({"status": result.status, "kept": result.dataset_size,
                      "rejected": result.rejected_size}))  # fmt: skip


def _exact_dedup_class() -> type[Any]:
    from datarefinery.records import Record, Rejected
    from datarefinery.steps.base import Output, Step, StepConfig, StepContext
    from datarefinery.steps.writing import normalized_key

    class ExactDedup(Step[StepConfig]):
        """Rejects a record whose text equals an earlier one up to case and spacing."""

        name = "bench_exact_dedup"
        Config = StepConfig
        stateful = True

        def setup(self, ctx: StepContext) -> None:
            super().setup(ctx)
            self.first: dict[str, str] = {}

        async def process(self, batch: list[Record]) -> list[Output]:
            return list(batch)

        def restore(self, committed: Iterable[Record]) -> None:
            for record in committed:
                self.first.setdefault(normalized_key(record.fields, ["text"]), record.id)

        def postprocess(self, outputs: list[Output]) -> list[Output]:
            result: list[Output] = []
            for output in outputs:
                if isinstance(output, Record):
                    key = normalized_key(output.fields, ["text"])
                    original = self.first.setdefault(key, output.id)
                    if original != output.id:
                        output = Rejected(output, self.ctx.name, "duplicate", original)
                result.append(output)
            return result

    return ExactDedup


def __getattr__(name: str) -> Any:  # the registry imports ``memory_1m:ExactDedup`` lazily
    if name == "ExactDedup":
        return _exact_dedup_class()
    raise AttributeError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--shard-size", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return
    curation = has_curation_steps()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        write_input(work / "input.jsonl", args.records)
        print(f"input written in {time.perf_counter() - started:.0f} s", flush=True)
        spec_path = work / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec(work / "input.jsonl", args.shard_size, curation)))
        load_before = os.getloadavg()
        sides = {}
        for diversity in ("off", "on"):
            run_dir = work / f"run-{diversity}"
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, __file__, "--child", str(spec_path), str(run_dir), diversity],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            output = process.stdout.read()
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - started
            assert status == 0, output
            measured = json.loads(output.strip().splitlines()[-1])
            sides["pipeline" if diversity == "off" else "with_diversity_summary"] = {
                "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
                "seconds": round(seconds, 1),
                "records_per_s": round(args.records / seconds),
                "dataset_mib": round((run_dir / "dataset.jsonl").stat().st_size / 2**20, 1),
                **measured,
            }
            print(diversity, json.dumps(sides), flush=True)
            shutil.rmtree(run_dir)
    summary = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "records": args.records,
        "shard_size": args.shard_size,
        "steps": "filter + dedup(exact)" if curation else "validate + exact dedup (bench stand-in)",
        "load_before": [round(x, 2) for x in load_before],
        **sides,
    }
    print(json.dumps(summary, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory_1m.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
