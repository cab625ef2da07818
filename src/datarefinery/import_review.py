"""``import_review``: people's answers from Argilla or Label Studio, stored as review decisions.

Each final answer becomes one ``Decision`` in ``OUT/review/decisions.sqlite``: the label the
suggestion held (or, without one in the file, the run's current label) is ``accept``; another
label is ``correct``; a discarded (Argilla) or skipped (Label Studio) record is ``reject``.
Drafts and answers without a label decide nothing and are counted. An answer that repeats the
decision in force (same action, label and person) is not stored again, so importing one file
twice changes nothing, the review step's identity included.

All or nothing: an unknown record id or a malformed file stops the import before any decision
is stored, with the file and the position (task / record / annotation number).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datarefinery.decisions import Decision, DecisionStore, now_utc
from datarefinery.errors import InputFileError, UsageError
from datarefinery.io.annotations import Annotation, AnnotationFile, load_json, sorted_by_time
from datarefinery.io.argilla import is_argilla, read_argilla
from datarefinery.io.labelstudio import is_labelstudio, read_labelstudio

Tool = Literal["argilla", "labelstudio"]
READERS: dict[str, Callable[[Any, str], AnnotationFile]] = {
    "argilla": read_argilla,
    "labelstudio": read_labelstudio,
}
TOOL_NAMES = {"argilla": "Argilla", "labelstudio": "Label Studio"}
_REJECT_REASON = {
    "argilla": "discarded in Argilla",
    "labelstudio": "skipped in Label Studio (was_cancelled)",
}


@dataclass
class ImportSummary:
    tool: str
    file: Path
    actions: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    drafts: int = 0
    unlabeled: int = 0
    unanswered: int = 0

    @property
    def stored(self) -> int:
        return sum(self.actions.values())


def detect_tool(data: Any, path: Path) -> Tool:
    if is_labelstudio(data):
        return "labelstudio"
    if is_argilla(data):
        return "argilla"
    raise InputFileError(
        str(path),
        "neither a Label Studio JSON export (a list of tasks with 'data') nor Argilla records "
        "(a list of records with 'responses'); name the tool with --tool if it is one of them",
    )


def _ids_in(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                yield str(row.get("id")), (row.get("fields") or {})


def _run_records(out: Path, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The fields of the ``wanted`` records the run holds: its dataset first, then the steps'
    committed shards (a run waiting for review has no dataset yet).
    """
    found: dict[str, dict[str, Any]] = {}
    sources = [out / "dataset.jsonl"] if (out / "dataset.jsonl").exists() else []
    sources += sorted(p for p in out.glob("steps/*/shard-*.jsonl") if ".rejected" not in p.name)
    for source in sources:
        if wanted <= found.keys():
            break
        found.update((i, f) for i, f in _ids_in(source) if i in wanted and i not in found)
    return found


def _label_field(out: Path) -> str:
    try:
        task = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["spec"]["task"]
        return str(next(n for n, f in task["fields"].items() if f.get("type") == "label"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration, AttributeError):
        return "label"


def _decision(
    note: Annotation, tool: str, current: Any, reviewer_default: str | None, path: Path
) -> Decision:
    by = note.by or reviewer_default
    if by is None:
        raise UsageError(
            f"{path}, {note.where}: the file does not say who annotated it: "
            "pass --reviewer-default NAME"
        )
    at = note.at or now_utc()
    if note.status == "discarded":
        return Decision(note.record_id, "reject", by, reason=_REJECT_REASON[tool], at=at)
    suggested = note.suggested if note.suggested is not None else current
    if suggested is not None and note.label == str(suggested):
        return Decision(note.record_id, "accept", by, at=at)
    return Decision(note.record_id, "correct", by, label=note.label, at=at)


def _same(a: Decision | None, b: Decision) -> bool:
    return a is not None and (a.action, a.label, a.by, a.reason, a.fields) == (
        b.action,
        b.label,
        b.by,
        b.reason,
        b.fields,
    )


def import_review(
    out: str | Path,
    file: str | Path,
    *,
    tool: Tool | None = None,
    reviewer_default: str | None = None,
) -> ImportSummary:
    """Store the final answers of ``file`` (an Argilla or Label Studio export of records that
    ``refinery export OUT --format argilla|labelstudio`` wrote) as decisions of run ``out``.
    ``tool`` is found from the file when not given; ``reviewer_default`` names the person
    where the file does not.
    """
    out, path = Path(out), Path(file)
    if not ((out / "manifest.json").exists() or (out / "dataset.jsonl").exists()):
        raise UsageError(f"{out} is not a run directory (no manifest.json): give the run's -o")
    data = load_json(path)
    chosen: str = tool or detect_tool(data, path)
    if chosen not in READERS:
        raise UsageError(f"unknown annotation tool {chosen!r}: use one of {', '.join(READERS)}")
    content = READERS[chosen](data, str(path))
    notes = content.annotations
    records = _run_records(out, {n.record_id for n in notes})
    unknown = [n for n in notes if n.record_id not in records]
    if unknown:
        listed = "; ".join(f"{n.where}: {n.record_id}" for n in unknown[:5])
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise InputFileError(
            str(path),
            f"record ids that run {out} does not hold: {listed}{more}. "
            "Was this file exported from another run?",
        )
    summary = ImportSummary(chosen, path, drafts=content.drafts)
    summary.unanswered = content.items - len({n.record_id for n in notes})
    label_field = _label_field(out)
    store = DecisionStore.of_run(out)
    in_force = store.latest()
    new: list[Decision] = []
    for note in sorted_by_time(notes):
        if note.status == "submitted" and note.label is None:
            summary.unlabeled += 1
            continue
        current = records[note.record_id].get(label_field)
        decision = _decision(note, chosen, current, reviewer_default, path)
        if _same(in_force.get(note.record_id), decision):
            summary.unchanged += 1
            continue
        in_force[note.record_id] = decision
        new.append(decision)
        summary.actions[decision.action] += 1
    if new:
        store.record_many(new)
    return summary
