"""Label Studio round trips (Label Studio 1.x: its task import format and its "JSON" export).

Export writes the tasks to import, each with the record's label as a pre-annotation
(``predictions``), and next to them ``<name>.xml``, the labeling config of a project that shows
the text fields and offers the task's labels as single choices. Our record id travels in
``data.refinery_id``, which Label Studio keeps as it was imported.

Import reads a project's "JSON" export: per task, ``annotations`` with ``result`` (a ``choices``
region), ``completed_by`` (a user id, or ``{id, email, ...}`` in newer exports),
``was_cancelled`` (the annotator skipped the task) and ``updated_at``; and ``drafts``, counted
but never decided on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from datarefinery.errors import InputFileError
from datarefinery.io.annotations import (
    ID_KEY,
    Annotation,
    AnnotationFile,
    LabelingTask,
    Located,
    labeling_task,
    shown_fields,
    suggestion,
    write_text_atomic,
)

CONTROL = "label"  # the <Choices name=...> of our config: ``from_name`` in every result


def task_rows(located: list[Located], task: LabelingTask) -> list[dict[str, Any]]:
    rows = []
    for number, (record, _) in enumerate(located, start=1):
        data = {**shown_fields(record, task), ID_KEY: record.id}
        row: dict[str, Any] = {"id": number, "data": data}
        hint = suggestion(record, task)
        if hint.label is not None:
            prediction: dict[str, Any] = {"model_version": hint.agent}
            if hint.score is not None:
                prediction["score"] = hint.score
            prediction["result"] = [_choice(task, hint.label)]
            row["predictions"] = [prediction]
        rows.append(row)
    return rows


def _choice(task: LabelingTask, label: str) -> dict[str, Any]:
    return {
        "from_name": CONTROL,
        "to_name": task.text_fields[0],
        "type": "choices",
        "value": {"choices": [label]},
    }


def labeling_config(task: LabelingTask) -> str:
    """The project's labeling config: each text field, then the labels as single choices."""
    lines = ["<View>"]
    for name in task.text_fields:
        lines.append(f"  <Header value={quoteattr(name)}/>")
        lines.append(f"  <Text name={quoteattr(name)} value={quoteattr('$' + name)}/>")
    lines.append(
        f"  <Choices name={quoteattr(CONTROL)} toName={quoteattr(task.text_fields[0])} "
        'choice="single" showInLine="true">'
    )
    lines += [f"    <Choice value={quoteattr(label)}/>" for label in task.labels]
    lines += ["  </Choices>", "</View>", ""]
    return "\n".join(lines)


def config_path(path: Path) -> Path:
    return path.with_suffix(".xml")


def write_labelstudio(path: Path, located: Iterable[Located], mapping: object) -> int:
    """Write the tasks JSON at ``path`` and the labeling config at ``config_path(path)``."""
    rows_in = list(located)
    task = labeling_task(rows_in)
    rows = task_rows(rows_in, task)
    write_text_atomic(path, json.dumps(rows, ensure_ascii=False, indent=1))
    write_text_atomic(config_path(path), labeling_config(task))
    return len(rows)


def _who(completed_by: Any) -> str | None:
    if isinstance(completed_by, dict):
        email = completed_by.get("email")
        if email:
            return str(email)
        completed_by = completed_by.get("id")
    if completed_by is None or completed_by == "":
        return None
    return f"labelstudio:{completed_by}"


def _chosen(result: Any, where: str, path: str) -> str | None:
    if not isinstance(result, list):
        raise InputFileError(path, f"{where}: 'result' is not a list of regions")
    choices = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"]
    ours = [r for r in choices if r.get("from_name") == CONTROL] or choices
    if not ours:
        return None
    picked = (ours[0].get("value") or {}).get("choices")
    if not isinstance(picked, list) or len(picked) != 1:
        raise InputFileError(
            path, f"{where}: expected one chosen label in value.choices, got {picked!r}"
        )
    return str(picked[0])


def is_labelstudio(data: Any) -> bool:
    first = data[0] if isinstance(data, list) and data else None
    return isinstance(first, dict) and "data" in first and isinstance(first["data"], dict)


def read_labelstudio(data: Any, path: str) -> AnnotationFile:
    """The annotations in a Label Studio JSON export, and the number of drafts left out."""
    if not isinstance(data, list):
        raise InputFileError(path, "a Label Studio export is a JSON list of tasks")
    found: list[Annotation] = []
    drafts = 0
    for number, item in enumerate(data, start=1):
        where = f"task {number}"
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            raise InputFileError(path, f"{where}: not a task (an object with 'data')")
        if "id" in item:
            where += f" (id {item['id']})"
        record_id = item["data"].get(ID_KEY)
        if record_id is None:
            raise InputFileError(
                path,
                f"{where}: no data.{ID_KEY}: import tasks written by "
                "`refinery export OUT --format labelstudio`, which carry the record ids",
            )
        suggested = next(
            (
                _chosen(p.get("result", []), f"{where}, prediction", path)
                for p in item.get("predictions") or []
                if isinstance(p, dict)
            ),
            None,
        )
        drafts += len(item.get("drafts") or [])
        for index, note in enumerate(item.get("annotations") or [], start=1):
            spot = f"{where}, annotation {index}"
            if not isinstance(note, dict):
                raise InputFileError(path, f"{spot}: not an object")
            cancelled = bool(note.get("was_cancelled"))
            label = None if cancelled else _chosen(note.get("result", []), spot, path)
            found.append(
                Annotation(
                    record_id=str(record_id),
                    status="discarded" if cancelled else "submitted",
                    where=spot,
                    label=label,
                    suggested=suggested,
                    by=_who(note.get("completed_by")),
                    at=note.get("updated_at") or note.get("created_at"),
                )
            )
    return AnnotationFile(found, drafts, len(data))
