"""The server-reference task as a bare client (run by bench/server_reference.py): the job's prompts
sent as chat completions by one ``httpx.AsyncClient`` with ``concurrency`` requests in flight, the
replies written as JSON lines. Prints {"records": ..., "seconds": ...}; imports are not timed.

    python direct_task.py BASE_URL JOB.json OUT_DIR"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx


async def run(base_url: str, job: dict[str, Any]) -> list[str]:
    concurrency = int(job["concurrency"])
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in enumerate(job["prompts"]):
        queue.put_nowait(item)
    replies = [""] * len(job["prompts"])

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index, prompt = queue.get_nowait()
            body = {
                "model": job["model"],
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": job["max_tokens"],
                "temperature": 0.0,
                "seed": job["seed"],
            }
            reply = await client.post("/chat/completions", json=body)
            reply.raise_for_status()
            replies[index] = reply.json()["choices"][0]["message"]["content"] or ""

    async with httpx.AsyncClient(base_url=base_url, timeout=None, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return replies


def main() -> None:
    base_url, job, out = sys.argv[1], json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3])
    started = time.perf_counter()
    replies = asyncio.run(run(base_url, job))
    with (out / "replies.jsonl").open("w") as handle:
        for prompt, reply in zip(job["prompts"], replies, strict=True):
            handle.write(json.dumps({"prompt": prompt, "response": reply}) + "\n")
    seconds = time.perf_counter() - started
    print(json.dumps({"records": len(replies), "seconds": seconds}))


if __name__ == "__main__":
    main()
