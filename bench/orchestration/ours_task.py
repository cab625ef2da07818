"""The orchestration-overhead task in datarefinery (run by bench/orchestration_overhead.py):
N ``zero_shot`` calls against an OpenAI-compatible endpoint -> a run directory with the dataset
(cache, budget accounting, JSON-schema validation, shard commits and the manifest included;
the end-of-run diversity summary, which no other tool computes, left out).
Prints {"records": ..., "seconds": ...}; imports are not timed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import datarefinery


def main() -> None:
    base_url, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    spec = {
        "name": "overhead",
        "task": {
            "description": "Sentiment classification of English movie reviews.",
            "fields": {"text": {"max_chars": 300}, "label": {"type": "label"}},
            "labels": ["positive", "negative"],
        },
        "llm": {
            "backend": "openai",
            "base_url": base_url,
            "model": "instant",
            "dialect": "openai",
            "max_tokens": 128,
            "concurrency": 50,
        },
        "steps": [{"zero_shot": {"count_per_label": count // 2}}],
    }
    started = time.perf_counter()
    # Without the end-of-run diversity summary: it loads the embedding model and encodes the
    # dataset (seconds), work the other tools do not do.
    result = datarefinery.run(spec, out / "run", diversity=False)
    seconds = time.perf_counter() - started
    assert result.status == "complete", result.message
    records = result.dataset_size + result.rejected_size
    print(json.dumps({"records": records, "kept": result.dataset_size, "seconds": seconds}))


if __name__ == "__main__":
    main()
