"""Argilla round trips (Argilla 2.x SDK: ``rg.Record``, ``rg.Settings``).

Export writes records in the shape ``dataset.records.to_json(path)`` writes and
``rg.Record.from_dict`` reads back (``id``, ``fields``, ``metadata``, ``suggestions`` by question
with ``value``, ``score`` and ``agent``, ``responses``, ``vectors``, ``status``), so
``dataset.records.log([rg.Record.from_dict(r) for r in json.load(f)])`` loads them. Next to it,
``<name>.settings.json`` holds the dataset settings in the shape ``rg.Settings.serialize()``
gives: a text field per shown field, a ``LabelQuestion`` named ``label`` with the task's labels,
and ``refinery_id`` as a terms metadata property.

Import reads records exported by ``to_json`` / ``to_list(flatten=False)`` (``responses`` by
question: ``[{value, user_id, status}]``) or by ``to_list(flatten=True)`` (``label.responses``,
``label.responses.users``, ``label.responses.status``, ``label.suggestion``). Argilla 2.0 and 2.1
leave the response status out of ``to_json``; a response without one counts as submitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datarefinery.errors import InputFileError, UsageError
from datarefinery.io.annotations import (
    ID_KEY,
    Annotation,
    AnnotationFile,
    LabelingTask,
    Located,
    Status,
    labeling_task,
    shown_fields,
    suggestion,
    write_text_atomic,
)

QUESTION = "label"
STATUSES: tuple[Status, ...] = ("submitted", "discarded", "draft")


def record_rows(located: list[Located], task: LabelingTask) -> list[dict[str, Any]]:
    rows = []
    for record, _ in located:
        hint = suggestion(record, task)
        metadata: dict[str, Any] = {ID_KEY: record.id}
        for name in ("route", "route_reason"):
            if isinstance(record.scores.get(name), str):
                metadata[name] = record.scores[name]
        suggestions = {}
        if hint.label is not None:
            suggestions[QUESTION] = {"value": hint.label, "score": hint.score, "agent": hint.agent}
        rows.append(
            {
                "id": record.id,
                "fields": shown_fields(record, task),
                "metadata": metadata,
                "suggestions": suggestions,
                "responses": {},
                "vectors": {},
                "status": "pending",
                "_server_id": None,
            }
        )
    return rows


def dataset_settings(task: LabelingTask) -> dict[str, Any]:
    clash = {ID_KEY, QUESTION, "route", "route_reason"} & set(task.text_fields)
    if clash:
        raise UsageError(
            f"record fields {sorted(clash)} clash with the names the Argilla export uses for its "
            "question and metadata (Argilla needs distinct names): rename those fields first"
        )
    return {
        "guidelines": "Choose the label that fits; discard a record that should not be kept.",
        "allow_extra_metadata": True,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "fields": [
            {
                "name": name,
                "title": name,
                "required": True,
                "settings": {"type": "text", "use_markdown": False},
            }
            for name in task.text_fields
        ],
        "questions": [
            {
                "name": QUESTION,
                "title": task.label_field,
                "description": None,
                "required": True,
                "settings": {
                    "type": "label_selection",
                    "options": [{"value": v, "text": v, "description": None} for v in task.labels],
                    "visible_options": None,
                },
            }
        ],
        "metadata": [
            {
                "name": ID_KEY,
                "title": "record id",
                "settings": {"type": "terms", "values": None},
                "visible_for_annotators": False,
            }
        ],
        "vectors": [],
    }


def settings_path(path: Path) -> Path:
    return path.with_suffix(".settings.json")


def write_argilla(path: Path, located: Iterable[Located], mapping: object) -> int:
    """Write the records JSON at ``path`` and the settings at ``settings_path(path)``."""
    rows_in = list(located)
    task = labeling_task(rows_in)
    settings = dataset_settings(task)
    rows = record_rows(rows_in, task)
    write_text_atomic(path, json.dumps(rows, ensure_ascii=False, indent=1))
    write_text_atomic(settings_path(path), json.dumps(settings, ensure_ascii=False, indent=1))
    return len(rows)


def _flat(item: dict[str, Any]) -> bool:
    return any(key.endswith(".responses") for key in item) or not isinstance(
        item.get("fields"), dict
    )


def is_argilla(data: Any) -> bool:
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(first, dict):
        return False
    return "responses" in first or "suggestions" in first or any(".respon" in k for k in first)


def _responses(item: dict[str, Any], where: str, path: str) -> list[dict[str, Any]]:
    """``[{value, user_id, status}]`` of our question, from either export shape."""
    if _flat(item):
        values = item.get(f"{QUESTION}.responses") or []
        users = item.get(f"{QUESTION}.responses.users", [None] * len(values))
        states = item.get(f"{QUESTION}.responses.status", [None] * len(values))
        lists = all(isinstance(x, list) for x in (values, users, states))
        if not (lists and len(values) == len(users) == len(states)):
            raise InputFileError(
                path,
                f"{where}: {QUESTION}.responses, .users and .status must be lists of one length",
            )
        rows = zip(values, users, states, strict=True)
        return [{"value": v, "user_id": u, "status": s} for v, u, s in rows]
    responses = item.get("responses") or {}
    if not isinstance(responses, dict):
        raise InputFileError(path, f"{where}: 'responses' is not an object of questions")
    answers = responses.get(QUESTION)
    if answers is None and len(responses) == 1:
        answers = next(iter(responses.values()))
    if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
        if answers is None:
            return []
        raise InputFileError(path, f"{where}: responses.{QUESTION} is not a list of responses")
    return answers


def _suggested(item: dict[str, Any]) -> str | None:
    if _flat(item):
        value = item.get(f"{QUESTION}.suggestion")
    else:
        entry = (item.get("suggestions") or {}).get(QUESTION)
        value = entry.get("value") if isinstance(entry, dict) else None
    return None if value is None else str(value)


def _record_id(item: dict[str, Any]) -> Any:
    metadata = item.get("metadata")
    holder: dict[str, Any] = metadata if isinstance(metadata, dict) else item
    return holder.get(ID_KEY) or item.get("id")


def _answer(answer: dict[str, Any], where: str, path: str) -> tuple[Status, str | None, str | None]:
    status = answer.get("status") or "submitted"
    if status not in STATUSES:
        raise InputFileError(
            path, f"{where}: status {status!r} is not one of {', '.join(STATUSES)}"
        )
    value = answer.get("value")
    if isinstance(value, list):
        raise InputFileError(path, f"{where}: a multi-label answer {value!r}; give one label")
    user = answer.get("user_id")
    by = None if user in (None, "", "None") else f"argilla:{user}"
    return status, None if value is None else str(value), by


def read_argilla(data: Any, path: str) -> AnnotationFile:
    """The annotations in an Argilla records export, and the number of drafts left out."""
    if not isinstance(data, list):
        raise InputFileError(path, "an Argilla records export is a JSON list of records")
    found: list[Annotation] = []
    drafts = 0
    for number, item in enumerate(data, start=1):
        where = f"record {number}"
        if not isinstance(item, dict):
            raise InputFileError(path, f"{where}: not a record object")
        record_id = _record_id(item)
        if record_id is None:
            raise InputFileError(path, f"{where}: no id and no metadata.{ID_KEY}")
        where += f" (id {record_id})"
        suggested = _suggested(item)
        for index, answer in enumerate(_responses(item, where, path), start=1):
            spot = f"{where}, response {index}"
            status, label, by = _answer(answer, spot, path)
            if status == "draft":
                drafts += 1
                continue
            found.append(Annotation(str(record_id), status, spot, label, suggested, by))
    return AnnotationFile(found, drafts, len(data))
