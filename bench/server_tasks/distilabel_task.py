"""The server-reference task in distilabel (run by bench/server_reference.py with the python of a
virtualenv holding distilabel[openai]): the job's prompts -> one ``TextGeneration`` each at
temperature 0 -> a dataset on disk. Prints {"records": ..., "seconds": ...}; imports are not timed.

distilabel sends a step's input batch at once and waits for all of it before the next, so the
batch is the job's ``in_flight`` (the whole prompt set unless told): the server's queue then keeps
every slot busy, distilabel's best case against a continuously batching server.

    python distilabel_task.py BASE_URL JOB.json OUT_DIR"""

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
    base_url, job, out = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
    rows = [{"instruction": prompt} for prompt in job["prompts"]]
    batch = int(job.get("in_flight") or len(rows))
    started = time.perf_counter()
    with Pipeline(name="server-reference", cache_dir=str(out / "cache")) as pipeline:
        load = LoadDataFromDicts(data=rows, batch_size=batch)
        llm = OpenAILLM(
            model=job["model"],
            base_url=base_url,
            api_key="not-needed",
            generation_kwargs={"max_new_tokens": job["max_tokens"], "temperature": 0.0},
        )
        generate = TextGeneration(llm=llm, input_batch_size=batch)
        load >> generate
    distiset = pipeline.run(use_cache=False)
    texts = [row["generation"] for row in distiset["default"]["train"]]
    distiset.save_to_disk(str(out / "dataset"))
    seconds = time.perf_counter() - started
    print(json.dumps({"records": len(texts), "seconds": seconds}))


if __name__ == "__main__":
    main()
