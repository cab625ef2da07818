"""The quick diversity summary written to ``manifest.json`` and printed at the end of a run:
distinct-1/2 and embedding dispersion of each text field of the final dataset.

The full evaluation report (fidelity, utility, privacy...) is ``evaluate_dataset`` in this
package; this is only the glance a user gets for free. The dataset is read as a stream and a seeded
reservoir of at most ``max_counted`` records is kept, so a million-record run does not hold its
dataset in memory; distinct-n is computed on that sample (on every record of a smaller dataset),
embeddings on at most ``max_embedded`` of it, because encoding costs about 20 ms a text on two CPU
cores. Without the ``embed`` extra the summary says so and reports distinct-n alone.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datarefinery.config import TaskSpec
from datarefinery.errors import MissingDependencyError, ModelNotFoundError
from datarefinery.evaluate.diversity import distinct_n, mean_pairwise_distance

MAX_EMBEDDED = 2000
MAX_COUNTED = 50_000


def text_fields(task: TaskSpec | None, rows: list[dict[str, Any]]) -> list[str]:
    """The task's text fields, or (without a task) every field holding strings."""
    if task is not None:
        return [name for name, spec in task.fields.items() if spec.type == "text"]
    names: dict[str, None] = {}
    for row in rows[:100]:
        names.update({k: None for k, v in row["fields"].items() if isinstance(v, str)})
    return list(names)


class DatasetSample:
    """A uniform sample of at most ``size`` records fed one at a time (Algorithm R; in feeding
    order while everything fits), and how many were fed. A record is fed as ``Record.to_dict``
    gives it, or as its JSON line, parsed only if the sample keeps it.
    """

    def __init__(self, size: int = MAX_COUNTED, seed: int = 0) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.rows: list[dict[str, Any]] = []
        self.total = 0

    def add(self, row: dict[str, Any] | str) -> None:
        self.total += 1
        if len(self.rows) < self.size:
            self.rows.append(json.loads(row) if isinstance(row, str) else row)
        else:
            slot = self.rng.randrange(self.total)
            if slot < self.size:
                self.rows[slot] = json.loads(row) if isinstance(row, str) else row

    def extend(self, rows: Iterable[dict[str, Any] | str]) -> DatasetSample:
        for row in rows:
            self.add(row)
        return self


def summarize(
    dataset: Path,
    task: TaskSpec | None,
    *,
    max_embedded: int = MAX_EMBEDDED,
    max_counted: int = MAX_COUNTED,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary of the dataset file ``dataset``."""
    sample = DatasetSample(max_counted, seed).extend(_rows(dataset))
    return summarize_sample(sample, task, max_embedded=max_embedded, seed=seed)


def summarize_sample(
    reservoir: DatasetSample,
    task: TaskSpec | None,
    *,
    max_embedded: int = MAX_EMBEDDED,
    seed: int = 0,
) -> dict[str, Any]:
    """The summary of the records fed to ``reservoir``."""
    total, rows = reservoir.total, reservoir.rows
    fields = text_fields(task, rows)
    summary: dict[str, Any] = {"records": total, "fields": {}}
    if total > len(rows):
        summary["counted_sample"] = len(rows)
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


def _rows(dataset: Path) -> Iterable[str]:
    with dataset.open(encoding="utf-8") as handle:
        yield from (line for line in handle if line.strip())


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
