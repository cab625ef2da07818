"""``refinery plan``: a dry run before paying.

The spec is validated and each step runs on a small sample of its input, through the run's own
engine and response cache: the first ``sample`` jobs or input records for the first step, then
what the sampled records became for each later step (so a later step's sample calls are the very
calls the run will make for those records). What every step did per record and per call is
scaled to the whole run by ``loop.estimate``.

The run directory is left marked as planned (manifest status ``planned``), holding the response
cache and no step shards or dataset; ``refinery run`` with the same spec continues in it and
answers the sampled calls from the cache.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datarefinery.config import LLMConfig, LLMOverride, LoadedSpec
from datarefinery.errors import RunDirError
from datarefinery.executors.base import first_source, step_context
from datarefinery.fingerprints import check_unchanged, fingerprints, named_files
from datarefinery.llm.base import Backend, Request, Response, Usage
from datarefinery.llm.cache import ResponseStore
from datarefinery.llm.engine import Engine, EngineStats
from datarefinery.llm.factory import make_backend, make_cache, make_engine, make_limits
from datarefinery.llm.limits import AdmissionControl, Pricing
from datarefinery.llm.pool import EnginePool
from datarefinery.loop.estimate import (
    StepEstimate,
    StepSample,
    Totals,
    budget_warnings,
    estimate_run,
    totals,
)
from datarefinery.manifest import EngineCounts, Manifest, ModelInfo
from datarefinery.pipeline import Pipeline
from datarefinery.records import Record
from datarefinery.redact import public_spec
from datarefinery.rundir import RunDir
from datarefinery.runner import resolve_spec, versions
from datarefinery.steps.base import Step
from datarefinery.surrogate_key import SurrogateKey, open_surrogate_key

PLANNED = "planned"
PROMPT_CHARS = 1200  # of each message shown; the rest is counted, not printed


@dataclass
class Plan:
    """What ``plan`` found: per step and in total, with the warnings (a budget the run would
    reach) and what the sample itself spent (counted in the run's budget, answered from the
    cache by the run).
    """

    run_dir: Path
    name: str
    sample: int
    steps: list[StepEstimate]
    total: Totals
    warnings: list[str] = field(default_factory=list)
    spent: Usage = field(default_factory=Usage)
    parallel: int = 1


def plan(
    spec: str | Path | dict[str, Any] | LoadedSpec,
    out: str | Path,
    *,
    sample: int = 3,
    llm: LLMOverride | None = None,
    backend: Backend | None = None,
) -> Plan:
    """Estimate a run of ``spec`` into ``out`` from ``sample`` records per step (see the module
    docstring). ``llm`` overrides the spec's block and ``backend`` replaces its backend, as in
    ``run``.
    """
    if sample < 1:
        raise ValueError("sample must be at least 1")
    return asyncio.run(_plan(resolve_spec(spec, llm), Path(out), sample, backend))


class _Recorder:
    """Every model call of the plan, attributed to the step being sampled."""

    def __init__(self) -> None:
        self.step = ""
        self.calls: list[Response] = []
        self.first: dict[str, Request] = {}

    def note(self, request: Request, response: Response) -> None:
        self.first.setdefault(self.step, request)
        self.calls.append(response)


class _RecordingEngine(Engine):
    recorder: _Recorder

    async def complete(self, request: Request) -> Response:
        response = await super().complete(request)
        self.recorder.note(request, response)
        return response


def _engine(
    recorder: _Recorder,
    config: LLMConfig,
    backend: Backend,
    cache: ResponseStore | None,
    admission: AdmissionControl,
) -> _RecordingEngine:
    # The run's engine options, on an engine that records its calls.
    engine = make_engine(config, backend, cache, admission, _RecordingEngine)
    engine.recorder = recorder
    return engine


class _RecordingPool(EnginePool):
    """The engines of extra model blocks, recording their calls too."""

    def __init__(
        self, recorder: _Recorder, cache: ResponseStore | None, admission: AdmissionControl
    ) -> None:
        super().__init__(cache, admission)
        self.recorder = recorder

    def engine_for(self, config: LLMConfig) -> Engine:
        key = config.model_dump_json()
        if key not in self._engines:
            backend = make_backend(config)
            self._engines[key] = _engine(self.recorder, config, backend, self.cache, self.admission)
        return self._engines[key]


@dataclass
class _Session:
    """The plan's engine, its pool and the recorder they share (no engine: no model steps)."""

    recorder: _Recorder
    engine: _RecordingEngine | None = None
    pool: _RecordingPool | None = None

    def stats(self) -> EngineStats:
        stats = EngineStats()
        if self.engine is not None:
            stats.add(self.engine.stats)
        if self.pool is not None:
            stats.add(self.pool.stats())
        return stats

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
        if self.engine is not None:
            await self.engine.aclose()


