"""Embedded tokens/s: datarefinery's engine + batched llamacpp backend vs a bare llama-cpp-python
loop.

All sides load the same GGUF with the same threads and answer the same prompts, greedily (so their
replies can be compared token for token). Each (side, round) runs in its own process -- two
llama.cpp instances in one process keep two OpenMP teams that slow each other down -- and the order
of the sides rotates round by round, so machine noise hits all alike. Each ratio is the ratio of
the median rates over the rounds, with the spread (``bench/ratios.py``).

Workloads: ``rewrite`` is GDR's PII rewrite: the ``pii_rewrite`` template over texts of the
presidio_pii validation split with their gold spans as the replacements, JSON reply; ``free_text``
and ``json_schema`` are ``zero_shot`` prompts (movie reviews), without and with the reply schema.

Sides: ``bare`` is the loop a user would write, one ``create_chat_completion`` after another, with
flash attention and 48-token prompt batches so its arithmetic is the batched decoder's (see
``llamacpp_rows``) and greedy replies must match -- for weights llama.cpp neither repacks nor sends
through its tiled K-quant matmul (SmolLM2's Q4_1); with a K-quant model the bare loop keeps
llama.cpp's defaults (repacked weights; any micro-batch of 8 rows or more through the tiled matmul)
and the decoder does not (``llamacpp_load``, ``llamacpp_rows``), so compare replies with ``pN``'s
there; ``pN`` go through everything a run uses (response cache, budget, structured-output
validation) with N sequences per llama.cpp batch and drafts and prefix copies off; ``pNs`` the
same with prompt-lookup drafts and shared-prefix copies on (the defaults); a trailing ``r``
(``pNsr``) keeps llama.cpp's repacked weights and batches without the tiled scheme
(``batch_invariant: false``); a trailing ``u`` (``pNsu``) runs the side in a process with
llama.cpp's tiled K-quant matmul switched off (``GGML_CPU_TILED_MM=0``: every product through the
dot products, the default before the tiled scheme). Replies of every side are compared with the
bare loop's and with ``pN``'s. ``bare`` must be the first of ``--sides``.

    .venv/bin/python bench/embedded_throughput.py [--requests 16] [--rounds 5] [--model PATH]
        [--parallel 4] [--modes rewrite,free_text,json_schema] [--data ../shared/data]
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
from datarefinery.llm.llamacpp_load import TILED_ENV
from datarefinery.llm.models import resolve_model_path
from datarefinery.prompts.render import load_template
from ratios import MIN_ROUNDS, describe, ratio_of_medians

MAX_TOKENS = 128
DEFAULT_DATA = Path("../shared/data")  # relative to the working directory, as in dedup.py


class Review(BaseModel):
    text: str = Field(min_length=20, max_length=300)


class Rewritten(BaseModel):
    text: str


LABELS = ["positive", "negative"]
TASK = {"description": "Classify the sentiment of movie reviews."}
FIELDS = {"text": {"description": "the review", "max_chars": 300}}
Chat = list[dict[str, str]]
# Not one of the measured prompts: llama-cpp-python keeps the last prompt's KV entries, and a
# warm-up on the first measured prompt gave the bare loop that whole prompt for free.
WARM_UP = [[{"role": "user", "content": "Say hello."}]]


def prompts(mode: str, n: int, data: Path) -> tuple[list[Chat], type[BaseModel] | None]:
    """The workload's chats and reply model (``None``: free text)."""
    if mode == "rewrite":
        template = load_template("pii_rewrite")
        lines = (data / "presidio_pii" / "validation.jsonl").read_text().splitlines()[:n]
        chats = []
        for line in lines:
            row = json.loads(line)
            replacements = [
                {
                    "original": s["value"],
                    "entity_type": s["entity_type"],
                    "replacement": f"[{s['entity_type']}]",
                }
                for s in row["spans"]
            ]
            messages = template.render(text=row["text"], replacements=replacements)
            chats.append([{"role": m.role, "content": m.content} for m in messages])
        return chats, Rewritten
    template = load_template("zero_shot")
    chats = [
        [
            {"role": m.role, "content": m.content}
            for m in template.render(
                task=TASK, n=1, label=LABELS[i % 2], label_description="", fields=FIELDS
            )
        ]
        for i in range(n)
    ]
    return chats, (Review if mode == "json_schema" else None)


