"""Steps: one small class, one verb.

A ``Step`` turns a batch of records into records and rejections (``process``). The executor does
sharding, commits, resume and progress; a step only knows its own work. Three refinements:

- ``LLMStep``: writes ``build_call`` (record → request + reply model) and ``parse`` (validated
  reply → records); the base class calls the engine, re-asks on invalid replies and turns every
  failure into a ``Rejected`` with a reason. ``ModelStep`` is for steps that make several
  dependent calls per record (chains, votes) in their own ``process``, with the same ``ask``
  (and ``ask_each`` for the one-call-per-record pattern of ``LLMStep``).
- source steps (``is_source = True``) make their own input with ``plan()``: one "job" record per
  model call (e.g. label × call number), so generation shards and resumes like any other step.
- stateful steps see every committed output in order through ``restore`` (on resume) and
  ``postprocess`` (on commit), which is how exact-duplicate rejection works across shards.
- whole-input steps (``needs_whole_input()``: diversity selection, cross-fitted classifiers,
  stratified mixing) get all their input as one shard.
- gated steps (``gated = True``: ``review``) depend on more than the spec and their input, namely
  people's decisions: before running one, the executor asks its ``gate`` for an identity (a
  change redoes the step and every later one) and how many records still wait for people.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from datarefinery.config import LLMConfig, TaskSpec
from datarefinery.errors import ConfigError, RequestRejectedError
from datarefinery.llm.base import Request, Response, SamplingParams
from datarefinery.llm.engine import Engine
from datarefinery.llm.pool import EnginePool
from datarefinery.records import Record, Rejected
from datarefinery.surrogate_key import SurrogateKey

Output = Record | Rejected
T = TypeVar("T")


async def gather_or_cancel(*calls: Awaitable[T]) -> list[T]:
    """``asyncio.gather``, except that when one call fails the others are cancelled and waited
    for before the error propagates. Plain ``gather`` leaves them running: on a budget stop they
    would go on calling the model after the run had written its manifest, so their spend would
    be missing from it (and from the budget of the next session).
    """
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


@dataclass(frozen=True, slots=True)
class CallEstimate:
    """A step's work on some input: the records it passes on and the model calls it makes (in
    ``Step.estimate_calls``: per input record for the rates, in all for the result).
    """

    records_out: float
    calls: float


class StepConfig(BaseModel):
    """Base of every step's options model: unknown options are errors.

    ``added_options`` names options added after a step was first released, each with the value
    (in its JSON form) that does what the step did before the option existed. A run's settings
    digest (``Pipeline.settings``) leaves such an option out while it holds that value, so runs
    made before the upgrade still resume. Declare every option added to a released step here.
    """

    model_config = ConfigDict(extra="forbid")
    added_options: ClassVar[dict[str, Any]] = {}


C = TypeVar("C", bound=StepConfig)


@dataclass(frozen=True, slots=True)
class Gate:
    """What a gated step says before it runs: ``identity`` (besides the spec) of what its output
    depends on; ``waiting`` records that block it, and ``message`` saying what to do about them.
    """

    identity: str
    waiting: int = 0
    message: str = ""


@dataclass
class StepContext:
    """What a step may use at run time. ``engine`` is ``None`` for runs without LLM steps;
    ``engines`` builds engines for model blocks a step names besides ``llm`` (same cache and
    budget); ``surrogate_key`` says where the run's surrogate key is read (``None`` when no step
    needs one); ``run_dir`` is the run directory (``None`` outside a run).
    """

    name: str
    index: int
    seed: int
    task: TaskSpec | None
    llm: LLMConfig
    engine: Engine | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    on_record: Callable[[int, int], None] | None = None
    surrogate_key: SurrogateKey | None = None
    engines: EnginePool | None = None
    run_dir: Path | None = None

    def require_engine(self) -> Engine:
        if self.engine is None:
            raise RuntimeError(f"step {self.name} needs an engine but the run has none")
        return self.engine

    def engine_for(self, config: LLMConfig) -> Engine:
        """The engine of a model block other than the run's ``llm:``."""
        if self.engines is None:
            raise RuntimeError(f"step {self.name} needs engines for its models but has none")
        return self.engines.engine_for(config)

    def read_surrogate_key(self) -> bytes:
        """The run's surrogate key, read now (call it in ``setup``: the context itself never
        holds the key, so a context sent to a Ray worker carries none).
        """
        if self.surrogate_key is None:
            raise RuntimeError(f"step {self.name} needs a surrogate key but the run has none")
        return self.surrogate_key.read()

    def require_task(self) -> TaskSpec:
        if self.task is None:
            raise ConfigError(f"step {self.name} needs a 'task:' section in the spec")
        return self.task

    def call_seed(self, *parts: object) -> int:
        """A per-call seed derived from the run seed, so calls differ from each other and reruns
        repeat them exactly (the seed is part of the cache key).
        """
        material = "\x1f".join(str(p) for p in (self.seed, self.name, *parts))
        return int.from_bytes(hashlib.sha256(material.encode()).digest()[:4], "big") & 0x7FFFFFFF


