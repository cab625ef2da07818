"""What the annotation-tool formats share: the labeling task of an export, and a person's
annotation read back from a tool's file, in one tool-neutral shape.

Export side: ``labeling_task`` finds the label field, the labels a person may choose and the
text fields to show. In a run directory they come from the task in ``manifest.json`` (so a
label no record has yet can still be chosen); for a plain records file, from the records.
``suggestion`` is what a record's label carries as a pre-annotation: the label, a score
(``label_agreement`` when a ``label`` step left one) and the agent (model or step).

Import side: each tool module turns its file into ``Annotation``s. ``status`` follows Argilla's
words: ``submitted`` (a label was given), ``discarded`` (the person set the record aside:
Label Studio's "skip", which it stores as ``was_cancelled``) or ``draft`` (not final, ignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from datarefinery.errors import InputFileError
from datarefinery.records import Record

Located = tuple[Record, tuple[str, int] | None]
Status = Literal["submitted", "discarded", "draft"]

# Where our record id travels through a tool: Label Studio ``data`` and Argilla ``metadata``.
ID_KEY = "refinery_id"
SCORE_NAMES = ("label_agreement", "confidence")


@dataclass(frozen=True)
class LabelingTask:
    label_field: str
    labels: tuple[str, ...]
    text_fields: tuple[str, ...]


@dataclass(frozen=True)
class Suggestion:
    label: str | None
    score: float | None
    agent: str


@dataclass(frozen=True)
class Annotation:
    """One person's answer on one record, as a tool exported it. ``where`` says where in the
    file it is (``task 3``, ``record 7``), for error messages; ``by`` is ``None`` when the file
    does not say who.
    """

    record_id: str
    status: Status
    where: str
    label: str | None = None
    suggested: str | None = None
    by: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class AnnotationFile:
    """What a tool's export holds: the final answers, the drafts left out, how many items."""

    annotations: list[Annotation]
    drafts: int
    items: int


def _manifest_task(located: Sequence[Located]) -> dict[str, Any]:
    where = next((w for _, w in located if w is not None), None)
    if where is None:
        return {}
    # A run's records file: its dataset.jsonl, or a step's committed shard (OUT/steps/NN-x/).
    folder = Path(where[0]).parent
    if folder.parent.name == "steps":
        folder = folder.parent.parent
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return {}
    try:
        task = json.loads(manifest.read_text(encoding="utf-8")).get("spec", {}).get("task")
    except (json.JSONDecodeError, AttributeError):
        return {}
    return task if isinstance(task, dict) else {}


def labeling_task(located: Sequence[Located]) -> LabelingTask:
    """The label field, labels and text fields of ``located`` (see the module docstring)."""
    task = _manifest_task(located)
    declared_fields = task.get("fields")
    fields: dict[str, Any] = declared_fields if isinstance(declared_fields, dict) else {}
    label_field = next(
        (n for n, f in fields.items() if isinstance(f, dict) and f.get("type") == "label"),
        "label",
    )
    declared = task.get("labels") or []
    labels = [str(name) for name in declared]
    for record, _ in located:
        value = record.fields.get(label_field)
        if value is not None and str(value) not in labels:
            labels.append(str(value))
    texts = [n for n in fields if n != label_field]
    for record, _ in located:
        texts += [
            n
            for n, v in record.fields.items()
            if n != label_field and isinstance(v, str) and n not in texts
        ]
    if not texts:
        raise InputFileError(
            next((w[0] for _, w in located if w is not None), "records"),
            "no text field to show the annotators (every field is the label or not text)",
        )
    return LabelingTask(label_field, tuple(labels), tuple(texts))


def suggestion(record: Record, task: LabelingTask) -> Suggestion:
    value = record.fields.get(task.label_field)
    score = next(
        (
            float(record.scores[n])
            for n in SCORE_NAMES
            if isinstance(record.scores.get(n), (int, float)) and 0 <= float(record.scores[n]) <= 1
        ),
        None,
    )
    # A ``label`` step leaves the record's own provenance alone and says who labeled it here.
    labeled_by = record.provenance.conditioning.get("labeled_by")
    labeler = labeled_by.get("model") if isinstance(labeled_by, dict) else None
    agent = str(labeler or record.provenance.model or record.provenance.step or "datarefinery")
    return Suggestion(None if value is None else str(value), score, agent)


def shown_fields(record: Record, task: LabelingTask) -> dict[str, str]:
    """The text fields of ``record`` as the tools show them (text; a missing one as empty)."""
    shown: dict[str, str] = {}
    for name in task.text_fields:
        value = record.fields.get(name)
        shown[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return shown


def load_json(path: Path) -> Any:
    """The JSON in ``path``: one document, or JSON lines (as ``datasets`` and some exports
    write) read as a list.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(str(path), "no such file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole:
        rows: list[Any] = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputFileError(
                    str(path), f"not JSON: {whole.msg} (column {whole.colno})", line=whole.lineno
                ) from None
        return rows


def sorted_by_time(annotations: Iterable[Annotation]) -> list[Annotation]:
    """Oldest first (unknown times first, in file order), so the newest decision is stored last
    and is the one in force.
    """
    return sorted(annotations, key=lambda a: a.at or "")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (plus a final newline) through a temporary name and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
