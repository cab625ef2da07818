"""The server-reference task in bespokelabs curator (run by bench/server_reference.py with the
python of a virtualenv holding bespokelabs-curator): the job's prompts -> one chat completion each
at temperature 0 -> a dataset on disk. Prints {"records": ..., "seconds": ...}; imports are not
timed. Rate limits are set far above what the server can do, so curator sends as fast as it
schedules.

    python curator_task.py BASE_URL JOB.json OUT_DIR"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from bespokelabs import curator


class Answers(curator.LLM):
    def prompt(self, row: dict[str, str]) -> str:
        return row["prompt"]

    def parse(self, row: dict[str, str], response: str) -> dict[str, str]:
        return {"prompt": row["prompt"], "response": response}


def main() -> None:
    base_url, job, out = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
    rows = [{"prompt": prompt} for prompt in job["prompts"]]
    started = time.perf_counter()
    # curator looks the model name up in litellm's cost map: a known name, which llama-server
    # (one model) ignores.
    llm = Answers(
        model_name="gpt-4o-mini",
        backend="openai",
        generation_params={"temperature": 0.0, "max_tokens": job["max_tokens"]},
        backend_params={
            "base_url": base_url,
            "api_key": "not-needed",
            "max_requests_per_minute": 10_000_000,
            "max_tokens_per_minute": 10_000_000_000,
            "require_all_responses": True,
            # Replies cut at max_tokens are answers here, as for the other clients (curator's
            # default retries them as failures).
            "invalid_finish_reasons": ["content_filter"],
        },
    )
    dataset = llm(rows)
    dataset = getattr(dataset, "dataset", dataset)
    dataset.save_to_disk(str(out / "dataset"))
    seconds = time.perf_counter() - started
    print(json.dumps({"records": len(dataset), "seconds": seconds}))


if __name__ == "__main__":
    main()
