"""Embedded tokens/s: datarefinery's engine + batched llamacpp backend vs a bare llama-cpp-python
loop.

All sides load the same GGUF with the same threads and answer the same prompts with the same
sampling settings and seeds. Each (side, round) runs in its own process -- two llama.cpp instances
in one process keep two OpenMP teams that slow each other down -- and the order of the sides
rotates round by round, so machine noise hits all alike. Each ratio is the ratio of the median
rates over the rounds, with the spread (``bench/ratios.py``). The ``p4`` / ``p8`` sides go through
everything a run uses (response cache lookups and writes, budget, structured-output validation)
with the ``BatchedDecoder`` decoding 4 / 8 sequences per llama.cpp batch (``llm.parallel``) and
engine concurrency equal to it; the ``bare`` side is the loop a user would write: one
``create_chat_completion`` after another.

    .venv/bin/python bench/embedded_throughput.py [--requests 16] [--rounds 5] [--model PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from llama_cpp import Llama
from llama_cpp.llama_grammar import LlamaGrammar
from pydantic import BaseModel, Field

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.cache import ResponseCache
from datarefinery.llm.engine import Engine
from datarefinery.llm.llamacpp import LlamaCppBackend, default_threads
from datarefinery.llm.models import resolve_model_path
from ratios import MIN_ROUNDS, describe, ratio_of_medians


class Review(BaseModel):
    text: str = Field(min_length=20, max_length=300)


LABELS = ["positive", "negative"]
SYSTEM = (
    "You write realistic, varied examples for training a classifier. You answer with JSON only."
)


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [
            {"role": "system", "content": SYSTEM},
            {
                "role": "user",
                "content": f"Write one {LABELS[i % 2]} movie review of two or three sentences. "
                'Answer with one JSON object with the key "text".',
            },
        ]
        for i in range(n)
    ]


def bare_loop(
    llama: Llama, batch: list[list[dict[str, str]]], seeds: list[int], structured: bool
) -> tuple[int, float]:
    grammar = (
        LlamaGrammar.from_json_schema(json.dumps(Review.model_json_schema()), verbose=False)
        if structured
        else None
    )
    tokens = 0
    started = time.perf_counter()
    for messages, seed in zip(batch, seeds, strict=True):
        out: Any = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=0.8,
            top_p=0.95,
            max_tokens=128,
            seed=seed,
            grammar=grammar,
        )
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - started


def through_engine(
    engine: Engine, batch: list[list[dict[str, str]]], seeds: list[int], structured: bool
) -> tuple[int, float]:
    requests = [
        Request(
            messages=tuple(Message(m["role"], m["content"]) for m in messages),  # type: ignore[arg-type]
            params=SamplingParams(temperature=0.8, top_p=0.95, max_tokens=128),
            json_schema=Review.model_json_schema() if structured else None,
            seed=seed,
        )
        for messages, seed in zip(batch, seeds, strict=True)
    ]

    async def go() -> int:
        if structured:
            results = await asyncio.gather(
                *(engine.complete_structured(r, Review) for r in requests)
            )
            return sum(resp.usage.completion_tokens for res in results for resp in res.responses)
        responses = await asyncio.gather(*(engine.complete(r) for r in requests))
        return sum(r.usage.completion_tokens for r in responses)

    started = time.perf_counter()
    tokens = asyncio.run(go())
    return tokens, time.perf_counter() - started


def measure(
    side: str, mode: str, model: str, threads: int, n: int, round_: int
) -> dict[str, float]:
    """One side, one round, in this process."""
    path = resolve_model_path(model)
    structured = mode == "json_schema"
    batch = prompts(n)
    seeds = [1000 * round_ + i + (0 if structured else 500) for i in range(n)]
    if side == "bare":
        llama = Llama(
            model_path=str(path),
            n_ctx=2048,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        bare_loop(llama, batch[:1], [7], structured)  # warm-up, as the engine's first call loads
        tokens, seconds = bare_loop(llama, batch, seeds, structured)
    else:
        parallel = int(side.removeprefix("p"))
        backend = LlamaCppBackend(str(path), n_ctx=2048, n_threads=threads, parallel=parallel)
        with tempfile.TemporaryDirectory() as tmp:
            warm = Engine(backend, cache=None)
            through_engine(warm, batch[:1], [7], structured)
            # A real cache: the measured calls include their cache lookups and writes.
            engine = Engine(
                backend, cache=ResponseCache(Path(tmp) / "c.sqlite"), concurrency=parallel
            )
            tokens, seconds = through_engine(engine, batch, seeds, structured)
    return {"tokens": tokens, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--one", nargs=3, metavar=("SIDE", "MODE", "ROUND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        side, mode, round_ = args.one
        result = measure(side, mode, args.model, args.threads, args.requests, int(round_))
        print(json.dumps(result))
        return

    results: dict[str, dict[str, list[float]]] = {}
    sides = ["bare", "p4", "p8"]
    load_before = os.getloadavg()
    for mode in ("json_schema", "free_text"):
        rates: dict[str, list[float]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            shift = round_ % len(sides)
            for side in sides[shift:] + sides[:shift]:
                command = [
                    sys.executable,
                    __file__,
                    "--one",
                    side,
                    mode,
                    str(round_),
                    "--requests",
                    str(args.requests),
                    "--model",
                    args.model,
                    "--threads",
                    str(args.threads),
                ]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                measured = json.loads(out.stdout.strip().splitlines()[-1])
                tokens, seconds = measured["tokens"], measured["seconds"]
                rates[side].append(tokens / seconds)
                print(
                    f"{mode:11s} round {round_} {side:6s} {tokens:5.0f} tok {seconds:6.1f} s "
                    f"{tokens / seconds:6.1f} tok/s",
                    flush=True,
                )
        results[mode] = rates

    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "model": resolve_model_path(args.model).name,
        "threads": args.threads,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "max_tokens": 128,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print("\nmode         bare tok/s   p4 tok/s   p8 tok/s   p4/bare   p8/bare")
    for mode, rates in results.items():
        bare = statistics.median(rates["bare"])
        p4, p8 = statistics.median(rates["p4"]), statistics.median(rates["p8"])
        ratios = {side: ratio_of_medians(rates[side], rates["bare"]) for side in ("p4", "p8")}
        summary[mode] = {
            "bare_tok_s": round(bare, 1),
            "p4_tok_s": round(p4, 1),
            "p8_tok_s": round(p8, 1),
            "p4_ratio": ratios["p4"],
            "p8_ratio": ratios["p8"],
            "rounds": rates,
        }
        print(
            f"{mode:11s} {bare:11.1f} {p4:10.1f} {p8:10.1f} "
            f"{ratios['p4']['ratio']:9.2f} {ratios['p8']['ratio']:9.2f}"
        )
        for side, figures in ratios.items():
            print(f"  {mode} {side}/bare: {describe(figures, (side, 'bare'), 'tok/s')}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedded_throughput.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
