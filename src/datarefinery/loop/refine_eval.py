"""Running refinement methods over an evaluation file and scoring them (``refinery eval``).

This is orchestration over runs, which is why it sits with the S3 loop above the runner; the
scores come from ``evaluate.pii`` and ``evaluate.detox``.

Each method runs as an ordinary resumable run (``runner.run``) in ``WORK/<method>/``, on an input
file holding only ``id`` and ``text`` (gold spans and references never reach a step); run the same
command again after an interruption and finished shards and answered calls are reused. Scores come
from the run's ``dataset.jsonl``; a record the method rejected counts as emitted unchanged.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datarefinery.config import LLMOverride, merge_llm
from datarefinery.evaluate.pii import read_gold, score_pii
from datarefinery.executors.progress import ProgressSink
from datarefinery.io.read import read_records
from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.runner import RunResult, load_manifest, run
from datarefinery.steps.refine.outcomes import OUTCOMES

# The model block of the refine and eval commands, under any --llm / --model options: a low
# temperature for faithful rewrites, a context for paragraphs, and twice as many requests in flight
# as the backend decodes together (llm.parallel, 4), so its slots stay busy while records wait on
# detection and checks.
REFINE_LLM: dict[str, Any] = {
    "model": "default",
    "n_ctx": 4096,
    "temperature": 0.2,
    "concurrency": 8,
}

# The step (and options) behind each method name.
PII_METHODS: dict[str, dict[str, Any]] = {
    "dirs": {"dirs": {"mode": "placeholder"}},
    "dirs_surrogate": {"dirs": {"mode": "surrogate"}},
    "pii_rewrite": {"pii_rewrite": {}},
    # GDR gated by detection (only records with a detected span reach the model): faster.
    "pii_rewrite_detectors": {"pii_rewrite": {"detection": "detectors"}},
}


def sample_ids(ids: list[str], limit: int | None, seed: int) -> set[str]:
    """A seeded sample of ``limit`` ids (all of them without a limit)."""
    if limit is None or limit >= len(ids):
        return set(ids)
    return set(random.Random(seed).sample(ids, limit))


def run_method(
    method_step: dict[str, Any],
    input_path: Path,
    out: Path,
    *,
    llm: dict[str, Any],
    seed: int,
    progress: ProgressSink | None = None,
    backend: Backend | None = None,
) -> tuple[RunResult, dict[str, str]]:
    """Run one method into ``out``; returns the result and the output text of every record.
    ``backend`` replaces the model (tests pass a scripted one).
    """
    spec = {
        "name": out.name,
        "seed": seed,
        "llm": llm,
        "input": str(input_path),
        "steps": [method_step],
        "shard_size": 16,
    }
    result = run(spec, out, progress=progress, backend=backend)
    outputs = {}
    if result.status == "complete":
        for record in read_records(result.dataset_path):
            outputs[record.id] = str(record.fields.get("text", ""))
    return result, outputs


def timing(result: RunResult, records: int) -> dict[str, Any]:
    manifest = load_manifest(result.run_dir)
    seconds = sum(s.seconds or 0.0 for s in manifest.sessions)
    return {
        "status": result.status,
        "seconds": round(seconds, 1),
        "records_per_s": round(records / seconds, 3) if seconds else None,
        "rejected": result.rejected_size,
        "run_dir": str(result.run_dir),
    }


def with_options(step: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    ((name, config),) = step.items()
    return {name: {**config, **options}}


def evaluate_pii(
    gold_path: str | Path,
    work: str | Path,
    *,
    methods: list[str],
    llm: LLMOverride | None = None,
    detector: dict[str, Any] | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: Callable[[str], ProgressSink | None] | None = None,
) -> dict[str, Any]:
    """Run ``methods`` over the gold file and score each; the figures per method plus the set-up.
    ``llm`` overrides fields of ``REFINE_LLM`` (a partial block or an ``LLMConfig``).
    """
    block = merge_llm(REFINE_LLM, llm)
    gold = read_gold(gold_path)
    chosen = sample_ids([g.id for g in gold], limit, seed)
    gold = [g for g in gold if g.id in chosen]
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    input_path = work / "input.jsonl"
    write_jsonl_atomic(input_path, (json.dumps({"id": g.id, "text": g.text}) for g in gold))
    results: dict[str, Any] = {}
    for method in methods:
        step = PII_METHODS[method]
        if detector:
            step = with_options(step, {"detector": detector})
        sink = progress(method) if progress else None
        result, outputs = run_method(
            step, input_path, work / method, llm=block, seed=seed, progress=sink
        )
        figures = score_pii(gold, outputs) if result.status == "complete" else {}
        results[method] = {"method": method, **figures, **timing(result, len(gold))}
        if result.status == "complete":
            results[method].update(_outcomes(result))
    return {
        "gold": str(gold_path),
        "records": len(gold),
        "sample": {"limit": limit, "seed": seed} if limit else None,
        "llm": block,
        "methods": results,
    }


def _outcomes(result: RunResult) -> dict[str, Any]:
    """``outcomes``: records per outcome (steps that name one: rewritten, rewritten_patched,
    replaced, unchanged); ``fallbacks``: why records were patched or replaced, by reason.
    """
    outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for step in result.steps:
        for outcome, count in step.outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    if not any(outcomes.values()):
        return {}
    reasons: dict[str, int] = {}
    for record in read_records(result.dataset_path):
        reason = str(record.provenance.conditioning.get("fallback") or "")
        if reason:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {"outcomes": outcomes, "fallbacks": dict(sorted(reasons.items()))}
