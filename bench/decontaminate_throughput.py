"""Decontamination throughput: the ``decontaminate`` step against a plain Python set of hashed
word tuples, side by side in one process on the same synthetic records and benchmark.

Text is synthetic and deterministic: words drawn with Zipf-like weights from a made-up vocabulary
(the benchmark and the records share it, so most windows consist of benchmark words and must be
looked up: a hard case for the step's prefilter). The benchmark has BENCHMARK records, each a
question of 40-160 words and an answer of 5-12 words; the records have about 200 words each, and a
seeded 1 % carry a planted overlap (13 words of a question with changed case and punctuation, or a
whole answer). Both sides normalise with ``plain_words`` and find the same records (checked);
recall of the planted overlaps must be 1. The rate is records per second of checking, the index
already built (its build time is reported beside it); the sides alternate within each round and
the ratio is of their median rates with the spread (``bench/ratios.py``).

    PYTHONPATH=src .venv/bin/python bench/decontaminate_throughput.py [--records 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from datarefinery.config import LlamaCppConfig
from datarefinery.records import Record
from datarefinery.steps.base import StepContext
from datarefinery.steps.curate.decontaminate import Decontaminate, DecontaminateConfig
from datarefinery.steps.curate.ngrams import plain_words
from ratios import MIN_ROUNDS, describe, ratio_of_medians

N = 13
MIN_WORDS = 3


def vocabulary(size: int, rng: random.Random) -> list[str]:
    syllables = [
        "ka",
        "lo",
        "mi",
        "ne",
        "su",
        "ta",
        "ri",
        "po",
        "da",
        "ve",
        "go",
        "shi",
        "ur",
        "en",
    ]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


class Words:
    """Zipf-like draws (weight 1 / rank) from a fixed vocabulary."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.rng = rng
        self.words = vocabulary(size, rng)
        self.weights = [1 / rank for rank in range(1, size + 1)]

    def draw(self, count: int) -> list[str]:
        return self.rng.choices(self.words, self.weights, k=count)


def make_data(
    records: int, benchmark: int, seed: int
) -> tuple[list[dict[str, str]], list[Record], set[str]]:
    rng = random.Random(seed)
    words = Words(5000, rng)
    bench = [
        {
            "id": f"b{i}",
            "question": " ".join(words.draw(rng.randint(40, 160))) + "?",
            "answer": " ".join(words.draw(rng.randint(5, 12))) + ".",
        }
        for i in range(benchmark)
    ]
    out: list[Record] = []
    planted: set[str] = set()
    for i in range(records):
        text = words.draw(200)
        if rng.random() < 0.01:
            item = rng.choice(bench)
            if rng.random() < 0.5:
                question = item["question"].rstrip("?").split()
                start = rng.randrange(len(question) - N + 1)
                piece = question[start : start + N]
                piece = [piece[0].upper(), *piece[1:5], piece[5] + ",", *piece[6:]]
            else:
                piece = item["answer"].title().split()
            at = rng.randrange(len(text))
            text[at:at] = piece
            planted.add(f"r{i}")
        out.append(Record(f"r{i}", {"text": " ".join(text) + "."}))
    return bench, out, planted


def run_step(bench_path: Path, records: list[Record]) -> tuple[set[str], float, float]:
    step = Decontaminate(
        DecontaminateConfig(benchmarks=[str(bench_path)], fields=["question", "answer"])
    )
    started = time.perf_counter()
    step.setup(StepContext(name="decontaminate", index=0, seed=0, task=None, llm=LlamaCppConfig()))
    built = time.perf_counter()
    outputs = asyncio.run(step.process(records))
    done = time.perf_counter()
    return (
        {o.record.id for o in outputs if not isinstance(o, Record)},
        built - started,
        done - built,
    )


def run_plain(bench_path: Path, records: list[Record]) -> tuple[set[str], float, float]:
    started = time.perf_counter()
    grams: set[int] = set()
    short: dict[int, set[int]] = {}
    with bench_path.open() as handle:
        for line in handle:
            row = json.loads(line)
            for field in ("question", "answer"):
                item = plain_words(row[field])
                if len(item) >= N:
                    grams.update(hash(tuple(item[i : i + N])) for i in range(len(item) - N + 1))
                elif len(item) >= MIN_WORDS:
                    short.setdefault(len(item), set()).add(hash(tuple(item)))
    built = time.perf_counter()
    found = set()
    for record in records:
        words = plain_words(record.fields["text"])
        lengths = [(N, grams), *short.items()]
        if any(
            hash(tuple(words[i : i + length])) in table
            for length, table in lengths
            for i in range(len(words) - length + 1)
        ):
            found.add(record.id)
    return found, built - started, time.perf_counter() - built


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--benchmark", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    parser.add_argument("--out", type=Path, default=Path("bench/results/decontaminate.json"))
    args = parser.parse_args()
    bench, records, planted = make_data(args.records, args.benchmark, seed=0)
    words = statistics.mean(len(r.fields["text"].split()) for r in records)
    load_before = os.getloadavg()
    sides = {"refinery decontaminate": run_step, "set of hashed tuples": run_plain}
    names = list(sides)
    times: dict[str, list[float]] = {name: [] for name in names}
    builds: dict[str, list[float]] = {name: [] for name in names}
    flagged: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench_path = Path(tmp) / "benchmark.jsonl"
        bench_path.write_text("".join(json.dumps(row) + "\n" for row in bench))
        for round_ in range(args.rounds):
            for name in names if round_ % 2 == 0 else names[::-1]:
                found, build, seconds = sides[name](bench_path, records)
                assert flagged.setdefault(name, found) == found, f"{name} is not deterministic"
                times[name].append(seconds)
                builds[name].append(build)
                print(f"round {round_} {name:24s} build {build:5.2f} s, check {seconds:6.2f} s")
    assert flagged[names[0]] == flagged[names[1]], "the two sides disagree"
    assert planted <= flagged[names[0]], "a planted overlap was missed"
    rates = {name: [len(records) / t for t in times[name]] for name in names}
    speedup = ratio_of_medians(rates[names[0]], rates[names[1]])
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.python_version()}, {os.cpu_count()} cores",
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "records": len(records),
        "mean_words": round(words, 1),
        "benchmark_records": len(bench),
        "planted": len(planted),
        "rejected": len(flagged[names[0]]),
        "rejected_outside_planted": len(flagged[names[0]] - planted),
        "rounds": args.rounds,
        "results": {
            name: {
                "records_per_minute": round(60 * statistics.median(rates[name])),
                "records_per_s_range": [round(min(rates[name])), round(max(rates[name]))],
                "build_seconds_median": round(statistics.median(builds[name]), 2),
                "check_seconds": [round(t, 3) for t in times[name]],
            }
            for name in names
        },
        "speedup": speedup,
    }
    print(f"step / plain set: {describe(speedup, ('step', 'plain'), 'records/s')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
