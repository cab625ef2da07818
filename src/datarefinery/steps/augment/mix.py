"""``mix``: combine the pipeline's records with the records of a second file at a given ratio,
stratified by label, tagging where each record came from.

Per label, the step keeps as many records as it can such that a share ``ratio`` of them comes from
``other`` (to the nearest whole record), at most ``per_label``; which records are kept is a seeded
draw. The pipeline's records that are not needed are rejected (``mix_ratio``), so they stay
visible in ``rejected.jsonl``. Every record's ``provenance.source`` becomes ``input_tag`` or
``other_tag``; the file's records keep their ids (prefixed when an id is already taken). The
step sees its whole input at once (it needs the counts per label).
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

from pydantic import Field

from datarefinery.config import TaskSpec
from datarefinery.errors import InputFileError
from datarefinery.io.formats import Format
from datarefinery.io.read import read_numbered
from datarefinery.records import Provenance, Record, Rejected, stable_id
from datarefinery.steps.base import Output, Step, StepConfig, StepContext


class MixConfig(StepConfig):
    other: str = Field(description="the second file (.jsonl/.csv/.parquet), relative to the spec")
    other_format: Format = "auto"
    ratio: float = Field(ge=0, le=1, description="share of each label's records from 'other'")
    per_label: int | None = Field(default=None, ge=1, description="at most this many per label")
    input_tag: str = "synthetic"
    other_tag: str = "real"


def mix_counts(
    available_input: int, available_other: int, ratio: float, cap: int | None
) -> tuple[int, int]:
    """How many (input, other) records to keep: all of the scarcer side and as many of the other
    side as the ratio asks (rounded to the nearest whole record), scaled down to ``cap``.
    """

    def nearest(value: float) -> int:
        return math.floor(value + 0.5)

    if ratio <= 0:
        mine, theirs = available_input, 0
    elif ratio >= 1:
        mine, theirs = 0, available_other
    elif available_input * ratio / (1 - ratio) <= available_other:
        mine = available_input
        theirs = min(available_other, nearest(available_input * ratio / (1 - ratio)))
    else:
        theirs = available_other
        mine = min(available_input, nearest(available_other * (1 - ratio) / ratio))
    if cap is not None and mine + theirs > cap:
        theirs = min(theirs, nearest(cap * ratio))
        mine = min(mine, cap - theirs)
    return mine, theirs


class Mix(Step[MixConfig]):
    name = "mix"
    Config = MixConfig

    def needs_whole_input(self) -> bool:
        return True  # stratifies by label over all of its input

    def reads(self, task: TaskSpec | None) -> set[str]:
        label = task.label_field if task else None
        return {label} if label else set()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        task = ctx.require_task()
        self.label_field = task.label_field
        path = Path(self.config.other)
        if not path.is_absolute():
            path = ctx.base_dir / path
        required = list(task.fields)
        self.others: list[Record] = []
        for line, record in read_numbered(path, format=self.config.other_format, required=required):
            label = self._label(record)
            if self.label_field is not None and label not in task.labels:
                raise InputFileError(
                    str(path),
                    f"{label!r} is not one of the labels {list(task.labels)}",
                    line=line,
                    field=self.label_field,
                )
            self.others.append(record)

    def _label(self, record: Record) -> str:
        return str(record.fields.get(self.label_field)) if self.label_field else ""

    async def process(self, batch: list[Record]) -> list[Output]:
        rng = random.Random(self.ctx.call_seed("mix"))
        config = self.config
        labels = list(
            dict.fromkeys([self._label(r) for r in batch] + [self._label(r) for r in self.others])
        )
        taken = {r.id for r in batch}
        kept: list[Record] = []
        dropped: list[Output] = []
        for label in labels:
            mine = [r for r in batch if self._label(r) == label]
            theirs = [r for r in self.others if self._label(r) == label]
            n_mine, n_theirs = mix_counts(len(mine), len(theirs), config.ratio, config.per_label)
            order = rng.sample(range(len(mine)), len(mine))
            chosen = set(order[:n_mine])
            for index, record in enumerate(mine):
                if index in chosen:
                    kept.append(self._tagged(record, config.input_tag))
                else:
                    detail = (
                        f"not needed for label {label!r}: kept {n_mine} of {len(mine)} input "
                        f"and {n_theirs} of {len(theirs)} {config.other_tag} records "
                        f"(ratio {config.ratio})"
                    )
                    dropped.append(Rejected(record, self.ctx.name, "mix_ratio", detail))
            for record in rng.sample(theirs, n_theirs):
                record_id = record.id if record.id not in taken else stable_id("mix", record.id)
                taken.add(record_id)
                kept.append(
                    Record(
                        id=record_id,
                        fields=dict(record.fields),
                        provenance=Provenance(
                            step=self.ctx.name,
                            technique="mix",
                            conditioning={"file_id": record.id},
                            source=config.other_tag,
                        ),
                        scores=dict(record.scores),
                    )
                )
        rng.shuffle(kept)
        return [*kept, *dropped]

    def _tagged(self, record: Record, tag: str) -> Record:
        provenance = dataclasses.replace(record.provenance, source=tag)
        return Record(record.id, dict(record.fields), provenance, dict(record.scores))
