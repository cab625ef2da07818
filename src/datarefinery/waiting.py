"""Exporting a run that waits for review: the records its ``review`` step waits on.

A run stopped at a review step (status ``waiting_for_review``) has written no ``dataset.jsonl``.
What people need from it is the review step's input: the records the step before it committed,
those an earlier step routed marked with ``scores.route``. ``export`` writes them in any record
format or annotation-tool format (``labelstudio``, ``argilla``), so people can decide them in a
tool and ``refinery import-review`` bring their answers back. Which of them (``review``):

- ``undecided`` (default): the records the run waits on, the ones the review step's ``require``
  names (routed ones, or all) that have no decision yet; exactly the ``waiting`` count of the
  manifest;
- ``routed``: every routed record, decided or not;
- ``all``: the step's whole input.

Records go out as the step before the review left them: decisions already made are not applied.
The training formats are refused: undecided records are not training data yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from datarefinery.decisions import DecisionStore
from datarefinery.errors import UsageError
from datarefinery.io.export import EXPORT_FORMATS, Located, export_located
from datarefinery.io.export import export as export_records
from datarefinery.io.training import ExportMapping
from datarefinery.records import Record
from datarefinery.steps.curate.review import ReviewConfig

ReviewRecords = Literal["undecided", "routed", "all"]
REVIEW_RECORDS: tuple[str, ...] = get_args(ReviewRecords)
WAITING = "waiting_for_review"


@dataclass(frozen=True)
class WaitingStep:
    """The review step a run waits at: its options, and the folder of the step before it
    (``None`` when the review step comes first).
    """

    options: dict[str, Any]
    before: Path | None


def waiting_step(out: Path) -> WaitingStep | None:
    """The review step run directory ``out`` waits at; ``None`` when it does not wait (not a
    run directory, or its manifest says another status).
    """
    path = Path(out) / "manifest.json"
    if not Path(out).is_dir() or not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("status") != WAITING:
        return None
    entries = (manifest.get("spec") or {}).get("steps") or []
    # The step before the review committed all its shards before the gate stopped the run; the
    # review step's own folder is not made until its gate lets it run.
    complete = [p for p in _step_folders(Path(out)) if (p / "_COMPLETE").exists()]
    index = int(complete[-1].name[:2]) if complete else 0
    if index >= len(entries) or "review" not in entries[index]:
        raise UsageError(
            f"{out} waits for review, but no review step follows its last finished step: "
            "run `refinery run` again to bring the run directory up to date"
        )
    return WaitingStep(entries[index]["review"] or {}, complete[-1] if complete else None)


def _step_folders(out: Path) -> list[Path]:
    steps = out / "steps"
    if not steps.is_dir():
        return []
    return sorted(p for p in steps.iterdir() if p.is_dir() and p.name[:2].isdigit())


def review_input(out: Path, review: ReviewRecords = "undecided") -> Iterator[Located]:
    """The records the review step of waiting run ``out`` reads (see the module docstring for
    ``review``), each with its shard file and line.
    """
    found = waiting_step(out)
    if found is None:
        raise UsageError(f"{out} is not a run waiting for review (see its manifest.json status)")
    if found.before is None:
        raise UsageError(
            f"the review step of {out} is its first step: its input is the run's input file; "
            "export that file instead"
        )
    folder = found.before
    require = ReviewConfig.model_validate(found.options).require
    decided = DecisionStore.of_run(Path(out)).latest() if review == "undecided" else {}
    shards = int(json.loads((folder / "_COMPLETE").read_text())["shards"])
    for shard in range(shards):
        path = folder / f"shard-{shard:05d}.jsonl"
        with path.open(encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                record = Record.from_dict(json.loads(text))
                if _wanted(record, review, require, decided):
                    yield record, (str(path), line)


def _wanted(
    record: Record, review: ReviewRecords, require: str, decided: Mapping[str, Any]
) -> bool:
    routed = bool(record.scores.get("route"))
    if review == "all":
        return True
    if review == "routed":
        return routed
    blocks = require == "all" or (require == "routed" and routed)
    return blocks and record.id not in decided


def export(
    source: str | Path | Iterable[Record],
    path: str | Path,
    *,
    format: str | None = None,
    mapping: ExportMapping | Mapping[str, Any] | None = None,
    review: ReviewRecords | None = None,
) -> int:
    """Write ``source`` (a run directory, a records file, or records) to ``path`` as ``format``
    (see ``EXPORT_FORMATS``); a run directory waiting for review gives the records its review
    step waits on (``review``: undecided, the default; routed; all). Returns the rows written.
    """
    if not isinstance(source, (str, Path)) or waiting_step(Path(source)) is None:
        if review is not None:
            raise UsageError(
                f"review={review!r} (--records) chooses records of a run waiting for review; "
                f"{source} is not one: leave it out"
            )
        return export_records(source, path, format=format, mapping=mapping)
    chosen = EXPORT_FORMATS.get(format) if format is not None else None
    if chosen is not None and chosen.takes_mapping:
        record_formats = [n for n, f in EXPORT_FORMATS.items() if not f.takes_mapping]
        raise UsageError(
            f"{source} waits for review: it has no dataset to train on yet (--format {format}). "
            f"Export the records it waits on with --format {' | '.join(record_formats)}, or "
            f"decide them (`refinery review {source}`) and run it again"
        )
    if review is not None and review not in REVIEW_RECORDS:
        raise UsageError(
            f"unknown review records {review!r}: use one of {', '.join(REVIEW_RECORDS)}"
        )
    located = review_input(Path(source), review or "undecided")
    return export_located(located, path, format=format, mapping=mapping)