def _planned_manifest(loaded: LoadedSpec, run_dir: RunDir) -> Manifest:
    """The manifest of a planned run directory; only a new or planned one may be planned (a
    run's manifest is never turned back into a plan), and its inputs must not have changed.
    """
    spec = loaded.spec
    previous = run_dir.previous
    if previous is not None and previous.status != PLANNED:
        raise RunDirError(
            f"{run_dir.path} holds a run already (status {previous.status}): plan into a new "
            "-o, or resume that run with refinery run."
        )
    files = named_files(spec.model_dump(mode="json"), loaded.base_dir)
    earlier = previous.inputs if previous is not None else None
    inputs = fingerprints(files, earlier)
    if earlier is not None:
        check_unchanged(earlier, inputs, run_dir.path)
    manifest = Manifest(
        name=spec.name,
        status=PLANNED,
        spec_hash=spec.spec_hash(),
        spec_path=loaded.source,
        spec=public_spec(spec.model_dump(mode="json")),
        versions=versions(),
        inputs=inputs,
    )
    manifest.begin_session(previous)
    return manifest


async def _plan(loaded: LoadedSpec, out: Path, sample: int, backend: Backend | None) -> Plan:
    spec = loaded.spec
    pipeline = Pipeline.from_spec(loaded)
    run_dir = RunDir.open(out, spec.spec_hash())
    manifest = _planned_manifest(loaded, run_dir)
    session = _Session(_Recorder())
    admission = None
    if pipeline.uses_llm:
        backend = backend or make_backend(spec.llm)
        cache = make_cache(spec.llm, run_dir.cache_path)
        admission = make_limits(spec.llm, Usage(*manifest.usage_spent))
        session.engine = _engine(session.recorder, spec.llm, backend, cache, admission)
        session.pool = _RecordingPool(session.recorder, cache, admission)
        manifest.model = ModelInfo(backend=backend.kind, identity=backend.identity)
    surrogate_key = (
        open_surrogate_key(spec.surrogate_key, base_dir=loaded.base_dir, run_dir=run_dir.path)
        if pipeline.uses_surrogate_key
        else None
    )
    spent_before = manifest.usage_spent
    try:
        samples, first_input = await _sample_steps(loaded, pipeline, session, sample, surrogate_key)
    finally:
        await session.aclose()
        if admission is not None:
            spending = await admission.spending()
            manifest.record_shard(
                (spending.usage.prompt_tokens, spending.usage.completion_tokens),
                spending.cost_usd,
                EngineCounts.model_validate(session.stats().to_dict()),
            )
        manifest.finish_session()
        manifest.set_status(
            PLANNED,
            f"planned from {sample} record(s) per step; refinery run with the same spec and -o "
            "runs it here and answers the sampled calls from the cache",
        )
        run_dir.write_manifest(manifest)
    llm = spec.llm
    parallel = llm.concurrency if llm.backend == "openai" else min(llm.parallel, llm.concurrency)
    pricing = Pricing(llm.pricing.input_per_mtok, llm.pricing.output_per_mtok)
    estimates = estimate_run(pipeline.steps, samples, first_input, pricing, parallel)
    total = totals(estimates)
    warnings = [f"{s.name}: {s.failed}" for s in samples if s.failed]
    warnings += budget_warnings(total, llm.budget.max_tokens, llm.budget.max_cost_usd)
    return Plan(
        run_dir=out,
        name=spec.name,
        sample=sample,
        steps=estimates,
        total=total,
        warnings=warnings,
        spent=Usage(
            manifest.usage_spent[0] - spent_before[0], manifest.usage_spent[1] - spent_before[1]
        ),
        parallel=parallel,
    )


