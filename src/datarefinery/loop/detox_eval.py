"""``refinery eval detox``: run ``detox_rewrite`` over a ParaDetox-style file and score it.

Toxicity is reported by the gate's own scorer (``alt-profanity-check`` at the step's threshold,
the score ``detox_rewrite`` had to get below, so by construction it favours the step) and by
independent scorers (``evaluate/toxicity_scorers.py``) fitted on a reserved slice of the same file.
The reserved rows are never rewritten or measured: by default 300 rows, chosen by an id hash with
a fixed seed, so every run of the command measures the same remaining rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from datarefinery.config import LLMOverride, merge_llm
from datarefinery.embeddings import Embedder
from datarefinery.errors import UsageError
from datarefinery.evaluate.detox import EvalScorer, GateScorer, score_similarity, score_toxicity
from datarefinery.evaluate.toxicity_scorers import (
    RESERVE_SEED,
    RESERVE_SIZE,
    fit_independent_scorers,
    reserve_split,
)
from datarefinery.executors.progress import ProgressSink
from datarefinery.io.read import read_records
from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.loop.refine_eval import (
    REFINE_LLM,
    run_method,
    sample_ids,
    timing,
    with_options,
)
from datarefinery.runner import RunResult

Pair = tuple[str, str, list[str]]


def _reasons(rejected: Path) -> dict[str, int]:
    """Rejections per reason over every session of the run (the manifest counts the last one)."""
    counts: dict[str, int] = {}
    if rejected.exists():
        for line in rejected.read_text(encoding="utf-8").splitlines():
            reason = str(json.loads(line).get("reason", "?"))
            counts[reason] = counts.get(reason, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _stopped_by_check(result: RunResult) -> dict[str, int]:
    """Rewrites each check of the step stopped (re-asked or rejected), summed from the
    ``stopped_by_<check>`` scores of emitted and rejected records.
    """
    path = result.dataset_path
    scores = [r.scores for r in read_records(path)] if path.exists() else []
    if result.rejected_path.exists():
        lines = result.rejected_path.read_text(encoding="utf-8").splitlines()
        scores += [json.loads(line)["record"].get("scores", {}) for line in lines]
    counts: dict[str, int] = {}
    for row in scores:
        for key, value in row.items():
            if key.startswith("stopped_by_"):
                check = key.removeprefix("stopped_by_")
                counts[check] = counts.get(check, 0) + int(value)
    return counts


def read_pairs(path: str | Path) -> list[Pair]:
    return [
        (r.id, str(r.fields["toxic"]), [str(x) for x in r.fields.get("neutral_references", [])])
        for r in read_records(path, required=["toxic"])
    ]


def evaluate_detox(
    pairs_path: str | Path,
    work: str | Path,
    *,
    llm: LLMOverride | None = None,
    options: dict[str, Any] | None = None,
    limit: int | None = None,
    seed: int = 0,
    reserve: int = RESERVE_SIZE,
    reserve_seed: int = RESERVE_SEED,
    independent: Sequence[str] = ("tfidf_lr", "minilm_lr"),
    progress: Callable[[str], ProgressSink | None] | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Detoxify the ``toxic`` texts of the measured rows and compare with their
    ``neutral_references``; the human references are scored the same way, as the yardstick.

    ``reserve`` rows (hash of ``reserve_seed`` and id) train and calibrate the ``independent``
    scorers and are left out of everything else; ``reserve=0`` measures every row with the gate
    scorer alone. ``limit`` then samples the measured rows with ``seed``. ``llm`` overrides fields
    of the refine commands' model block (``refine_eval.REFINE_LLM``).
    """
    # Why long: reserve, fit the scorers, run the step, score every text set: one linear script
    # whose result is the JSON the bench stores
    block = merge_llm(REFINE_LLM, llm)
    rows = read_pairs(pairs_path)
    if reserve and reserve >= len(rows):
        raise UsageError(
            f"{pairs_path} has {len(rows)} rows: reserving {reserve} for the independent "
            "scorers leaves none to measure; lower --reserve"
        )
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    reserved_ids, measured_ids = reserve_split([i for i, _, _ in rows], reserve, reserve_seed)
    (work / "reserved_ids.txt").write_text("".join(f"{i}\n" for i in reserved_ids))
    by_id = {row[0]: row for row in rows}
    gate_threshold = float((options or {}).get("threshold", 0.5))
    is_gate = (options or {}).get("scorer", "profanity") in ("profanity", "both")
    scorers: list[EvalScorer] = [GateScorer(gate_threshold, is_gate=is_gate)]
    if reserve and independent:
        scorers.extend(
            fit_independent_scorers(
                [by_id[i] for i in reserved_ids], names=independent, seed=reserve_seed
            )
        )
    chosen = sample_ids(measured_ids, limit, seed)
    rows = [row for row in rows if row[0] in chosen]
    input_path = work / "input.jsonl"
    write_jsonl_atomic(input_path, (json.dumps({"id": i, "text": t}) for i, t, _ in rows))
    step: dict[str, Any] = {"detox_rewrite": {}}
    if options:
        step = with_options(step, options)
    sink = progress("detox_rewrite") if progress else None
    result, outputs = run_method(
        step,
        input_path,
        work / "detox_rewrite",
        llm=block,
        seed=seed,
        progress=sink,
        backend=backend,
    )
    texts = [t for _, t, _ in rows]
    rewritten = [outputs.get(i, t) for i, t, _ in rows]
    references = [refs[0] if refs else t for _, t, refs in rows]
    changed = [o for o, t in zip(rewritten, texts, strict=True) if o != t]
    emitted = [outputs[i] for i, _, _ in rows if i in outputs]
    embedder = Embedder()
    run_figures = timing(result, len(rows))
    run_figures["rejected_by_reason"] = _reasons(result.rejected_path)
    run_figures["rewrites_stopped_by_check"] = _stopped_by_check(result)
    return {
        "pairs": str(pairs_path),
        "records": len(rows),
        "reserve": {
            "rows": len(reserved_ids),
            "seed": reserve_seed,
            "rule": "the ids with the lowest sha256('<seed>:<id>'); never rewritten or measured",
            "ids_file": str(work / "reserved_ids.txt"),
            "measured_from": len(measured_ids),
        },
        "sample": {"limit": limit, "seed": seed} if limit else None,
        "llm": block,
        "scorers": {s.name: s.describe() for s in scorers},
        "toxicity": {
            "input": score_toxicity(texts, scorers),
            "detox_rewrite": score_toxicity(rewritten, scorers),
            # Only the outputs the step changed: every one passed the gate, so the gate says
            # 1.0 here by construction; the independent scorers say how many really are clean.
            "detox_rewrite_changed": score_toxicity(changed, scorers),
            # What the step's dataset holds: rejected records left out, as a user receives it.
            "detox_rewrite_emitted": score_toxicity(emitted, scorers),
            "human_reference": score_toxicity(references, scorers),
        },
        "methods": {
            "detox_rewrite": {
                **score_similarity(texts, rewritten, [r for _, _, r in rows], embedder),
                **run_figures,
            },
            "human_reference": score_similarity(
                texts, references, [r[1:] for _, _, r in rows], embedder
            ),
        },
    }
