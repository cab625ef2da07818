"""Server saturation: a pipeline's completion tokens/s against a loopback llama.cpp server vs the
best direct concurrent client sending the same requests.

One ``python -m llama_cpp.server`` (llama-cpp-python's, the embedded model, 2 threads) serves
every side. The pipeline side is ``datarefinery.run`` of a ``zero_shot`` spec with
``backend: openai`` (cache, budget, validation, re-asks, shard commits included) at
``llm.concurrency`` 1 and 4. The direct sides are a plain ``httpx`` client posting the very
requests the pipeline makes (same prompts, schema, sampling, seeds: built by the step itself) with
1, 2 or 4 in flight. Sides rotate round by round; each round uses new seeds.

    .venv/bin/python bench/server_saturation.py [--calls 16] [--rounds 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx

import datarefinery
from datarefinery.config import spec_from_dict
from datarefinery.llm.base import Request
from datarefinery.llm.models import resolve_model_path
from datarefinery.pipeline import Pipeline
from datarefinery.steps.base import StepContext
from datarefinery.steps.synthesize.planned import PlannedGeneration

TASK = {
    "description": "Sentiment classification of English movie reviews.",
    "fields": {
        "text": {"description": "a movie review of one or two sentences", "max_chars": 200},
        "label": {"type": "label"},
    },
    "labels": {"positive": "the reviewer liked it", "negative": "the reviewer disliked it"},
}


def spec(base_url: str, model: str, calls: int, round_: int, concurrency: int) -> dict[str, Any]:
    return {
        "name": "server-saturation",
        "seed": 100 + round_,
        "task": TASK,
        "llm": {
            "backend": "openai",
            "base_url": base_url,
            "model": model,
            "dialect": "llamacpp",
            "max_tokens": 96,
            "concurrency": concurrency,
            "timeout_s": 600,
        },
        "shard_size": 4,
        "steps": [{"zero_shot": {"count_per_label": calls // 2}}],
    }


def requests_of(spec_dict: dict[str, Any]) -> list[Request]:
    """The requests the pipeline's step makes, built by the step itself."""
    loaded = spec_from_dict(spec_dict)
    step = Pipeline.from_spec(loaded).steps[0]
    assert isinstance(step, PlannedGeneration)
    s = loaded.spec
    step.setup(StepContext(name="zero_shot", index=0, seed=s.seed, task=s.task, llm=s.llm))
    return [step.build_call(job).request for job in step.plan()]


def body(request: Request, model: str) -> dict[str, Any]:
    params = request.params
    return {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": request.seed,
        "response_format": {"type": "json_object", "schema": request.json_schema},
    }


async def direct(base_url: str, model: str, requests: list[Request], in_flight: int) -> int:
    gate = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:

        async def one(request: Request) -> int:
            async with gate:
                reply = await client.post("/chat/completions", json=body(request, model))
                reply.raise_for_status()
                return int(reply.json()["usage"]["completion_tokens"])

        return sum(await asyncio.gather(*(one(r) for r in requests)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads), "--verbose", "False",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("llama_cpp.server did not start")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    model_path = resolve_model_path(args.model)
    server, base_url = start_server(model_path, args.threads)
    model = model_path.name
    sides = ["direct-1", "direct-2", "direct-4", "pipeline-1", "pipeline-4"]
    rates: dict[str, list[float]] = {side: [] for side in sides}
    load_before = os.getloadavg()
    try:
        # Warm-up: the first request loads the server's chat handler and grammar code.
        asyncio.run(direct(base_url, model, requests_of(spec(base_url, model, 2, 99, 1))[:1], 1))
        for round_ in range(args.rounds):
            shift = round_ % len(sides)
            for side in sides[shift:] + sides[:shift]:
                kind, n = side.split("-")
                spec_dict = spec(base_url, model, args.calls, round_, int(n))
                started = time.perf_counter()
                if kind == "direct":
                    tokens = asyncio.run(direct(base_url, model, requests_of(spec_dict), int(n)))
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        # No diversity summary: it embeds the dataset, no model call in it.
                        result = datarefinery.run(spec_dict, tmp, diversity=False)
                        assert result.status == "complete", result.message
                        tokens = result.usage.completion_tokens
                seconds = time.perf_counter() - started
                rates[side].append(tokens / seconds)
                print(
                    f"round {round_} {side:10s} {tokens:5d} tok {seconds:6.1f} s "
                    f"{tokens / seconds:6.1f} tok/s",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=30)

    medians = {side: statistics.median(r) for side, r in rates.items()}
    best_direct = max((s for s in sides if s.startswith("direct")), key=medians.__getitem__)
    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "model": model,
        "threads": args.threads,
        "calls_per_round": args.calls,
        "rounds": args.rounds,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "tok_s_median": {side: round(v, 1) for side, v in medians.items()},
        "best_direct": best_direct,
        "rates": rates,
    }
    print("\nside        median tok/s   vs best direct")
    for side in sides:
        # Per-round ratio against the best direct side of the same round, then the median.
        ratio = statistics.median(
            r / b for r, b in zip(rates[side], rates[best_direct], strict=True)
        )
        summary.setdefault("ratio_to_best_direct", {})[side] = round(ratio, 3)
        print(f"{side:11s} {medians[side]:12.1f} {ratio:16.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server_saturation.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
