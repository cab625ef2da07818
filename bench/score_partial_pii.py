"""Score the records an unfinished ``refinery eval pii`` run has committed so far, side by side.

``refinery eval pii`` writes its figures only when a method's run is complete; on a slow machine
a GDR run over the full split can take hours (it resumes). This scores every method's committed
shards against the gold file on the records that *all* given methods have finished, so the
methods are compared on the same records:

    .venv/bin/python bench/score_partial_pii.py --gold ../shared/data/presidio_pii/test.jsonl \
        runs/bench-refine/r2/pii-smollm2/dirs runs/bench-refine/r2/pii-smollm2/pii_rewrite

Prints one JSON object per method (``score_pii``'s figures, without example ids).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from datarefinery.evaluate.pii import read_gold, score_pii
from datarefinery.io.read import read_records


def committed(run_dir: Path) -> tuple[dict[str, str], set[str]]:
    """Output text of every record in the run's committed shards (a ``.done`` marker each), and
    the ids those shards finished, rejected records included."""
    outputs: dict[str, str] = {}
    finished: set[str] = set()
    for done in sorted(run_dir.glob("steps/*/shard-*.done")):
        for record in read_records(done.with_suffix(".jsonl")):
            outputs[record.id] = str(record.fields.get("text", ""))
        rejected = done.with_suffix(".rejected.jsonl")
        if rejected.exists():
            for line in rejected.read_text(encoding="utf-8").splitlines():
                finished.add(json.loads(line)["record"]["id"])
    return outputs, finished | set(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", required=True, type=Path)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories, one per method")
    args = parser.parse_args()
    gold = read_gold(args.gold)
    results = {run: committed(run) for run in args.runs}
    # A rejected record counts as emitted unchanged (score_pii's worst case), so it stays in.
    finished = set.intersection(*(ids for _, ids in results.values()))
    chosen = [g for g in gold if g.id in finished]
    for run, (texts, _) in results.items():
        figures = score_pii(chosen, texts)
        figures.pop("leaked_examples")
        print(json.dumps({"method": run.name, "run_dir": str(run), **figures}))


if __name__ == "__main__":
    main()