async def _sample_steps(
    loaded: LoadedSpec,
    pipeline: Pipeline,
    session: _Session,
    sample: int,
    surrogate_key: SurrogateKey | None,
) -> tuple[list[StepSample], int]:
    """Each step on the sample of its input: the first step's first records, then what those
    became. Returns the samples and the first step's whole input count.
    """
    samples: list[StepSample] = []
    batch: list[Record] | None = None
    first_input = 0
    for index, step in enumerate(pipeline.steps):
        name = pipeline.names[index]
        step.setup(step_context(loaded, name, index, session.engine, session.pool, surrogate_key))
        if batch is None:  # after the first step's setup: a source step plans with it
            first_input, batch = _first_sample(loaded, pipeline, sample)
        session.recorder.step = name
        picked = [batch[i] for i in spread(len(batch), sample)]
        result, batch = await _sample_step(step, name, picked, session.recorder)
        samples.append(result)
    return samples, first_input


def spread(count: int, size: int) -> list[int]:
    """``size`` indices spread evenly over ``range(count)``, from 0: a source step plans its jobs
    label by label, so the first few would all be of one label.
    """
    if count <= size:
        return list(range(count))
    return [index * count // size for index in range(size)]


def _first_sample(loaded: LoadedSpec, pipeline: Pipeline, size: int) -> tuple[int, list[Record]]:
    """The first step's input count, and its records at the ``spread`` positions (an input file
    is read twice rather than held in memory).
    """
    source = first_source(loaded, pipeline)
    if isinstance(source, list):
        return len(source), source
    count = sum(1 for _ in source)
    picks = set(spread(count, size))
    return count, [r for i, r in enumerate(first_source(loaded, pipeline)) if i in picks]


async def _sample_step(
    step: Step[Any], name: str, batch: list[Record], recorder: _Recorder
) -> tuple[StepSample, list[Record]]:
    """One step on its sample, record by record (a whole-input step: as one batch), so that each
    record's calls and time are its own. Returns the sample and the records it kept.
    """
    result = StepSample(name=name, step=step.name, uses_llm=step.uses_llm, records=len(batch))
    if not batch:
        result.failed = (
            "no sampled record reached this step, so it is estimated at 0; raise --sample"
        )
        return result, []
    groups = [batch] if step.needs_whole_input() else [[record] for record in batch]
    kept_all: list[Record] = []
    for group in groups:
        mark = len(recorder.calls)
        started = time.perf_counter()
        outputs = step.postprocess(await step.process(group))
        elapsed = time.perf_counter() - started
        calls = recorder.calls[mark:]
        kept = [o for o in outputs if isinstance(o, Record)]
        kept_all.extend(kept)
        # A cached answer costs the run what it cost when it was made: its recorded latency.
        elapsed += sum(c.latency_s for c in calls if c.cached)
        size = len(group)
        result.kept.append(len(kept) / size)
        result.calls.append(len(calls) / size)
        result.seconds.append(elapsed / size)
        for call in calls:
            result.prompt_tokens.append(call.usage.prompt_tokens)
            result.completion_tokens.append(call.usage.completion_tokens)
            result.latency_s.append(call.latency_s)
            result.cached_calls += call.cached
    first = recorder.first.get(name)
    result.prompt = render_request(first) if first is not None else None
    return result, kept_all


def render_request(request: Request, limit: int = PROMPT_CHARS) -> str:
    """A request as text for a person: each message under its role, long ones cut at ``limit``
    characters with the count of what was left out.
    """
    parts: list[tuple[str, str]] = [(m.role, m.content) for m in request.messages]
    if not parts:
        parts = [("raw prompt", request.prompt or "")]
    lines = []
    for role, content in parts:
        shown = (
            content
            if len(content) <= limit
            else f"{content[:limit]}… [{len(content) - limit} more chars]"
        )
        lines.append(f"[{role}]\n{shown}")
    return "\n".join(lines)