def bare_loop(
    llama: Llama, chats: list[Chat], reply: type[BaseModel] | None
) -> tuple[int, list[str]]:
    grammar = (
        LlamaGrammar.from_json_schema(json.dumps(reply.model_json_schema()), verbose=False)
        if reply
        else None
    )
    tokens, texts = 0, []
    for messages in chats:
        out: Any = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=0.0,
            max_tokens=MAX_TOKENS,
            seed=1,
            grammar=grammar,
        )
        tokens += out["usage"]["completion_tokens"]
        texts.append(out["choices"][0]["message"]["content"])
    return tokens, texts


def requests_for(chats: list[Chat], reply: type[BaseModel] | None) -> list[Request]:
    """The workload's chats as the engine's greedy requests."""
    return [
        Request(
            messages=tuple(Message(m["role"], m["content"]) for m in messages),  # type: ignore[arg-type]
            params=SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS),
            json_schema=reply.model_json_schema() if reply else None,
            seed=1,
        )
        for messages in chats
    ]


def through_engine(
    engine: Engine, chats: list[Chat], reply: type[BaseModel] | None
) -> tuple[int, list[str]]:
    requests = requests_for(chats, reply)

    async def go() -> tuple[int, list[str]]:
        if reply is not None:  # validated as a run validates, re-asked when invalid
            results = await asyncio.gather(
                *(engine.complete_structured(r, reply) for r in requests)
            )
            tokens = sum(resp.usage.completion_tokens for res in results for resp in res.responses)
            return tokens, [res.responses[-1].text for res in results]
        responses = await asyncio.gather(*(engine.complete(r) for r in requests))
        return sum(r.usage.completion_tokens for r in responses), [r.text for r in responses]

    return asyncio.run(go())


