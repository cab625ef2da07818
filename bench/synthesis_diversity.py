"""Diversity of three synthesis methods on the IMDb-like sentiment task, same model for each.

``zero_shot`` (ZeroGen), ``attributes`` (a genre × viewer × length × focus grid) and ``rationale``
(S3's explain-then-generate) each plan ``--per-label`` + a margin records per label; the figures are
computed on the first ``--per-label`` records kept per label (300 in all by default), so every
method is measured on the same number of texts:

- distinct-2: unique word bigrams / all bigrams over the texts (``evaluate.diversity.distinct_n``)
- dispersion: mean pairwise L2 distance of all-MiniLM-L6-v2 embeddings (``mean_pairwise_distance``)

Each method runs into its own run directory under ``--runs`` (resumable: rerun the same command
after an interruption). Raw figures go to ``--results`` (keyed by model/method); the table is
printed.

    .venv/bin/python bench/synthesis_diversity.py --model default
    .venv/bin/python bench/synthesis_diversity.py \\
        --model /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import datarefinery
from datarefinery.embeddings import Embedder
from datarefinery.evaluate.diversity import distinct_n, mean_pairwise_distance

TASK: dict[str, Any] = {
    "description": "Sentiment classification of English movie reviews, like the IMDb dataset.",
    "fields": {
        "text": {
            "description": "a movie review of two to four sentences written by a viewer",
            "min_chars": 40,
            "max_chars": 300,
        },
        "label": {"type": "label"},
    },
    "labels": {
        "positive": "the reviewer liked the movie",
        "negative": "the reviewer disliked the movie",
    },
    "attributes": {
        "genre": [
            "action",
            "comedy",
            "drama",
            "horror",
            "romance",
            "science fiction",
            "animation",
            "documentary",
            "thriller",
            "musical",
        ],
        "viewer": [
            "a parent",
            "a film student",
            "a teenager",
            "a critic",
            "a casual moviegoer",
            "a fan of the director",
        ],
        "length": ["one sentence", "two sentences", "three sentences", "four sentences"],
        "focus": [
            "the acting",
            "the plot",
            "the music",
            "the visuals",
            "the ending",
            "the pacing",
            "the dialogue",
        ],
    },
}
METHODS: dict[str, dict[str, Any]] = {
    "zero_shot": {},
    "attributes": {"draw": "weighted"},
    "rationale": {"rationales": 8, "rationale_calls": 2},
}


def spec(
    method: str, model: str, planned: int, per_call: int, seed: int, threads: int | None = None
) -> dict[str, Any]:
    llm = {"model": model, "temperature": 0.9, "max_tokens": 256, "timeout_s": 1800}
    return {
        "name": f"diversity-{method}",
        "seed": seed,
        "task": TASK,
        # n_threads is an execution setting: it changes the speed, not the records.
        "llm": llm if threads is None else {**llm, "n_threads": threads},
        "shard_size": 8,
        "steps": [{method: {**METHODS[method], "count_per_label": planned, "per_call": per_call}}],
    }


def first_per_label(path: Path, per_label: int) -> list[dict[str, Any]]:
    taken: Counter[str] = Counter()
    chosen = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            label = record["fields"]["label"]
            if taken[label] < per_label:
                taken[label] += 1
                chosen.append(record)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="'default' (SmolLM2) or a GGUF path")
    parser.add_argument("--per-label", type=int, default=150)
    parser.add_argument("--margin", type=float, default=0.07, help="extra records planned")
    parser.add_argument(
        "--measure-per-label",
        type=int,
        default=None,
        help="measure the first N records per label (default --per-label); when a method kept "
        "fewer than planned, the smallest count makes the methods comparable (distinct-n "
        "depends on corpus size)",
    )
    parser.add_argument("--per-call", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="llama.cpp threads; on a machine shared past its cores, 1 avoids spinning threads",
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--runs", type=Path, default=Path("runs/synthesis_diversity"))
    parser.add_argument(
        "--results", type=Path, default=Path("bench/results/synthesis_diversity.json")
    )
    args = parser.parse_args()

    model_tag = "smollm2-135m" if args.model == "default" else Path(args.model).stem
    planned = int(args.per_label * (1 + args.margin)) + 1
    embedder = Embedder()
    rows = []
    for method in args.methods:
        run_dir = args.runs / model_tag / method
        started = time.perf_counter()
        result = datarefinery.run(
            spec(method, args.model, planned, args.per_call, args.seed, args.threads),
            run_dir,
            diversity=False,
        )
        if result.status != "complete":
            raise SystemExit(f"{method}: {result.status}: {result.message}")
        records = first_per_label(result.dataset_path, args.measure_per_label or args.per_label)
        texts = [r["fields"]["text"] for r in records]
        reasons = Counter(
            json.loads(line)["reason"] for line in result.rejected_path.read_text().splitlines()
        )
        row = {
            "model": model_tag,
            "method": method,
            "measured": len(texts),
            "per_label": dict(Counter(r["fields"]["label"] for r in records)),
            "planned": planned * 2,
            "kept": result.dataset_size,
            "rejected": result.rejected_size,
            "rejected_by_reason": dict(reasons),
            "distinct_1": round(distinct_n(texts, 1), 4),
            "distinct_2": round(distinct_n(texts, 2), 4),
            "dispersion": round(mean_pairwise_distance(embedder.encode(texts)), 4),
            "mean_chars": round(sum(map(len, texts)) / max(1, len(texts)), 1),
            "completion_tokens": result.usage.completion_tokens,
            "session_seconds": round(time.perf_counter() - started, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

    results_path = args.results
    previous = json.loads(results_path.read_text()) if results_path.exists() else {}
    for row in rows:
        previous[f"{row['model']}/{row['method']}/{row['measured']}"] = {
            **row,
            "date": datetime.now(UTC).date().isoformat(),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        }
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(previous, indent=2) + "\n")

    print("\n| model | method | records measured | distinct-2 | dispersion | kept / rejected |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(row["rejected_by_reason"].items()))
        print(
            f"| {row['model']} | {row['method']} | {row['measured']} | {row['distinct_2']:.3f} | "
            f"{row['dispersion']:.3f} | {row['kept']} / {row['rejected']}"
            f"{f' ({reasons})' if reasons else ''} |"
        )


if __name__ == "__main__":
    main()
