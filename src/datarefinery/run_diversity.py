"""The quick diversity summary written to ``manifest.json`` and printed at the end of a run:
distinct-1/2 and embedding dispersion of each text field of the final dataset.

The full evaluation report (fidelity, utility, privacy...) lives in ``datarefinery.evaluate``;
this is only the glance a user gets for free. Distinct-n is computed on every record; embeddings
on a seeded sample of at most ``max_embedded`` records, because encoding costs about 20 ms a text
on two CPU cores. Without the ``embed`` extra the summary says so and reports distinct-n alone.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from datarefinery.config import TaskSpec
from datarefinery.errors import MissingDependencyError, ModelNotFoundError
from datarefinery.evaluate.diversity import distinct_n, mean_pairwise_distance

MAX_EMBEDDED = 2000


def text_fields(task: TaskSpec | None, rows: list[dict[str, Any]]) -> list[str]:
    """The task's text fields, or (without a task) every field holding strings."""
    if task is not None:
        return [name for name, spec in task.fields.items() if spec.type == "text"]
    names: dict[str, None] = {}
    for row in rows[:100]:
        names.update({k: None for k, v in row["fields"].items() if isinstance(v, str)})
    return list(names)


def summarize(
    dataset: Path, task: TaskSpec | None, *, max_embedded: int = MAX_EMBEDDED, seed: int = 0
) -> dict[str, Any]:
    with dataset.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    fields = text_fields(task, rows)
    summary: dict[str, Any] = {"records": len(rows), "fields": {}}
    texts = {
        name: [str(r["fields"][name]) for r in rows if isinstance(r["fields"].get(name), str)]
        for name in fields
    }
    for name, values in texts.items():
        summary["fields"][name] = {
            "distinct_1": round(distinct_n(values, 1), 4),
            "distinct_2": round(distinct_n(values, 2), 4),
        }
    if len(rows) < 2 or not fields:
        return summary
    try:
        embedder = _embedder()
    except (MissingDependencyError, ModelNotFoundError) as exc:
        summary["embedding"] = f"not computed: {exc}"
        return summary
    summary["embedding"] = embedder.name
    for name, values in texts.items():
        sample = values
        if len(values) > max_embedded:
            sample = random.Random(seed).sample(values, max_embedded)
            summary["fields"][name]["embedded_sample"] = max_embedded
        dispersion = mean_pairwise_distance(embedder.encode(sample))
        summary["fields"][name]["dispersion"] = round(dispersion, 4)
    return summary


def _embedder() -> Any:
    from datarefinery.embeddings import Embedder

    # A run's last screen is no place for "Loading weights" progress bars.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    except ImportError:
        pass
    embedder = Embedder()
    embedder.encode(["warm up"])  # load now, so a missing extra surfaces here
    return embedder
