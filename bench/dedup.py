"""Near-duplicate dedup throughput and recall: the ``dedup`` step (rensa MinHash LSH) against
datasketch, side by side in one process on the same documents.

Documents: the IMDb reviews in DATA (test + validation) plus planted near-duplicates of a seeded
sample of them (a few words deleted or replaced). Both sides shingle the same way (word 3-grams),
use 128 permutations, the same LSH bands and the same threshold, and do streaming dedup (query,
then insert what is kept) -- what the step does. Recall = planted copies flagged; false positives =
originals flagged. Throughput is documents per second including shingling, median of the repeats.

    .venv/bin/python bench/dedup.py --data /work/shared/data/imdb
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import time
from datetime import date
from pathlib import Path

from datarefinery.config import LlamaCppConfig
from datarefinery.records import Record
from datarefinery.steps.base import StepContext
from datarefinery.steps.curate.dedup import Dedup, DedupConfig, lsh_bands, shingles


def perturb(text: str, rng: random.Random, rate: float) -> str:
    words = text.split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < rate / 2:
            continue  # deleted
        out.append("changed" if roll < rate else word)
    return " ".join(out)


def load(data: Path, planted: int, rate: float, seed: int) -> tuple[list[Record], dict[str, str]]:
    texts = []
    for name in ("test.jsonl", "validation.jsonl"):
        with (data / name).open() as handle:
            texts += [json.loads(line)["text"] for line in handle]
    rng = random.Random(seed)
    records = [Record(f"o{i}", {"text": t}) for i, t in enumerate(texts)]
    pairs, copies = {}, []
    for i, j in enumerate(rng.sample(range(len(texts)), planted)):
        copies.append(Record(f"dup{i}", {"text": perturb(texts[j], rng, rate)}))
        pairs[f"dup{i}"] = f"o{j}"
    mixed = records + copies
    rng.shuffle(mixed)
    return mixed, pairs


def run_step(records: list[Record], threshold: float) -> tuple[set[str], float]:
    step = Dedup(DedupConfig(method="minhash", threshold=threshold))
    started = time.perf_counter()
    step.setup(StepContext(name="dedup", index=0, seed=0, task=None, llm=LlamaCppConfig()))
    outputs = step.postprocess(asyncio.run(step.process(records)))
    seconds = time.perf_counter() - started
    return {o.record.id for o in outputs if not isinstance(o, Record)}, seconds


def run_datasketch(records: list[Record], threshold: float) -> tuple[set[str], float]:
    from datasketch import MinHash, MinHashLSH

    bands = lsh_bands(threshold, 128)
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=128, params=(bands, 128 // bands))
    signatures: dict[str, MinHash] = {}
    flagged = set()
    for record in records:
        signature = MinHash(num_perm=128, seed=42)
        signature.update_batch([s.encode() for s in shingles(record.fields["text"], 3)])
        if any(signature.jaccard(signatures[k]) >= threshold for k in lsh.query(signature)):
            flagged.add(record.id)
            continue
        lsh.insert(record.id, signature)
        signatures[record.id] = signature
    return flagged, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/imdb"))
    parser.add_argument("--planted", type=int, default=500)
    parser.add_argument("--rate", type=float, default=0.04, help="share of words changed")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/dedup.json"))
    args = parser.parse_args()
    records, pairs = load(args.data, args.planted, args.rate, seed=0)
    results = {}
    for name, fn in (("refinery dedup (rensa)", run_step), ("datasketch", run_datasketch)):
        times, flagged = [], set()
        for _ in range(args.repeats):
            flagged, seconds = fn(records, args.threshold)
            times.append(seconds)
        # a copy shuffled before its original makes the original the "duplicate": a pair is
        # found when either of its two records is flagged
        found = sum(1 for copy, original in pairs.items() if {copy, original} & flagged)
        involved = set(pairs) | set(pairs.values())
        results[name] = {
            "docs_per_s": round(len(records) / statistics.median(times), 1),
            "seconds": [round(t, 3) for t in times],
            "pairs_found": found,
            "recall": round(found / len(pairs), 4),
            "flagged_outside_planted_pairs": len(flagged - involved),
        }
    ours, theirs = results["refinery dedup (rensa)"], results["datasketch"]
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}, shared 2-core box",
        "docs": len(records),
        "planted": len(pairs),
        "perturbation_rate": args.rate,
        "threshold": args.threshold,
        "bands": lsh_bands(args.threshold, 128),
        "results": results,
        "speedup": round(ours["docs_per_s"] / theirs["docs_per_s"], 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