class Step(abc.ABC, Generic[C]):
    """Base of all steps. Subclasses set ``name`` (as used in specs) and ``Config``."""

    name: ClassVar[str]
    Config: ClassVar[type[StepConfig]]
    uses_llm: ClassVar[bool] = False
    is_source: ClassVar[bool] = False
    stateful: ClassVar[bool] = False
    # Steps that pick surrogate values: the run prepares its surrogate key for them.
    uses_surrogate_key: ClassVar[bool] = False
    gated: ClassVar[bool] = False
    # Steps whose work is heavy computation on this machine (detectors, indexes): the local
    # executor runs their shards in worker processes, one per core, each of which builds the step
    # from its config and sets it up once. Worth it only where a record's work outweighs sending
    # it to a worker and back (tens of microseconds); never for a model-calling step, whose calls
    # overlap in one process already.
    cpu_bound: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.cpu_bound and cls.uses_llm:
            raise TypeError(f"step class {cls.__name__} cannot be both cpu_bound and uses_llm")

    def __init__(self, config: C) -> None:
        self.config = config
        self._ctx: StepContext | None = None

    @property
    def ctx(self) -> StepContext:
        if self._ctx is None:
            raise RuntimeError(f"step {self.name} used before setup()")
        return self._ctx

    def needs_whole_input(self) -> bool:
        """True for steps that must see every input record at once (selection, cross-fitted
        classifiers, pairing): the executor then gives them a single shard.
        """
        return False

    def estimate_calls(self, n_in: float, per_record: CallEstimate) -> CallEstimate:
        """What the step does on ``n_in`` input records, given what it did per record on a sample
        (``refinery plan``). Proportional by default; a step whose output or calls do not grow
        with its input (a fixed-size selection) says so here.
        """
        return CallEstimate(n_in * per_record.records_out, n_in * per_record.calls)

    def reads(self, task: TaskSpec | None) -> set[str]:
        """Fields this step needs on its input records (checked when the pipeline is built)."""
        return set()

    def writes(self, task: TaskSpec | None) -> set[str]:
        """Fields this step adds or sets on its output records."""
        return set()

    def setup(self, ctx: StepContext) -> None:
        """Called once before processing; create any non-picklable state here."""
        self._ctx = ctx

    def bind(self, ctx: StepContext) -> None:
        """Give the step its context without setting it up: for a process that only commits the
        step's shards while worker processes set it up and process them.
        """
        self._ctx = ctx

    def gate(self, records: list[Record]) -> Gate:
        """Gated steps: their identity and what blocks them, given their whole input."""
        raise NotImplementedError(f"step {self.name} is not gated")

    def plan(self) -> list[Record]:
        """Source steps: the job records to process (deterministic for a given spec and seed)."""
        raise NotImplementedError(f"step {self.name} is not a source step")

    @abc.abstractmethod
    async def process(self, batch: list[Record]) -> list[Output]:
        """Turn a batch into outputs. Every input record must come back as at least one output
        (a record, derived records, or a ``Rejected``) so nothing disappears silently.
        """

    def restore(self, committed: Iterable[Record]) -> None:
        """Stateful steps: see the outputs of shards committed by an earlier session."""

    def postprocess(self, outputs: list[Output]) -> list[Output]:
        """Stateful steps: called on each shard's outputs in shard order, just before commit."""
        return outputs


