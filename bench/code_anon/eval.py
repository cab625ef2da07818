"""Line-level precision and recall of ``code_anonymize`` on the labelled set (``set.jsonl``).

A line counts as flagged when the step changed it (``changed_lines``); a rejected record flags
nothing. ``leaks`` counts planted values still in the output. ``baseline`` is the step with
``model_pass: false`` (regexes and detectors only); ``model`` adds the model pass.

    .venv/bin/python bench/code_anon/eval.py --split dev --method baseline
    .venv/bin/python bench/code_anon/eval.py --split dev --method model --model default \
        --threads 1 --parallel 4

Tune only on ``dev``; ``test`` is for the reported figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import datarefinery
from datarefinery.cli.model_options import llm_block_from_options
from datarefinery.io.read import read_records

HERE = Path(__file__).resolve().parent


def _run(
    rows: list[dict[str, Any]], language: str, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    """The step's output per record id (``None`` for a rejected record)."""
    chosen = [r for r in rows if r["language"] == language]
    if not chosen:
        return {}
    source = work / f"in-{language}.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(
        "".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in chosen)
    )
    step = {
        "language": language,
        "detector": {"kind": args.detector},
        "model_pass": args.method == "model",
    }
    spec: dict[str, Any] = {
        "name": "code-anon-eval",
        "seed": 0,
        "input": str(source),
        "steps": [{"code_anonymize": step}],
    }
    if args.method == "model":
        spec["llm"] = llm_block_from_options(
            model=args.model, threads=args.threads, parallel=args.parallel, n_ctx=args.n_ctx
        )
        # a batch of 12 rewritten lines is up to ~2,000 tokens: on a shared 2-core machine that
        # outlasts the default 300 s per call
        spec["llm"]["timeout_s"] = args.timeout_s
    result = datarefinery.run(spec, work / f"run-{args.method}-{language}", fresh=True)
    outputs: dict[str, Any] = dict.fromkeys((r["id"] for r in chosen), None)
    for record in read_records(result.dataset_path):
        outputs[record.id] = record
    return outputs


def score(rows: list[dict[str, Any]], outputs: dict[str, Any]) -> dict[str, Any]:
    tp = fp = fn = leaks = 0
    outcomes: dict[str, int] = {}
    for row in rows:
        record = outputs.get(row["id"])
        flagged = set(record.provenance.conditioning["changed_lines"]) if record else set()
        text = record.fields["text"] if record else row["text"]
        labels = set(row["labels"])
        tp, fp, fn = (
            tp + len(flagged & labels),
            fp + len(flagged - labels),
            fn + len(labels - flagged),
        )
        leaks += sum(value in text for value in row["values"])
        outcome = record.provenance.conditioning.get("outcome", "?") if record else "rejected"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return {
        "records": len(rows),
        "labelled_lines": tp + fn,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "true_pos": tp,
        "false_pos": fp,
        "leaks": leaks,
        "outcomes": outcomes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["dev", "test"], required=True)
    parser.add_argument("--method", choices=["baseline", "model"], default="baseline")
    parser.add_argument("--model", default="default", help="default | PATH.gguf")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=None, help="sequences decoded together")
    parser.add_argument("--n-ctx", type=int, default=2048)
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="per model call")
    parser.add_argument("--detector", choices=["regex", "presidio", "both"], default="both")
    parser.add_argument("--work", type=Path, default=Path("runs/code-anon-eval"))
    args = parser.parse_args()
    rows = [json.loads(line) for line in (HERE / "set.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == args.split]
    started = time.perf_counter()
    outputs = {**_run(rows, "python", args, args.work), **_run(rows, "other", args, args.work)}
    figures = score(rows, outputs)
    figures.update(
        split=args.split,
        method=args.method,
        detector=args.detector,
        seconds=round(time.perf_counter() - started, 1),
    )
    if args.method == "model":
        figures["model"] = args.model
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
