"""Where the batched decoder's time goes: every ``llama_decode`` call of one pass over a workload,
timed and grouped by what it held (rows, sequences, prompt or generated tokens).

The workloads and requests are ``embedded_throughput.py``'s (greedy, 128 max tokens, 4 sequences,
drafts and prefix copies on: the defaults). A profile of one pass on a shared machine: read its
shares, not its seconds, as figures. ``--plain`` runs the decoder without the tiled scheme (run it
with ``GGML_CPU_TILED_MM=0`` for the scheme before it, every product through the dot products).

    PYTHONPATH=src .venv/bin/python bench/decoder_profile.py --model PATH [--mode free_text]
        [--threads 2] [--requests 8] [--plain]
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path
from typing import Any

import llama_cpp

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.models import resolve_model_path
from embedded_throughput import DEFAULT_DATA, prompts, requests_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument(
        "--mode", default="free_text", choices=["rewrite", "free_text", "json_schema"]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()
    chats, reply = prompts(args.mode, args.requests, args.data)
    requests = requests_for(chats, reply)
    decoder = BatchedDecoder(
        str(resolve_model_path(args.model)),
        n_ctx=2048,
        parallel=4,
        n_threads=args.threads,
        draft_max=8,
        prefix_reuse=True,
    )
    if args.plain:
        decoder.tiled = False
    groups: dict[tuple[str, int, int], list[float]] = collections.defaultdict(list)
    prompt_length: dict[int, int] = {}
    real = llama_cpp.llama_decode

    def timed(ctx: Any, batch: Any) -> int:
        rows = [(batch.seq_id[i][0], batch.pos[i]) for i in range(batch.n_tokens)]
        # A prompt row lies before its prompt's last token; the tiled scheme feeds that token like
        # a generated one, so a call holding it and generated tokens counts as "generated".
        last = [pos < prompt_length.get(seq, 0) - 1 for seq, pos in rows]
        kind = "prompt" if any(last) else "generated"
        started = time.perf_counter()
        status = real(ctx, batch)
        seconds = time.perf_counter() - started
        size = len(rows) if len(rows) < 8 else 8 * 2 ** ((len(rows) // 8).bit_length() - 1)
        groups[(kind, size, len({seq for seq, _ in rows}))].append(seconds)
        return int(status)

    warm = Request(
        messages=(Message("user", "Say hello."),), params=SamplingParams(max_tokens=8), seed=1
    )
    decoder.submit(warm).future.result()
    llama_cpp.llama_decode = timed
    # Prompt lengths by slot: of the request the slot holds at the time.
    start = decoder._start

    def started(job: Any, seq_id: int, active: Any) -> Any:
        slot = start(job, seq_id, active)
        if slot is not None:
            prompt_length[seq_id] = len(slot.prompt)
        return slot

    decoder._start = started  # type: ignore[method-assign]
    started = time.perf_counter()
    replies = [f.result() for f in [decoder.submit(r).future for r in requests]]
    wall = time.perf_counter() - started
    llama_cpp.llama_decode = real
    result: dict[str, Any] = {
        "model": resolve_model_path(args.model).name,
        "mode": args.mode,
        "tiled_scheme": decoder.tiled,
        "threads": args.threads,
        "wall_s": round(wall, 2),
        "completion_tokens": sum(r.usage.completion_tokens for r in replies),
        "prompt_tokens": sum(r.usage.prompt_tokens for r in replies),
        "decoder_stats": dict(decoder.stats),
        "calls": [],
    }
    decoder.close()
    print(f"{args.mode}: {result['wall_s']} s, tiled scheme {result['tiled_scheme']}")
    print(f"{'kind':10s}{'rows':>6s}{'seqs':>6s}{'calls':>7s}{'s':>8s}{'share':>7s}{'ms/call':>9s}")
    for (kind, size, seqs), times in sorted(groups.items()):
        total = sum(times)
        label = str(size) if size < 8 else f"{size}+"
        print(
            f"{kind:10s}{label:>6s}{seqs:6d}{len(times):7d}{total:8.2f}"
            f"{total / wall:7.0%}{1000 * total / len(times):9.0f}"
        )
        result["calls"].append(
            {"kind": kind, "rows": label, "sequences": seqs, "calls": len(times), "s": total}
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
