"""Which fields a curation step reads when the spec does not say."""

from __future__ import annotations

from datarefinery.config import TaskSpec


def chosen_fields(configured: list[str] | None, task: TaskSpec | None) -> list[str]:
    """The fields a step was given, else the task's content fields, else ``text``."""
    if configured is not None:
        return list(configured)
    return task.content_fields if task else ["text"]


def label_field_of(task: TaskSpec | None) -> str:
    """The task's label field, else ``label``."""
    return (task.label_field if task else None) or "label"
