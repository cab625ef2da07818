"""Reading a run directory for the review page: which records people see, and their parents.

A finished run (``manifest.json`` says ``complete`` and ``dataset.jsonl`` exists) is shown as its
dataset and ``rejected.jsonl``. A run still going, or stopped (waiting for review, out of budget),
is shown as the committed shards of its newest step that has any, plus the rejections every step
has committed so far: the same records its final files would hold if it ended now.

Parents (``provenance.parent_ids``) are looked up among every step's committed records and the
run's input file, keeping only the ids some shown record names, so memory follows what is shown,
not the size of every step.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datarefinery.errors import InputFileError, RunDirError
from datarefinery.io.read import read_records
from datarefinery.manifest import Manifest
from datarefinery.records import Record, Rejected
from datarefinery.rundir import RunDir, StepDir

Status = Literal["kept", "routed", "rejected"]


@dataclass(slots=True)
class Shown:
    """A record as the page sees it: kept, routed to people by a step, or rejected (with why)."""

    record: Record
    status: Status
    step: str
    reason: str = ""
    detail: str = ""


@dataclass
class RunRecords:
    records: list[Shown]
    parents: dict[str, dict[str, Any]]
    labels: list[str]
    judge_steps: set[str] = field(default_factory=set)
    source: str = ""


def _kept(record: Record) -> Shown:
    route = record.scores.get("route")
    if route:
        reason = str(record.scores.get("route_reason", ""))
        return Shown(record, "routed", str(route), "routed", reason)
    return Shown(record, "kept", record.provenance.step or "input")


def _rejected(line: str) -> Shown:
    rejected = Rejected.from_dict(json.loads(line))
    return Shown(rejected.record, "rejected", rejected.step, rejected.reason, rejected.detail)


def _jsonl_lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield line


def _committed(step: StepDir) -> list[int]:
    return sorted(int(p.name[6:11]) for p in step.path.glob("shard-*.done"))


def _step_dirs(root: Path) -> list[StepDir]:
    steps = root / "steps"
    return [StepDir(p) for p in sorted(steps.iterdir()) if p.is_dir()] if steps.exists() else []


def _manifest(root: Path) -> Manifest | None:
    if not (root / RunDir.MANIFEST).exists():
        raise RunDirError(
            f"{root} holds no manifest.json: give `refinery review` the run directory "
            "that `refinery run -o OUT` wrote"
        )
    manifest = RunDir(root).read_manifest()
    return manifest if isinstance(manifest, Manifest) else None


def _shown(root: Path, manifest: Manifest | None) -> tuple[list[Shown], str]:
    run = RunDir(root)
    if manifest is not None and manifest.status == "complete" and run.dataset_path.exists():
        kept = (Record.from_dict(json.loads(line)) for line in _jsonl_lines(run.dataset_path))
        shown = [_kept(record) for record in kept]
        shown += [_rejected(line) for line in _jsonl_lines(run.rejected_path)]
        return shown, "dataset.jsonl"
    steps = [s for s in _step_dirs(root) if _committed(s)]
    if not steps:
        raise RunDirError(
            f"{root} has no committed records yet (no dataset.jsonl, no finished shard under "
            "steps/): let `refinery run` finish at least one shard, then review"
        )
    newest = steps[-1]
    shown = [_kept(r) for index in _committed(newest) for r in newest.records(index)]
    for step in steps:
        shown += [_rejected(line) for i in _committed(step) for line in step.rejected_lines(i)]
    return shown, f"steps/{newest.path.name}"


def _input_path(root: Path, manifest: Manifest | None) -> Path | None:
    spec = manifest.spec if manifest is not None else {}
    given = spec.get("input")
    path = given.get("path") if isinstance(given, dict) else given
    if not isinstance(path, str):
        return None
    base = Path(manifest.spec_path).parent if manifest and manifest.spec_path else root
    return base / path


def _parents(root: Path, manifest: Manifest | None, wanted: set[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if not wanted:
        return found
    for step in _step_dirs(root):
        for index in _committed(step):
            for record in step.records(index):
                if record.id in wanted and record.id not in found:
                    found[record.id] = record.fields
    path = _input_path(root, manifest)
    if path is not None and path.exists() and not wanted <= found.keys():
        try:
            for record in read_records(path):
                if record.id in wanted and record.id not in found:
                    found[record.id] = record.fields
        except InputFileError:  # the input moved or changed: parents show as "not found"
            pass
    return found


def _judge_steps(manifest: Manifest | None, root: Path) -> set[str]:
    """Names of the run's judge steps: their ``scores[<name>]`` is a 1-5 mean."""
    entries = manifest.spec.get("steps", []) if manifest is not None else []
    names = set()
    for step in _step_dirs(root):
        number, _, name = step.path.name.partition("-")
        index = int(number) - 1 if number.isdigit() else -1
        if 0 <= index < len(entries) and "judge" in entries[index]:
            names.add(name)
    return names


def load_run(out: Path) -> RunRecords:
    """Every record the page shows for the run directory ``out``, with parents and labels."""
    root = Path(out)
    manifest = _manifest(root)
    shown, source = _shown(root, manifest)
    wanted = {p for s in shown for p in s.record.provenance.parent_ids}
    task = manifest.task if manifest is not None else None
    labels = list(task.labels) if task is not None else []
    if not labels:
        found = {s.record.fields.get("label") for s in shown}
        labels = sorted(str(label) for label in found if label not in (None, ""))
    return RunRecords(
        records=shown,
        parents=_parents(root, manifest, wanted),
        labels=labels,
        judge_steps=_judge_steps(manifest, root),
        source=source,
    )
