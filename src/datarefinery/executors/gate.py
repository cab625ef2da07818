"""The gate before a gated step (``review``): its identity, and the records that block it.

A gated step's output depends on more than the spec and its input: on people's decisions, which
change between runs. Its step directory keeps the identity it was made with (``_IDENTITY``); when
the step's gate reports another one, what that step and every later step committed is discarded
(their model calls stay in the response cache) and they are redone. Records that still wait for
people stop the run before the step (``WaitingForReview``), so nothing after it runs on an
unfinished review.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datarefinery.errors import WaitingForReview
from datarefinery.io.write import write_json_atomic
from datarefinery.records import Record
from datarefinery.rundir import RunDir
from datarefinery.steps.base import Step

IDENTITY_FILE = "_IDENTITY"


def pass_gate(
    step: Step[Any], index: int, run_dir: RunDir, names: list[str], source: Iterable[Record]
) -> list[Record]:
    """The step's input, read whole, once its gate lets it run (else ``WaitingForReview``)."""
    records = list(source)
    gate = step.gate(records)
    path = run_dir.step_dir(index, names[index]).path
    if stored_identity(path) != gate.identity:
        discard_from(run_dir, names, index)
    if gate.waiting:
        raise WaitingForReview(gate.message, step=names[index], waiting=gate.waiting)
    path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path / IDENTITY_FILE, {"identity": gate.identity})
    return records


def stored_identity(step_path: Path) -> str | None:
    marker = step_path / IDENTITY_FILE
    if not marker.exists():
        return None
    return str(json.loads(marker.read_text(encoding="utf-8"))["identity"])


def discard_from(run_dir: RunDir, names: list[str], index: int) -> None:
    """Discard the committed shards of step ``index`` and every step after it.

    The last step goes first and each folder is renamed away before it is deleted: a crash
    part-way leaves the gated step's old identity in place, so the next run discards again
    instead of skipping a later step's stale shards.
    """
    for later in range(len(names) - 1, index - 1, -1):
        path = run_dir.path / "steps" / f"{later + 1:02d}-{names[later]}"
        if not path.exists():
            continue
        trash = path.with_name(f".discarded-{path.name}-{uuid.uuid4().hex[:8]}")
        path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
