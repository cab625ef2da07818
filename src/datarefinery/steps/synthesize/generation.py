"""The base of the synthesis steps: a text-writing step that makes its own input."""

from __future__ import annotations

from datarefinery.config import TaskSpec, load_seeds
from datarefinery.errors import ConfigError
from datarefinery.records import Record
from datarefinery.steps.base import C
from datarefinery.steps.writing import TextWritingStep


class GenerationStep(TextWritingStep[C]):
    """A text-writing step that makes its own input (a source step): ``plan()`` lists one job
    per unit of work.
    """

    is_source = True

    def writes(self, task: TaskSpec | None) -> set[str]:
        return set(task.fields) if task else set()

    def require_fields(self, fields: list[str], options: str) -> None:
        """Instruction-style steps write exactly ``fields``: the task has those, and no label."""
        task = self.ctx.require_task()
        if task.label_field is not None or sorted(fields) != sorted(task.content_fields):
            raise ConfigError(
                f"step {self.ctx.name} writes the fields {fields}: the task's fields must be "
                f"exactly those (it has {list(task.fields)}); set {options} to match"
            )

    def require_seeds(self, what: str) -> list[Record]:
        seeds = load_seeds(self.ctx.require_task(), self.ctx.base_dir)
        if not seeds:
            raise ConfigError(f"step {self.ctx.name} needs {what}: add 'seeds:' to the task")
        return seeds
