"""``select``: keep the ``n`` most diverse records, stratified by label (k-center greedy).

Within each label the step embeds the records (all-MiniLM-L6-v2), starts from the record nearest
the label's centroid (deterministic, and typical of the label) and then repeatedly adds the record
farthest from everything selected so far -- the greedy 2-approximation of the k-center problem,
so the kept set covers the label's region of embedding space rather than its densest corner.
Quotas are proportional to the label counts (``per_label: proportional``) or equal
(``per_label: equal``, which also rebalances). Records not selected are rejected as
``not_selected``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import CallEstimate, Output, Step, StepConfig, StepContext
from datarefinery.steps.curate.fields import chosen_fields, label_field_of

if TYPE_CHECKING:
    from numpy.typing import NDArray


class SelectConfig(StepConfig):
    n: int = Field(..., ge=1, description="how many records to keep")
    per_label: Literal["proportional", "equal"] = "proportional"
    fields: list[str] | None = Field(
        default=None, description="fields embedded; default: the task's content fields"
    )


def k_center_greedy(vectors: NDArray[np.float32], k: int) -> tuple[list[int], list[float]]:
    """Indices of ``k`` rows chosen by k-center greedy from the row nearest the centroid, and
    each chosen row's distance to the rows chosen before it (inf for the first).
    """
    count = len(vectors)
    if k <= 0 or count == 0:
        return [], []
    centroid = vectors.mean(axis=0)
    first = int(np.argmin(np.linalg.norm(vectors - centroid, axis=1)))
    chosen, gaps = [first], [float("inf")]
    nearest = np.linalg.norm(vectors - vectors[first], axis=1)
    while len(chosen) < min(k, count):
        nearest[chosen] = -1.0  # never pick a chosen row again (ties in duplicates)
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        gaps.append(float(nearest[pick]))
        nearest = np.minimum(nearest, np.linalg.norm(vectors - vectors[pick], axis=1))
    return chosen, gaps


def quotas(counts: dict[str, int], n: int, mode: str) -> dict[str, int]:
    """How many records each label keeps: proportional (largest remainder) or equal, never more
    than a label has; what a small label cannot use goes to the others.
    """
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    labels = list(counts)
    if mode == "equal":
        share = {label: n / len(labels) for label in labels}
    else:
        share = {label: n * counts[label] / total for label in labels}
    result = {label: min(counts[label], int(share[label])) for label in labels}
    while sum(result.values()) < n:
        open_labels = [label for label in labels if result[label] < counts[label]]
        # the label furthest below its share gets the next slot; ties by label order
        label = max(open_labels, key=lambda lb: (share[lb] - result[lb], -labels.index(lb)))
        result[label] += 1
    return result


class Select(Step[SelectConfig]):
    name = "select"
    Config = SelectConfig

    def needs_whole_input(self) -> bool:
        return True

    def estimate_calls(self, n_in: float, per_record: CallEstimate) -> CallEstimate:
        # A sample smaller than n keeps everything; the run keeps n of however many come in.
        return CallEstimate(min(n_in, self.config.n), 0.0)

    def _fields(self, task: TaskSpec | None) -> list[str]:
        return chosen_fields(self.config.fields, task)

    def reads(self, task: TaskSpec | None) -> set[str]:
        return set(self._fields(task))

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.fields = self._fields(ctx.task)
        self.label_field = label_field_of(ctx.task)

    async def process(self, batch: list[Record]) -> list[Output]:
        from datarefinery.embeddings import Embedder

        groups: dict[str, list[int]] = {}
        for index, record in enumerate(batch):
            groups.setdefault(str(record.fields.get(self.label_field, "")), []).append(index)
        keep = quotas({k: len(v) for k, v in groups.items()}, self.config.n, self.config.per_label)
        texts = ["\n".join(str(r.fields.get(f, "")) for f in self.fields) for r in batch]
        vectors = Embedder().encode(texts) if len(batch) > self.config.n else None
        selected: dict[int, tuple[int, float]] = {}
        for label, members in groups.items():
            if vectors is None:
                picks, gaps = list(range(len(members))), [float("inf")] * len(members)
            else:
                picks, gaps = k_center_greedy(vectors[members], keep[label])
            for rank, (pick, gap) in enumerate(zip(picks, gaps, strict=True)):
                selected[members[pick]] = (rank, gap)
        outputs: list[Output] = []
        name = self.ctx.name
        for index, record in enumerate(batch):
            label = str(record.fields.get(self.label_field, ""))
            if index in selected:
                rank, gap = selected[index]
                scores = {**record.scores, f"{name}_rank": rank}
                if np.isfinite(gap):
                    scores[f"{name}_gap"] = round(gap, 4)
                outputs.append(Record(record.id, record.fields, record.provenance, scores))
            else:
                detail = (
                    f"k-center greedy kept {keep[label]} of {len(groups[label])} records with "
                    f"label {label!r} ({self.config.n} of {len(batch)} in all)"
                )
                outputs.append(Rejected(record, name, "not_selected", detail))
        return outputs
