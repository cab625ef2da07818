"""The QA experiment spec: ``refinery experiment s3 --spec FILE`` on any extractive QA dataset.

A spec with ``task_type: qa`` names the real files and their columns, the model, the span model
and the rounds; ``loop.qa_experiment`` runs it like the ``adversarial_qa`` preset::

    task_type: qa
    name: my-qa
    llm: {temperature: 0.9}
    data:
      validation: data/dev.jsonl        # .jsonl, .csv or .parquet, relative to the spec
      test: data/test.jsonl
      columns: {context: passage, question: query, answer: gold}
    loop:
      small_model: {kind: transformer, epochs: 2, learning_rate: 5.0e-5, batch_size: 16,
                    max_length: 256}
      rounds: 2
      k: 2

The answer column holds the answer text, or SQuAD's ``{text: [...], answer_start: [...]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from datarefinery.config import LlamaCppConfig, LLMConfig, StrictModel, read_spec_file
from datarefinery.config import validate_spec as validate
from datarefinery.loop.qa import QA_SMALL_MODEL
from datarefinery.models.smallmodel import TransformerOptions

SHAPE = "an S3 spec is a mapping (task:, synthesis:, data: ... or task_type: qa, data: ...)"


class QADataSpec(StrictModel):
    """The real QA files. ``columns`` maps ``context``, ``question`` and ``answer`` to the files'
    column names (default: ``context``, ``question``, and ``answers`` or ``answer``).
    """

    validation: str
    test: str
    columns: dict[Literal["context", "question", "answer"], str] = Field(default_factory=dict)
    validation_limit: int | None = Field(default=None, ge=2)
    test_limit: int | None = Field(default=None, ge=1)


class QALoopOptions(StrictModel):
    small_model: TransformerOptions = Field(default_factory=lambda: QA_SMALL_MODEL)
    rounds: int = Field(default=2, ge=0, le=100)
    k: int = Field(default=2, ge=1, le=20, description="new questions per example")


class QAExperimentSpec(StrictModel):
    task_type: Literal["qa"]
    name: str = "qa"
    seed: int = 0
    llm: LLMConfig = Field(default_factory=LlamaCppConfig)
    data: QADataSpec
    loop: QALoopOptions = Field(default_factory=QALoopOptions)


def is_qa_spec(path: Path) -> bool:
    """Whether the spec file says ``task_type: qa``."""
    data, _ = read_spec_file(path, SHAPE)
    return data.get("task_type") == "qa"


def load_qa_spec(path: Path) -> QAExperimentSpec:
    """The QA spec of ``path``, its file paths made absolute (read against the spec's folder);
    errors name file, line and field.
    """
    data, lines = read_spec_file(path, SHAPE)
    spec = validate(QAExperimentSpec, data, str(path), lines)
    base = path.parent

    def absolute(value: str) -> str:
        return str(Path(value) if Path(value).is_absolute() else (base / value).resolve())

    update: dict[str, Any] = {
        "validation": absolute(spec.data.validation),
        "test": absolute(spec.data.test),
    }
    return spec.model_copy(update={"data": spec.data.model_copy(update=update)})
