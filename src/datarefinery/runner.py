"""Running a spec into a run directory: the Python API behind ``refinery run``."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from datarefinery.config import (
    LlamaCppConfig,
    LLMConfig,
    LLMOverride,
    LoadedSpec,
    OpenAIConfig,
    load_spec,
    spec_from_dict,
)
from datarefinery.errors import RunDirError, UsageError
from datarefinery.evaluate.run_diversity import DatasetSample, summarize_sample
from datarefinery.executors.base import Executor
from datarefinery.executors.local import LocalExecutor
from datarefinery.executors.progress import ProgressSink
from datarefinery.fingerprints import Fingerprint, check_unchanged, fingerprints, named_files
from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.base import Backend, Usage
from datarefinery.llm.factory import require_installed
from datarefinery.manifest import (
    Counts,
    DiversitySummary,
    LoopManifest,
    Manifest,
    ReviewWait,
    ShardStats,
    StepSummary,
)
from datarefinery.pipeline import Pipeline
from datarefinery.prompts.render import shipped_templates_digest
from datarefinery.redact import public_spec
from datarefinery.rundir import RunDir, StepDir
from datarefinery.surrogate_key import open_surrogate_key

_VERSIONED = ("datarefinery", "llama-cpp-python", "pydantic", "httpx", "pyarrow", "jinja2")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


@dataclass
class RunResult:
    """What a run produced. ``status`` is ``complete``, ``stopped`` (budget reached or the model
    became unreachable) or ``waiting_for_review`` (a ``review`` step has records no person has
    decided: decide them with ``refinery review OUT``); rerunning the same command resumes.
    """

    run_dir: Path
    status: str
    message: str = ""
    steps: list[StepSummary] = field(default_factory=list)
    dataset_size: int = 0
    rejected_size: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    seconds: float = 0.0
    manifest: Manifest | None = None

    @property
    def dataset_path(self) -> Path:
        return self.run_dir / "dataset.jsonl"

    @property
    def rejected_path(self) -> Path:
        return self.run_dir / "rejected.jsonl"


def run(
    spec: str | Path | dict[str, Any] | LoadedSpec,
    out: str | Path,
    *,
    llm: LLMOverride | None = None,
    fresh: bool = False,
    progress: ProgressSink | None = None,
    backend: Backend | None = None,
    executor: str | Executor = "local",
    address: str | None = None,
    diversity: bool = True,
) -> RunResult:
    """Run ``spec`` (a YAML path, a mapping, or a loaded spec) into the run directory ``out``.

    Running again with the same spec and ``out`` resumes: committed shards are skipped and answered
    model calls come from the response cache. ``llm`` overrides the spec's ``llm:`` block: a partial
    block (``{"model": "qwen", "backend": "openai", "base_url": ...}``) or an ``LLMConfig``; its
    fields replace the spec's (``config.llm_override``), and the effective block is part of the
    run's identity, so resuming with another model is refused (use ``fresh``). ``backend``
    replaces the spec's backend (tests use a ``ScriptedBackend``); its identity goes into the
    cache key like any other. ``diversity`` adds the quick diversity summary of the dataset to the
    manifest (a few seconds: it loads the sentence-embedding model).

    ``executor`` is ``"local"`` (this machine), ``"ray"`` (a Ray cluster at ``address``; needs the
    ``ray`` extra) or an executor object (``RayExecutor(workers=4)``). Both give the same dataset
    for the same spec, and a run started by one can be resumed by the other.
    """
    loaded = resolve_spec(spec, llm)
    chosen = make_executor(executor, address)
    return asyncio.run(_run(loaded, Path(out), fresh, progress, backend, chosen, diversity))


def resolve_spec(
    spec: str | Path | dict[str, Any] | LoadedSpec, llm: LLMOverride | None = None
) -> LoadedSpec:
    """``spec`` as a loaded spec (a YAML path, a mapping or one already loaded), with ``llm``
    over its model block.
    """
    if isinstance(spec, LoadedSpec):
        loaded = spec
    elif isinstance(spec, dict):
        loaded = spec_from_dict(spec)
    else:
        loaded = load_spec(spec)
    return loaded.with_llm(llm)


def make_executor(executor: str | Executor, address: str | None = None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor == "local":
        if address is not None:
            raise UsageError("--address is for the Ray executor: add --executor ray")
        return LocalExecutor()
    if executor == "ray":
        from datarefinery.executors.ray import RayExecutor

        return RayExecutor(address)
    raise UsageError(f"unknown executor {executor!r}: use 'local' or 'ray'")


async def _run(
    loaded: LoadedSpec,
    out: Path,
    fresh: bool,
    progress: ProgressSink | None,
    backend: Backend | None,
    executor: Executor,
    diversity: bool,
) -> RunResult:
    # Why long: open and check the run directory, run the steps, write the outputs and the final
    # manifest: a linear sequence whose parts share the run directory and manifest
    spec = loaded.spec
    pipeline = Pipeline.from_spec(loaded)
    if backend is None and pipeline.uses_llm:
        require_installed([spec.llm, *_step_llm_blocks(pipeline)])
    run_dir = RunDir.open(out, spec.spec_hash(), fresh=fresh)
    inputs = _checked_inputs(loaded, run_dir)
    settings, templates = _checked_settings(pipeline, run_dir)
    surrogate_key = (
        open_surrogate_key(spec.surrogate_key, base_dir=loaded.base_dir, run_dir=run_dir.path)
        if pipeline.uses_surrogate_key
        else None
    )
    started = time.perf_counter()
    manifest = Manifest(
        name=spec.name,
        spec_hash=spec.spec_hash(),
        spec_path=loaded.source,
        spec=public_spec(spec.model_dump(mode="json")),
        versions=versions(),
        inputs=inputs,
        step_settings=settings,
        templates=templates,
    )
    manifest.begin_session(run_dir.previous)
    outcome = await executor.run(
        loaded,
        pipeline,
        run_dir,
        manifest,
        backend=backend,
        progress=progress,
        surrogate_key=surrogate_key,
    )
    dataset_size = rejected_size = 0
    if outcome.status == "complete":
        last = run_dir.step_dir(len(pipeline.steps) - 1, pipeline.names[-1])
        sample = DatasetSample() if diversity else None
        dataset_size = write_jsonl_atomic(run_dir.dataset_path, _lines(last, sample))
        rejected_size = write_jsonl_atomic(run_dir.rejected_path, _all_rejected(run_dir, pipeline))
        if sample is not None:
            manifest.diversity = DiversitySummary.model_validate(
                summarize_sample(sample, spec.task)
            )
    manifest.counts = Counts(
        dataset=dataset_size,
        rejected=rejected_size,
        rejected_by_reason=manifest.rejected_by_reason(),
    )
    if outcome.waiting is not None:
        manifest.review = ReviewWait(step=outcome.waiting.step, waiting=outcome.waiting.waiting)
    manifest.finish_session()
    manifest.set_status(outcome.status, outcome.message)
    run_dir.write_manifest(manifest)
    return RunResult(
        run_dir=out,
        status=outcome.status,
        message=outcome.message,
        steps=manifest.steps,
        dataset_size=dataset_size,
        rejected_size=rejected_size,
        usage=outcome.usage,
        cost_usd=outcome.cost_usd,
        seconds=time.perf_counter() - started,
        manifest=manifest,
    )


def _step_llm_blocks(pipeline: Pipeline) -> list[LLMConfig]:
    """The ``llm``-style blocks that steps' options name besides the run's (``models:``)."""
    found: list[LLMConfig] = []
    for step in pipeline.steps:
        for value in vars(step.config).values():
            items = value if isinstance(value, list) else [value]
            found.extend(item for item in items if isinstance(item, LlamaCppConfig | OpenAIConfig))
    return found


def _checked_inputs(loaded: LoadedSpec, run_dir: RunDir) -> dict[str, Fingerprint]:
    """Fingerprints of the files the spec names; on resume, refuse any that changed since the
    run began (a mix of shards made from old and new content would be silently wrong).
    """
    files = named_files(loaded.spec.model_dump(mode="json"), loaded.base_dir)
    earlier = run_dir.previous.inputs if run_dir.previous is not None else None
    current = fingerprints(files, earlier)
    if earlier is not None:  # None: a run directory from before inputs were fingerprinted
        check_unchanged(earlier, current, run_dir.path)
    return current


def _checked_settings(pipeline: Pipeline, run_dir: RunDir) -> tuple[dict[str, str], str | None]:
    """The steps' settings digests and the shipped templates' digest (``None`` when no step calls
    a model); on resume, refuse a run whose steps now have other defaults or prompts.
    """
    settings = pipeline.settings()
    templates = shipped_templates_digest() if pipeline.uses_llm else None
    previous = run_dir.previous
    if not isinstance(previous, Manifest) or previous.step_settings is None:
        return settings, templates  # a new run, or one from before settings were kept
    changed = [n for n in pipeline.names if previous.step_settings.get(n) != settings[n]]
    if changed:
        raise RunDirError(
            f"the run in {run_dir.path} was made with other settings of step(s) "
            f"{', '.join(changed)}: their options, with every default filled in, differ from "
            "this version's (an upgrade can change a default the spec does not set). Resuming "
            "would mix records made under both. Run again with --fresh to start over, or choose "
            "another -o; set the option in the spec to pin it."
        )
    if previous.templates is not None and templates is not None and previous.templates != templates:
        raise RunDirError(
            f"the run in {run_dir.path} was made with other shipped prompt templates (an upgrade "
            "changed a prompt): resuming would mix replies to the old and the new prompts. Run "
            "again with --fresh to start over, or choose another -o; a step's 'template:' option "
            "can point at a copy of the prompt you want to keep."
        )
    return settings, templates


def _lines(step_dir: StepDir, sample: DatasetSample | None) -> Iterator[str]:
    """The last step's records as dataset lines; the diversity sample is drawn in the same pass,
    so the finished dataset is not read again for it.
    """
    for record in step_dir.all_records():
        if sample is not None:
            sample.add(record.to_dict())
        yield record.to_json()


def _all_rejected(run_dir: RunDir, pipeline: Pipeline) -> Iterator[str]:
    for index, name in enumerate(pipeline.names):
        step_dir = run_dir.step_dir(index, name)
        shards = step_dir.complete_shards() or 0
        for shard in range(shards):
            yield from step_dir.rejected_lines(shard)


def load_manifest(run_dir: str | Path) -> Manifest | LoopManifest:
    """The manifest of a run directory (``FileNotFoundError`` when it has none). Its attributes
    are typed; ``manifest["key"]`` reads the JSON form, as when this returned a dict.
    """
    path = Path(run_dir) / RunDir.MANIFEST
    manifest = RunDir(Path(run_dir)).read_manifest()
    if manifest is None:
        raise FileNotFoundError(path)
    return manifest


__all__ = ["RunResult", "ShardStats", "load_manifest", "run", "versions"]