class RecordStep(Step[C]):
    """A step that handles one record at a time with plain (non-async) code."""

    @abc.abstractmethod
    def apply(self, record: Record) -> Output | Sequence[Output]:
        """One record in, a record / rejection (or several) out."""

    async def process(self, batch: list[Record]) -> list[Output]:
        outputs: list[Output] = []
        for record in batch:
            result = self.apply(record)
            if isinstance(result, (Record, Rejected)):
                outputs.append(result)
            else:
                outputs.extend(result)
        return outputs


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LLMCall(Generic[M]):
    """A request and the pydantic model its reply must validate against."""

    request: Request
    reply_model: type[M]


class ModelStep(Step[C]):
    """A step that calls the model; it makes its calls in its own ``process`` (``ask`` makes one
    structured call, ``report`` feeds the progress bar).
    """

    uses_llm = True

    def sampling(self, **overrides: Any) -> SamplingParams:
        """The run's sampling defaults with this step's overrides (``None`` means keep)."""
        llm = self.ctx.llm
        values: dict[str, Any] = {
            "temperature": llm.temperature,
            "top_p": llm.top_p,
            "max_tokens": llm.max_tokens,
            "frequency_penalty": llm.frequency_penalty,
            "presence_penalty": llm.presence_penalty,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SamplingParams(**values)

    async def ask(self, call: LLMCall[Any]) -> Answer | Failure:
        """One structured call (with the engine's re-ask): the validated reply, or why not."""
        engine = self.ctx.require_engine()
        try:
            result = await engine.complete_structured(call.request, call.reply_model)
        except RequestRejectedError as exc:
            return Failure("backend_refused", str(exc))
        if result.value is None:
            failure = result.failure
            assert failure is not None
            detail = f"{failure.message}; last reply: {result.raw_text[:500]!r}"
            return Failure(failure.reason, detail)
        return Answer(result.value, result.responses[-1])

    def report(self, outputs: Sequence[Output]) -> None:
        """Tell the progress bar about one input's outputs."""
        if self.ctx.on_record is not None:
            kept = sum(1 for o in outputs if isinstance(o, Record))
            self.ctx.on_record(kept, len(outputs) - kept)

    async def ask_each(
        self,
        batch: list[Record],
        build_call: Callable[[Record], LLMCall[Any]],
        parse: Callable[[Any, Record, Response], list[Output]],
    ) -> list[Output]:
        """One call per record: ``build_call``, ``ask``, then ``parse`` the validated reply (a
        failed call becomes the record's rejection). Outputs come in the batch's order.
        """

        async def one(record: Record) -> list[Output]:
            answer = await self.ask(build_call(record))
            if isinstance(answer, Failure):
                outputs: list[Output] = [answer.reject(record, self.ctx.name)]
            else:
                outputs = parse(answer.value, record, answer.response)
            self.report(outputs)
            return outputs

        results = await gather_or_cancel(*(one(record) for record in batch))
        return [output for outputs in results for output in outputs]


class LLMStep(ModelStep[C]):
    """A step that asks the model once (plus one re-ask) per input record."""

    @abc.abstractmethod
    def build_call(self, record: Record) -> LLMCall[Any]:
        """The request for one input record."""

    @abc.abstractmethod
    def parse(self, reply: Any, record: Record, response: Response) -> list[Output]:
        """Turn a validated reply into output records (or rejections, e.g. a failed check)."""

    async def process(self, batch: list[Record]) -> list[Output]:
        return await self.ask_each(batch, self.build_call, self.parse)


@dataclass(frozen=True)
class Answer:
    """A reply that validated against the call's reply model."""

    value: Any
    response: Response


@dataclass(frozen=True)
class Failure:
    """Why a call produced no usable reply: a reason code for reports and the detail."""

    reason: str
    detail: str

    def reject(self, record: Record, step: str) -> Rejected:
        return Rejected(record, step, self.reason, self.detail)
