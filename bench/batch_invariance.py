"""Does a reply of the batched decoder depend on what else is in its batch?

Greedy free-text replies (96 tokens) to four requests: each decoded alone (1 slot), then all four
together (4 slots), then three of them in another order beside a newcomer (4 slots, and 3 slots,
where the fourth is admitted when a slot frees, its prompt evaluated beside the others' tokens),
with llama.cpp's repacked weights and the decoder's plain batching (``--fast-kernels``,
``batch_invariant: false``) or, the default, without repacking and, for a K-quant model, with the
tiled scheme (``llamacpp_rows``: prompt rows only through the tiled K-quant matmul, generated rows
only through the dot products). Prints how many
replies equal the replies decoded alone, and where the first differing ones part. A correctness
check, not a speed figure (the seconds printed are one pass on a shared machine).

    PYTHONPATH=src .venv/bin/python bench/batch_invariance.py --model PATH [--fast-kernels]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time

from datarefinery.llm.base import Message, Request, SamplingParams
from datarefinery.llm.llamacpp_decoder import BatchedDecoder
from datarefinery.llm.models import resolve_model_path


def request(i: int) -> Request:
    label = ("positive", "negative")[i % 2]
    text = f"Write a {label} movie review of about 80 words about film number {i}."
    return Request(
        messages=(Message("user", text),),
        params=SamplingParams(temperature=0.0, max_tokens=96),
        seed=i,
    )


def decode(args: argparse.Namespace, requests: list[Request], parallel: int) -> list[str]:
    decoder = BatchedDecoder(
        str(resolve_model_path(args.model)),
        n_ctx=512,
        parallel=parallel,
        n_threads=args.threads,
        batch_invariant=not args.fast_kernels,
    )
    try:
        return [f.result(timeout=1800).text for f in [decoder.submit(r).future for r in requests]]
    finally:
        decoder.close()


def parting(a: str, b: str) -> str:
    n = min(len(a), len(b))
    k = next((i for i in range(n) if a[i] != b[i]), n)
    return f"{a[max(0, k - 30) : k + 30]!r} | {b[max(0, k - 30) : k + 30]!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fast-kernels", action="store_true")
    args = parser.parse_args()
    requests = [request(i) for i in range(4)]
    started = time.perf_counter()
    alone = [decode(args, [r], 1)[0] for r in requests]
    cases = {
        "together (4 slots)": (requests, 4, alone),
        "3 beside a newcomer (4 slots)": (
            [request(9), requests[3], requests[0], requests[2]],
            4,
            [None, alone[3], alone[0], alone[2]],
        ),
        "3 beside a newcomer (3 slots)": (
            [request(9), requests[3], requests[0], requests[2]],
            3,
            [None, alone[3], alone[0], alone[2]],
        ),
    }
    model = resolve_model_path(args.model).name
    result: dict[str, object] = {"model": model, "fast_kernels": args.fast_kernels}
    for name, (batch, parallel, expected) in cases.items():
        got = decode(args, batch, parallel)
        pairs = [(e, g) for e, g in zip(expected, got, strict=True) if e is not None]
        same = sum(e == g for e, g in pairs)
        result[name] = f"{same}/{len(pairs)}"
        print(f"{name}: {same}/{len(pairs)} replies equal to the same request decoded alone")
        for e, g in pairs:
            if e != g:
                print(f"  parts at: {parting(e, g)}")
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
