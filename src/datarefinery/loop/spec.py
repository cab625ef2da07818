"""The S3 spec: a task, a model, the seed synthesis steps, the small real data, and the loop.

It is a run spec's sibling: ``task``, ``llm``, ``seed`` and ``shard_size`` mean the same, and
``synthesis`` is a run spec's ``steps`` (the first one generates). ``data`` names the real
validation file (errors are found there) and the real test file (only measured, never used to
choose anything but the report). ``loop`` says how rounds are run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from datarefinery.config import (
    Lines,
    LlamaCppConfig,
    LLMConfig,
    LLMOverride,
    LoadedSpec,
    RunSpec,
    StrictModel,
    TaskSpec,
    format_validation_error,
    line_of,
    override_llm,
    read_spec_file,
    spec_hash,
    validate_spec,
)
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.io.read import read_numbered
from datarefinery.models.smallmodel import (
    BUNDLED_WEIGHTS,
    LinearModelOptions,
    SmallModelOptions,
    TransformerOptions,
)
from datarefinery.records import Provenance, Record


class RealDataSpec(StrictModel):
    """Real labelled files. ``label_field`` is the file's column holding the label, mapped to the
    task's label names through ``label_map`` (values not in the map are used as they are);
    ``columns`` maps a task field to a differently named column. ``train`` is a real training
    split: the loop never reads it; ``refinery experiment s3`` trains its gold baseline on it.
    """

    validation: str
    test: str | None = None
    train: str | None = None
    train_limit: int | None = Field(default=None, ge=2)
    label_field: str = "label"
    label_map: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, str] = Field(default_factory=dict)
    validation_limit: int | None = Field(default=None, ge=2)
    test_limit: int | None = Field(default=None, ge=1)


class LoopSpec(StrictModel):
    """How the loop runs: ``rounds`` extrapolation rounds after the seed round, stopping early
    after ``patience`` rounds without a better validation accuracy, or when ``max_records`` is
    reached. ``source: all`` extrapolates from the whole validation set instead of the errors
    (the GoldGen baseline). ``examples_per_round`` caps the examples extrapolated per round (a
    seeded sample); ``extrapolate`` holds the options of the ``extrapolate`` step.
    ``small_model`` is a kind (``tfidf-lr``, ``embedding-lr``, ``transformer``) or a mapping of
    its options (``kind:`` and, for the linear kinds ``c``, for ``transformer`` ``weights``,
    ``epochs``, ``learning_rate``, ``batch_size``, ``max_length``).
    """

    small_model: SmallModelOptions = Field(
        default_factory=lambda: LinearModelOptions(kind="tfidf-lr")
    )
    rounds: int = Field(default=2, ge=0, le=100)
    patience: int = Field(default=1, ge=1, le=100)
    source: Literal["errors", "all"] = "errors"
    examples_per_round: int | None = Field(default=None, ge=1)
    max_records: int | None = Field(default=None, ge=1)
    extrapolate: dict[str, Any] = Field(default_factory=dict)

    @field_validator("small_model", mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        # ``small_model: tfidf-lr`` is short for ``small_model: {kind: tfidf-lr}``.
        return {"kind": value} if isinstance(value, str) else value


class S3Spec(StrictModel):
    name: str = "s3"
    seed: int = 0
    task: TaskSpec
    llm: LLMConfig = Field(default_factory=LlamaCppConfig)
    synthesis: list[dict[str, dict[str, Any] | None]] = Field(min_length=1)
    data: RealDataSpec
    loop: LoopSpec = Field(default_factory=LoopSpec)
    shard_size: int = Field(default=16, ge=1, le=1_000_000)

    def spec_hash(self) -> str:
        """Identity of what the loop produces (execution-only llm settings left out)."""
        return spec_hash(self, _earlier_form)


def _earlier_form(data: dict[str, Any]) -> None:
    """A spec that uses none of the options added with ``experiment s3 --spec`` (a real
    ``train`` split, small-model options) hashes as before, so its S3 run folders resume.
    """
    for key in ("train", "train_limit"):
        if data["data"].get(key) is None:
            data["data"].pop(key, None)
    small = data["loop"]["small_model"]
    kind = small["kind"]
    options = LinearModelOptions if kind != "transformer" else TransformerOptions
    if small == options(kind=kind).model_dump(mode="json"):
        data["loop"]["small_model"] = kind


class LoadedS3Spec:
    """A validated S3 spec and where it came from (relative paths are relative to its folder)."""

    def __init__(self, spec: S3Spec, source: str) -> None:
        self.spec = spec
        self.source = source
        self.base_dir = Path(source).parent if source != "<spec>" else Path.cwd()

    def with_llm(self, override: LLMOverride | None) -> LoadedS3Spec:
        """This spec with ``override`` merged over its ``llm:`` block (part of the loop's hash)."""
        if override is None:
            return self
        llm = override_llm(self.spec.llm, override)
        return LoadedS3Spec(self.spec.model_copy(update={"llm": llm}), self.source)

    def seed_spec(self) -> LoadedSpec:
        """The seed synthesis as a run spec (for checks; the loop adds its own llm settings)."""
        spec = self.spec
        run_spec = RunSpec(
            name=spec.name, seed=spec.seed, task=spec.task, llm=spec.llm, steps=spec.synthesis
        )
        return LoadedSpec(run_spec, self.source, {})

    @property
    def k(self) -> int:
        """Records extrapolated per example."""
        from datarefinery.steps.synthesize.extrapolate import ExtrapolateConfig

        return ExtrapolateConfig.model_validate(self.spec.loop.extrapolate).k

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    def small_model(self) -> LinearModelOptions | TransformerOptions:
        """``loop.small_model`` with a weights folder relative to the spec made absolute."""
        options = self.spec.loop.small_model
        if isinstance(options, TransformerOptions) and options.weights != BUNDLED_WEIGHTS:
            weights = str(self.path(options.weights).resolve())
            return options.model_copy(update={"weights": weights})
        return options


def load_s3_spec(spec: str | Path | dict[str, Any], *, source: str = "<spec>") -> LoadedS3Spec:
    """Validate an S3 spec given as a YAML path or a mapping; errors name file, line and field.
    A mapping's relative paths are read against the folder of ``source`` (a spec file it was
    made from), else the working directory.
    """
    lines: Lines = {}
    if isinstance(spec, dict):
        data = spec
    else:
        source = str(Path(spec))
        data, lines = read_spec_file(
            Path(spec), "an S3 spec is a mapping (task:, synthesis:, data: ...)"
        )
    validated = validate_spec(S3Spec, data, source, lines)
    if validated.task.label_field is None:
        raise ConfigError(f"{source}, field task.fields: S3 trains a classifier; add a label field")
    loaded = LoadedS3Spec(validated, source)
    options = loaded.small_model()
    if (
        isinstance(options, TransformerOptions)
        and options.weights != BUNDLED_WEIGHTS
        and not (Path(options.weights) / "config.json").is_file()
    ):
        line = line_of(lines, ("loop", "small_model", "weights"))
        raise ConfigError(
            f"{options.weights} is not a local Hugging Face model folder (no config.json); "
            f"give such a folder, or '{BUNDLED_WEIGHTS}' for the bundled all-MiniLM-L6-v2",
            where=source + (f", line {line}" if line else "") + ", field loop.small_model.weights",
        )
    # Checked now, not when round 1 starts after the seed synthesis: the extrapolate options and
    # the synthesis steps (names, options, fields).
    from datarefinery.pipeline import Pipeline
    from datarefinery.steps.synthesize.extrapolate import ExtrapolateConfig

    try:
        ExtrapolateConfig.model_validate(validated.loop.extrapolate)
    except ValidationError as exc:
        raise format_validation_error(exc, source, lines, ("loop", "extrapolate")) from None
    Pipeline.from_spec(loaded.seed_spec())
    return loaded


def load_real(
    path: Path, task: TaskSpec, data: RealDataSpec, *, limit: int | None = None
) -> list[Record]:
    """A real labelled file as task records (label mapped to the task's label names)."""
    label_field = task.label_field
    assert label_field is not None
    records = []
    for line, row in read_numbered(path, limit=limit):
        fields: dict[str, Any] = {}
        for name in task.content_fields:
            column = data.columns.get(name, name)
            if column not in row.fields:
                raise InputFileError(str(path), "missing", line=line, field=column)
            fields[name] = row.fields[column]
        if data.label_field not in row.fields:
            raise InputFileError(str(path), "missing", line=line, field=data.label_field)
        raw = str(row.fields[data.label_field])
        label = data.label_map.get(raw, raw)
        if label not in task.labels:
            raise InputFileError(
                str(path),
                f"label {raw!r} is not one of the task's labels {list(task.labels)} "
                "(map it with data.label_map)",
                line=line,
                field=data.label_field,
            )
        fields[label_field] = label
        records.append(Record(id=row.id, fields=fields, provenance=Provenance(source=str(path))))
    if not records:
        raise InputFileError(str(path), "holds no records")
    return records
