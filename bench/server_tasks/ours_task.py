"""The server-reference task in datarefinery (run by bench/server_reference.py): the job's prompts
as an ``input:`` file, one ``responses`` candidate each at temperature 0 from an OpenAI-compatible
``llm:`` block -> a run directory with the dataset (cache, budget accounting, shard commits and
the manifest included; the end-of-run diversity summary, which no other tool computes, left out).
Prints {"records": ..., "seconds": ...}; imports are not timed.

    python ours_task.py BASE_URL JOB.json OUT_DIR"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import datarefinery

# What the run imports on first use, imported before the clock as the other clients' task
# scripts import their libraries (an import costs the same in every run of a long job).
import datarefinery.llm.openai_compat
import datarefinery.steps.synthesize.responses


def main() -> None:
    base_url, job, out = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
    prompts = out / "prompts.jsonl"
    with prompts.open("w") as handle:
        for i, prompt in enumerate(job["prompts"]):
            handle.write(json.dumps({"id": f"p{i:04d}", "prompt": prompt}) + "\n")
    spec = {
        "name": "server-reference",
        "seed": job["seed"],
        "task": {
            "description": "Answers of a general assistant to short user prompts.",
            "fields": {"prompt": {}, "response": {}},
        },
        "llm": {
            "backend": "openai",
            "base_url": base_url,
            "model": job["model"],
            # No schema is sent on free text; naming the dialect skips the GET /models probe.
            "dialect": "llamacpp",
            "temperature": 0.0,
            "top_p": 1.0,
            "max_tokens": job["max_tokens"],
            "concurrency": job["concurrency"],
        },
        "input": str(prompts),
        "steps": [{"responses": {"n": 1, "reject_truncated": False}}],
    }
    started = time.perf_counter()
    result = datarefinery.run(spec, out / "run", diversity=False)
    seconds = time.perf_counter() - started
    assert result.status == "complete", result.message
    records = result.dataset_size + result.rejected_size
    print(json.dumps({"records": records, "kept": result.dataset_size, "seconds": seconds}))


if __name__ == "__main__":
    main()
