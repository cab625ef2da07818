"""The orchestration-overhead task in distilabel (run by bench/orchestration_overhead.py with the
python of a virtualenv holding distilabel[openai]): N prompts -> one chat completion each ->
a dataset on disk. Prints {"records": ..., "seconds": ...}; imports are not timed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration


def main() -> None:
    base_url, count, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    prompt = (
        "Write one {label} movie review of one or two sentences. "
        'Answer with one JSON object with the key "text".'
    )
    rows = [
        {"instruction": prompt.format(label=("positive", "negative")[i % 2])} for i in range(count)
    ]
    started = time.perf_counter()
    with Pipeline(name="overhead", cache_dir=str(out / "cache")) as pipeline:
        load = LoadDataFromDicts(data=rows, batch_size=100)
        generate = TextGeneration(
            llm=OpenAILLM(model="instant", base_url=base_url, api_key="not-needed"),
            input_batch_size=50,
        )
        load >> generate
    distiset = pipeline.run(use_cache=False)
    texts = [json.loads(row["generation"])["text"] for row in distiset["default"]["train"]]
    distiset.save_to_disk(str(out / "dataset"))
    seconds = time.perf_counter() - started
    print(json.dumps({"records": len(texts), "seconds": seconds}))


if __name__ == "__main__":
    main()
