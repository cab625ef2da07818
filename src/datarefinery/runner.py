"""Running a spec into a run directory: the Python API behind ``refinery run``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from datarefinery.config import LoadedSpec, load_spec, spec_from_dict
from datarefinery.errors import BackendError, BudgetExceededError, UsageError
from datarefinery.evaluate.run_diversity import summarize as summarize_diversity
from datarefinery.executors.local import LocalExecutor, NullProgress, ProgressSink, StepSummary
from datarefinery.io.read import read_records
from datarefinery.io.write import write_jsonl_atomic
from datarefinery.llm.base import Backend, Usage
from datarefinery.llm.engine import Engine
from datarefinery.llm.factory import make_engine
from datarefinery.pipeline import Pipeline
from datarefinery.records import Record
from datarefinery.rundir import RunDir, ShardStats, StepDir
from datarefinery.steps.base import StepContext

_VERSIONED = ("datarefinery", "llama-cpp-python", "pydantic", "httpx", "pyarrow", "jinja2")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


@dataclass
class RunResult:
    """What a run produced. ``status`` is ``complete`` or ``stopped`` (budget reached or the model
    became unreachable; rerunning the same command resumes)."""

    run_dir: Path
    status: str
    message: str = ""
    steps: list[StepSummary] = field(default_factory=list)
    dataset_size: int = 0
    rejected_size: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    seconds: float = 0.0
    manifest: dict[str, Any] = field(default_factory=dict)

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
    fresh: bool = False,
    progress: ProgressSink | None = None,
    backend: Backend | None = None,
    executor: str | LocalExecutor = "local",
    address: str | None = None,
    diversity: bool = True,
) -> RunResult:
    """Run ``spec`` (a YAML path, a mapping, or a loaded spec) into the run directory ``out``.

    Running again with the same spec and ``out`` resumes: committed shards are skipped and answered
    model calls come from the response cache. ``backend`` replaces the spec's backend (tests use a
    ``ScriptedBackend``); its identity goes into the cache key like any other. ``diversity`` adds
    the quick diversity summary of the dataset to the manifest (a few seconds: it loads the
    sentence-embedding model).

    ``executor`` is ``"local"`` (this machine), ``"ray"`` (a Ray cluster at ``address``; needs the
    ``ray`` extra) or an executor object (``RayExecutor(workers=4)``). Both give the same dataset
    for the same spec, and a run started by one can be resumed by the other.
    """
    if isinstance(spec, LoadedSpec):
        loaded = spec
    elif isinstance(spec, dict):
        loaded = spec_from_dict(spec)
    else:
        loaded = load_spec(spec)
    chosen = make_executor(executor, address)
    return asyncio.run(
        _run(loaded, Path(out), fresh, progress or NullProgress(), backend, chosen, diversity)
    )


def make_executor(executor: str | LocalExecutor, address: str | None = None) -> LocalExecutor:
    if isinstance(executor, LocalExecutor):
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
    progress: ProgressSink,
    backend: Backend | None,
    executor: LocalExecutor,
    diversity: bool,
) -> RunResult:
    spec = loaded.spec
    pipeline = Pipeline.from_spec(loaded)
    run_dir = RunDir.open(out, spec.spec_hash(), fresh=fresh)
    previous = run_dir.read_manifest() or {}
    spent_before = Usage(*previous.get("usage_spent", [0, 0]))
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    engine: Engine | None = None
    if pipeline.uses_llm:
        engine = make_engine(
            spec.llm, backend=backend, cache_path=run_dir.cache_path, spent=spent_before
        )

    progress.bind_engine(engine.stats if engine else None)
    manifest: dict[str, Any] = {
        "name": spec.name,
        "status": "running",
        "spec_hash": spec.spec_hash(),
        "spec_path": loaded.source,
        "spec": spec.model_dump(mode="json"),
        "versions": versions(),
        "executor": executor.name,
        "model": _model_info(engine),
        "sessions": [*previous.get("sessions", []), {"started": started_at}],
        "usage_spent": [spent_before.prompt_tokens, spent_before.completion_tokens],
    }
    summaries: list[StepSummary] = []

    def save_manifest(status: str = "running", message: str = "") -> None:
        usage = engine.budget.spent if engine else spent_before
        manifest.update(
            status=status,
            message=message,
            steps=[s.to_dict() for s in summaries],
            usage_spent=[usage.prompt_tokens, usage.completion_tokens],
            tokens={
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "total": usage.total_tokens,
            },
            cost_usd=round(engine.budget.cost_usd, 6) if engine else 0.0,
            engine=engine.stats.to_dict() if engine else None,
        )
        manifest["sessions"][-1]["seconds"] = round(time.perf_counter() - started, 3)
        run_dir.write_manifest(manifest)

    save_manifest()
    status, message = "complete", ""
    try:
        await executor.open(loaded, engine)
        source: Iterable[Record] | None = None
        for index, step in enumerate(pipeline.steps):
            name = pipeline.names[index]
            ctx = StepContext(
                name=name,
                index=index,
                seed=spec.seed,
                task=spec.task,
                llm=spec.llm,
                engine=engine,
                base_dir=loaded.base_dir,
                on_record=lambda kept, rejected: progress.advance(1, kept, rejected),
            )
            step.setup(ctx)
            step_dir = run_dir.step_dir(index, name)
            if source is None:
                source = _first_source(loaded, pipeline)
            total = _count_hint(source)
            progress.step_started(name, total)
            complete = step_dir.complete_shards()
            if complete is not None and not step.stateful:
                summary = _summary_from_disk(name, step.name, step_dir, complete)
                progress.advance(
                    summary.records_in, summary.records_out, sum(summary.rejected.values())
                )
            else:
                summary = await executor.run_step(
                    step,
                    step_dir,
                    source,
                    shard_size=spec.shard_size,
                    progress=progress,
                    on_commit=save_manifest,
                )
            summaries.append(summary)
            progress.step_finished(name)
            source = _step_outputs(step_dir)
    except BudgetExceededError as exc:
        status, message = "stopped", str(exc)
    except BackendError as exc:
        status, message = (
            "stopped",
            (
                f"the model backend failed: {exc}. Finished shards and every answered call are "
                "kept; run the same command again to resume."
            ),
        )
    except BaseException:
        save_manifest(
            "interrupted", "the run was interrupted; run the same command again to resume"
        )
        await executor.close()
        if engine is not None:
            await engine.aclose()
        raise
    await executor.close()

    dataset_size = rejected_size = 0
    if status == "complete":
        last = run_dir.step_dir(len(pipeline.steps) - 1, pipeline.names[-1])
        dataset_size = write_jsonl_atomic(
            run_dir.dataset_path, (r.to_json() for r in last.all_records())
        )
        rejected_size = write_jsonl_atomic(run_dir.rejected_path, _all_rejected(run_dir, pipeline))
        if diversity:
            manifest["diversity"] = summarize_diversity(run_dir.dataset_path, spec.task)
    manifest["counts"] = {
        "dataset": dataset_size,
        "rejected": rejected_size,
        "rejected_by_reason": _rejected_by_reason(summaries),
    }
    manifest["sessions"][-1]["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    save_manifest(status, message)
    if engine is not None:
        await engine.aclose()
    usage = engine.budget.spent if engine else Usage()
    return RunResult(
        run_dir=out,
        status=status,
        message=message,
        steps=summaries,
        dataset_size=dataset_size,
        rejected_size=rejected_size,
        usage=usage,
        cost_usd=engine.budget.cost_usd if engine else 0.0,
        seconds=time.perf_counter() - started,
        manifest=manifest,
    )


def _model_info(engine: Engine | None) -> dict[str, Any] | None:
    if engine is None:
        return None
    return {"backend": engine.backend.kind, "identity": engine.backend.identity}


def _first_source(loaded: LoadedSpec, pipeline: Pipeline) -> Iterable[Record]:
    first = pipeline.steps[0]
    if first.is_source:
        return first.plan()
    spec = loaded.spec
    assert spec.input is not None
    path = Path(spec.input.path)
    if not path.is_absolute():
        path = loaded.base_dir / path
    return read_records(
        path,
        format=spec.input.format,
        required=sorted(pipeline.input_required),
        limit=spec.input.limit,
    )


def _count_hint(source: Iterable[Record]) -> int | None:
    return len(source) if isinstance(source, list) else None


def _step_outputs(step_dir: StepDir) -> Iterator[Record]:
    yield from step_dir.all_records()


def _summary_from_disk(name: str, step: str, step_dir: StepDir, shards: int) -> StepSummary:
    summary = StepSummary(name=name, step=step)
    for index in range(shards):
        summary.add(step_dir.shard_stats(index))
    summary.shards_resumed = shards
    return summary


def _all_rejected(run_dir: RunDir, pipeline: Pipeline) -> Iterator[str]:
    for index, name in enumerate(pipeline.names):
        step_dir = run_dir.step_dir(index, name)
        shards = step_dir.complete_shards() or 0
        for shard in range(shards):
            yield from step_dir.rejected_lines(shard)


def _rejected_by_reason(summaries: list[StepSummary]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for summary in summaries:
        for reason, count in summary.rejected.items():
            key = f"{summary.name}:{reason}"
            totals[key] = totals.get(key, 0) + count
    return totals


def load_manifest(run_dir: str | Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(run_dir) / RunDir.MANIFEST).read_text(encoding="utf-8"))
    return data


__all__ = ["RunResult", "ShardStats", "load_manifest", "run", "versions"]