def measure(side: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One side, one round, in this process."""
    path = resolve_model_path(args.model)
    chats, reply = prompts(mode, args.requests, args.data)
    stats: dict[str, int] = {}
    if side == "bare":
        # Flash attention and 48-token batches: the batched decoder's arithmetic (llamacpp_rows).
        llama = Llama(
            model_path=str(path),
            n_ctx=2048,
            n_batch=48,
            n_ubatch=48,
            flash_attn=True,
            n_threads=args.threads,
            n_threads_batch=args.threads,
            verbose=False,
        )
        bare_loop(llama, WARM_UP, reply)  # as the engine's first call loads
        started = time.perf_counter()
        tokens, texts = bare_loop(llama, chats, reply)
    else:
        base = side.removesuffix("u")  # the tiled matmul is switched off by run_rounds
        fast_kernels = base.endswith("r")
        speculative = base.removesuffix("r").endswith("s")
        parallel = int(base.removeprefix("p").removesuffix("r").removesuffix("s"))
        backend = LlamaCppBackend(
            str(path),
            n_ctx=2048,
            n_threads=args.threads,
            parallel=parallel,
            draft_tokens=8 if speculative else 0,
            prefix_reuse=speculative,
            batch_invariant=not fast_kernels,
        )
        with tempfile.TemporaryDirectory() as tmp:
            through_engine(Engine(backend, cache=None), WARM_UP, reply)
            # A real cache: the measured calls include their cache lookups and writes.
            engine = Engine(
                backend, cache=ResponseCache(Path(tmp) / "c.sqlite"), concurrency=parallel
            )
            started = time.perf_counter()
            tokens, texts = through_engine(engine, chats, reply)
        assert backend._decoder is not None
        stats = dict(backend._decoder.stats)
    return {
        "tokens": tokens,
        "seconds": time.perf_counter() - started,
        "texts": texts,
        "stats": stats,
    }


def run_rounds(mode: str, sides: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rates: dict[str, list[float]] = {side: [] for side in sides}
    same: dict[str, list[int]] = {side: [0, 0] for side in sides}  # [identical, compared]
    # the batched side without drafts or prefix copies: with them on, greedy replies must match it
    plain = f"p{args.parallel}"
    same_plain: dict[str, list[int]] = {}
    stats: dict[str, dict[str, int]] = {}
    for round_ in range(args.rounds):
        shift = round_ % len(sides)
        texts: dict[str, list[str]] = {}
        for side in sides[shift:] + sides[:shift]:
            command = [
                sys.executable,
                __file__,
                "--one",
                side,
                mode,
                "--requests",
                str(args.requests),
                "--model",
                args.model,
                "--threads",
                str(args.threads),
                "--data",
                str(args.data),
            ]
            env = dict(os.environ)
            if side.endswith("u"):
                env[TILED_ENV] = "0"
            out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
            measured = json.loads(out.stdout.strip().splitlines()[-1])
            tokens, seconds = measured["tokens"], measured["seconds"]
            rates[side].append(tokens / seconds)
            texts[side] = measured["texts"]
            stats[side] = measured["stats"]
            print(
                f"{mode:11s} round {round_} {side:6s} {tokens:5.0f} tok {seconds:6.1f} s "
                f"{tokens / seconds:6.1f} tok/s {measured['stats'] or ''}",
                flush=True,
            )
        for side in sides:
            pairs = list(zip(texts[side], texts["bare"], strict=True))
            same[side][0] += sum(a == b for a, b in pairs)
            same[side][1] += len(pairs)
            if plain in texts and side != plain:
                pairs = list(zip(texts[side], texts[plain], strict=True))
                same_plain.setdefault(side, [0, 0])
                same_plain[side][0] += sum(a == b for a, b in pairs)
                same_plain[side][1] += len(pairs)
    return {
        "rates": rates,
        "identical_to_bare": same,
        f"identical_to_{plain}": same_plain,
        "decoder_stats_last_round": stats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=default_threads())
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--modes", default="rewrite,free_text,json_schema")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--sides",
        default="bare,p{n},p{n}s",
        help="comma-separated; {n} is --parallel; a trailing r (p{n}sr) keeps llama.cpp's "
        "repacked weights, no tiled scheme (batch_invariant false); a trailing u (p{n}su) runs "
        "with the tiled matmul off (GGML_CPU_TILED_MM=0)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--one", nargs=2, metavar=("SIDE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], args)))
        return

    sides = [side.format(n=args.parallel) for side in args.sides.split(",")]
    load_before = os.getloadavg()
    results = {mode: run_rounds(mode, sides, args) for mode in args.modes.split(",")}
    summary: dict[str, Any] = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "model": resolve_model_path(args.model).name,
        "threads": args.threads,
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "sides": sides,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print("\nmode         " + "".join(f"{s + ' tok/s':>14s}" for s in sides))
    for mode, result in results.items():
        rates = result["rates"]
        medians = {side: statistics.median(rates[side]) for side in sides}
        ratios = {side: ratio_of_medians(rates[side], rates["bare"]) for side in sides[1:]}
        summary[mode] = {**result, "median_tok_s": medians, "ratios_to_bare": ratios}
        print(f"{mode:11s} " + "".join(f"{medians[s]:14.1f}" for s in sides))
        for side, figures in ratios.items():
            identical, compared = result["identical_to_bare"][side]
            to_plain = result[f"identical_to_p{args.parallel}"].get(side)
            plain_note = f", to p{args.parallel}: {to_plain[0]}/{to_plain[1]}" if to_plain else ""
            print(
                f"  {mode} {side}/bare: {describe(figures, (side, 'bare'), 'tok/s')}; "
                f"replies identical to bare: {identical}/{compared}{plain_note}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedded_throughput.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
