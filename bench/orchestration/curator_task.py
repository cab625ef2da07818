"""The orchestration-overhead task in bespokelabs curator (run by
bench/orchestration_overhead.py with the python of a virtualenv holding bespokelabs-curator):
N prompts -> one chat completion each, its JSON reply parsed -> a dataset on disk.
Prints {"records": ..., "seconds": ...}; imports are not timed.

The reply is parsed in ``parse`` rather than through ``response_format``: with a ``base_url``,
curator first probes the server for structured output with a schema of its own, which a server
returning one fixed reply cannot pass."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bespokelabs import curator


class Reviews(curator.LLM):
    def prompt(self, row: dict[str, str]) -> str:
        return (
            f"Write one {row['label']} movie review of one or two sentences. "
            'Answer with one JSON object with the key "text".'
        )

    def parse(self, row: dict[str, str], response: str) -> dict[str, str]:
        return {"label": row["label"], "text": json.loads(response)["text"]}


def main() -> None:
    base_url, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    rows = [{"label": ("positive", "negative")[i % 2]} for i in range(count)]
    started = time.perf_counter()
    llm = Reviews(
        model_name="gpt-4o-mini",
        backend="openai",
        backend_params={
            "base_url": base_url,
            "api_key": "not-needed",
            "max_requests_per_minute": 10_000_000,
            "max_tokens_per_minute": 10_000_000_000,
            "require_all_responses": True,
        },
    )
    dataset = llm(rows)
    dataset = getattr(dataset, "dataset", dataset)
    dataset.save_to_disk(str(out / "dataset"))
    seconds = time.perf_counter() - started
    print(json.dumps({"records": len(dataset), "seconds": seconds}))


if __name__ == "__main__":
    main()
