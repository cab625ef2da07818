"""Verified reasoning on GSM8K: the ``solve`` step (rejection sampling) on the first ``--k`` test
problems, with the options of ``examples/solve_gsm8k.yaml`` (``--n`` samples each, ``keep: all``).

Prints and saves (``--results``):

- pass rate: the fraction of problems with at least one sample whose final answer matches the
  reference (pass@n);
- per-sample accuracy: correct samples / samples (the mean of the problems' pass rates);
- the rejections by reason.

The run directory (``--runs``) is resumable, and answered calls come from its cache. Note
gsm8k-test-454 (line 105 of the sample, so in a run with --k 105 or more): its reference answer
is wrong (150; the right answer is 240, see the data's SOURCE.md), so a correct solution is
rejected there.

    .venv/bin/python bench/post_training/solve_gsm8k.py --k 20 \\
        --model /work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

import datarefinery

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "solve_gsm8k.yaml"
# The shared data sits beside the main checkout (../shared) or beside a worktree's parent.
_CANDIDATES = [base / "shared" / "data" / "gsm8k" / "test.jsonl" for base in ROOT.parents[:2]]
DEFAULT_DATA = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])


def build_spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    spec["name"] = f"solve-gsm8k-{args.k}"
    spec["input"] = {"path": str(Path(args.data).resolve()), "limit": args.k}
    spec["llm"] = {
        **spec.get("llm", {}),
        "model": args.model,
        "max_tokens": args.max_tokens,
        "n_ctx": 2048,
        **({"n_threads": args.threads} if args.threads else {}),
    }
    ((_, options),) = spec["steps"][0].items()
    options.update({"n": args.n, "keep": "all", "mode": args.mode})
    return spec


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def figures(out: Path, k: int) -> dict[str, Any]:
    kept = read_jsonl(out / "dataset.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    # A sample's record has its problem as parent; the unsolved / no_reference rejections are the
    # problems themselves.
    samples = kept + [r["record"] for r in rejected if r["record"]["provenance"]["parent_ids"]]
    solved = {r["provenance"]["parent_ids"][0] for r in kept}
    return {
        "problems": k,
        "samples": len(samples),
        "correct_samples": len(kept),
        "solved": len(solved),
        "pass_rate": round(len(solved) / k, 4) if k else 0.0,
        "per_sample_accuracy": round(len(kept) / len(samples), 4) if samples else 0.0,
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in rejected).items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=20, help="first K test problems")
    parser.add_argument("--n", type=int, default=4, help="samples per problem")
    parser.add_argument("--mode", choices=["cot", "program"], default="cot")
    parser.add_argument("--model", default="default", help="'default' or a GGUF path")
    parser.add_argument("--max-tokens", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="gsm8k test.jsonl")
    parser.add_argument("--runs", default="runs/bench_solve")
    parser.add_argument("--results", default="bench/results/solve_gsm8k.json")
    args = parser.parse_args()

    spec = build_spec(args)
    model_name = Path(args.model).stem if args.model != "default" else "smollm2-135m"
    out = Path(args.runs) / f"{model_name}-{args.mode}-k{args.k}-n{args.n}"
    result = datarefinery.run(spec, out, diversity=False)
    if result.status != "complete":
        raise SystemExit(f"run {result.status}: {result.message}")
    found = figures(out, args.k)
    found.update(
        model=model_name,
        mode=args.mode,
        n=args.n,
        max_tokens=args.max_tokens,
        machine=f"{platform.machine()}, {platform.processor() or platform.system()}",
        date=datetime.now(UTC).date().isoformat(),
        run_dir=str(out),
    )
    results = Path(args.results)
    stored: dict[str, Any] = json.loads(results.read_text()) if results.exists() else {}
    stored[f"{model_name}/{args.mode}/k{args.k}/n{args.n}"] = found
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(stored, indent=2) + "\n", encoding="utf-8")
    print(
        f"{model_name} {args.mode}: pass rate {found['pass_rate']:.3f} "
        f"({found['solved']}/{args.k} problems with a correct sample) · per-sample accuracy "
        f"{found['per_sample_accuracy']:.3f} ({found['correct_samples']}/{found['samples']}) · "
        f"rejected {found['rejected_by_reason']}"
    )


if __name__ == "__main__":
    main()
