"""The typed manifest of a run directory (``OUT/manifest.json``) and the counts it is made of.

``Manifest`` is a ``refinery run``'s: spec, versions, model, one entry per session, the steps'
counts, tokens and cost spent over every session, the engine's counters, the final counts and the
diversity summary. ``LoopManifest`` is an S3 loop's (``kind: s3``). Both are written whole after
every change (``RunDir.write_manifest``), so the file always describes the run as it stands.

``to_json`` fixes the file's layout: keys in the order earlier versions wrote them, ``tokens``
derived from ``usage_spent``, and ``diversity`` / ``counts`` left out until a run has them.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_serializer

from datarefinery.config import TaskSpec


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ShardStats(BaseModel):
    """What one committed shard of a step did (the content of its ``.done`` marker)."""

    records_in: int = 0
    records_out: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    # What became of the kept records, for steps that say (``pii_rewrite``: rewritten, ...).
    outcomes: dict[str, int] = Field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "records_in": self.records_in,
            "records_out": self.records_out,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
        }
        if self.outcomes:
            data["outcomes"] = self.outcomes
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardStats:
        return cls.model_validate(data)


class StepSummary(BaseModel):
    """One step of a run: its shards (``shards_resumed`` of them committed by an earlier
    session) and the records they took in, kept (by outcome, for steps that name one) and
    rejected (by reason).
    """

    name: str
    step: str
    shards: int = 0
    shards_resumed: int = 0
    records_in: int = 0
    records_out: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    seconds: float = 0.0
    outcomes: dict[str, int] = Field(default_factory=dict)

    def add(self, stats: ShardStats, *, resumed: bool = False) -> None:
        self.shards += 1
        self.shards_resumed += resumed
        self.records_in += stats.records_in
        self.records_out += stats.records_out
        for reason, count in stats.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        for outcome, count in stats.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
        self.seconds += stats.seconds

    @field_serializer("rejected", "outcomes")
    def _sorted(self, rejected: dict[str, int]) -> dict[str, int]:
        return dict(sorted(rejected.items()))

    @field_serializer("seconds")
    def _rounded(self, seconds: float) -> float:
        return round(seconds, 3)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def step_outcomes(manifest: object) -> dict[str, Any]:
    """``{"outcomes": {step: {outcome: records}}}`` for a run's steps that name outcomes (the
    refinement steps: rewritten, replaced, ...); empty when none does or ``manifest`` is not a
    run's.
    """
    steps = manifest.steps if isinstance(manifest, Manifest) else []
    outcomes = {s.name: s.outcomes for s in steps if s.outcomes}
    return {"outcomes": outcomes} if outcomes else {}


class Session(BaseModel):
    """One invocation of the run: when it started, how long it ran, when it finished (absent
    when it was interrupted).
    """

    started: str
    seconds: float | None = None
    finished: str | None = None


class ModelInfo(BaseModel):
    backend: str
    identity: str


class EngineCounts(BaseModel):
    """The engine's counters (``EngineStats``) as the manifest keeps them."""

    requests: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    retries: int = 0
    failures: int = 0
    reasks: int = 0
    parse_failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    backend_latency_s: float = 0.0


class Counts(BaseModel):
    """The finished run's outputs; rejections keyed ``step:reason``."""

    dataset: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)


class FieldDiversity(BaseModel):
    distinct_1: float
    distinct_2: float
    embedded_sample: int | None = None
    dispersion: float | None = None


class DiversitySummary(BaseModel):
    """The end-of-run diversity glance (see ``run_diversity``); ``embedding`` names the model, or
    says why dispersion was not computed.
    """

    records: int
    fields: dict[str, FieldDiversity] = Field(default_factory=dict)
    counted_sample: int | None = None
    embedding: str | None = None


class ReviewWait(BaseModel):
    """A run waiting for review: the review step that stopped it and how many records wait."""

    step: str
    waiting: int


# Written into every manifest: ``--fresh`` deletes only a folder whose manifest carries it (or, for
# run directories made before the marker, names datarefinery among its versions).
MANIFEST_FORMAT = "datarefinery-run/1"


class ManifestBase(BaseModel):
    """What every run directory's manifest holds: the spec (as written, JSON) and its hash, the
    software versions, and one entry per session.
    """

    model_config = ConfigDict(extra="ignore")

    format: str = MANIFEST_FORMAT
    name: str
    status: str = "running"
    spec_hash: str
    message: str | None = None
    spec_path: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    sessions: list[Session] = Field(default_factory=list)
    # Fingerprints of the files the spec names (``fingerprints.py``); ``None`` in manifests written
    # before they were kept, whose inputs cannot be checked.
    inputs: dict[str, dict[str, Any]] | None = None
    _clock: float = PrivateAttr(default_factory=time.perf_counter)

    def begin_session(self, earlier: ManifestBase | None) -> None:
        """Start this session after the sessions ``earlier`` (the directory's last manifest)
        recorded.
        """
        self.sessions = [*(earlier.sessions if earlier else []), Session(started=_now())]
        self._clock = time.perf_counter()

    def set_status(self, status: str, message: str = "") -> None:
        """Set the run's status (and why), and how long this session has run so far."""
        self.status = status
        self.message = message
        self.sessions[-1].seconds = round(time.perf_counter() - self._clock, 3)

    def finish_session(self) -> None:
        self.sessions[-1].finished = _now()

    @property
    def task(self) -> TaskSpec | None:
        """The spec's task, validated (``None`` when the spec has none)."""
        task = self.spec.get("task")
        return TaskSpec.model_validate(task) if task else None

    def to_json(self) -> dict[str, Any]:
        """What ``manifest.json`` holds."""
        return self.model_dump(mode="json", exclude_none=False)

    # Read access by key to the JSON form, for code written when the manifest was a dict
    # (``result.manifest["counts"]``); new code uses the attributes.
    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def __contains__(self, key: object) -> bool:
        return key in self.to_json()

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)


def _sessions(sessions: list[Session]) -> list[dict[str, Any]]:
    return [s.model_dump(mode="json", exclude_none=True) for s in sessions]


class Manifest(ManifestBase):
    """A ``refinery run``'s manifest. ``usage_spent`` (prompt, completion tokens) and
    ``cost_usd`` cover every session, so a resumed run's budget starts from them.
    """

    executor: str = "local"
    model: ModelInfo | None = None
    # Digests of each step's options with defaults filled in (``Pipeline.settings``) and of the
    # shipped prompt templates (when a step calls a model); ``None`` in manifests written before
    # they were kept, whose defaults cannot be checked.
    step_settings: dict[str, str] | None = None
    templates: str | None = None
    usage_spent: tuple[int, int] = (0, 0)
    steps: list[StepSummary] = Field(default_factory=list)
    cost_usd: float = 0.0
    engine: EngineCounts | None = None
    diversity: DiversitySummary | None = None
    counts: Counts | None = None
    review: ReviewWait | None = None

    def begin_session(self, earlier: ManifestBase | None) -> None:
        """Start this session; tokens spent by earlier sessions stay spent."""
        super().begin_session(earlier)
        if isinstance(earlier, Manifest):
            self.usage_spent = earlier.usage_spent

    def record_shard(
        self, usage_spent: tuple[int, int], cost_usd: float, engine: EngineCounts | None
    ) -> None:
        """Record what the run has spent so far and the engine's counters (after every
        committed shard, and when the steps end).
        """
        self.usage_spent = usage_spent
        self.cost_usd = round(cost_usd, 6)
        self.engine = engine

    def record_step(self, summary: StepSummary) -> None:
        self.steps.append(summary)

    def rejected_by_reason(self) -> dict[str, int]:
        """Rejections of the recorded steps, keyed ``step:reason``."""
        totals: dict[str, int] = {}
        for summary in self.steps:
            for reason, count in summary.rejected.items():
                key = f"{summary.name}:{reason}"
                totals[key] = totals.get(key, 0) + count
        return totals

    @property
    def tokens(self) -> dict[str, int]:
        prompt, completion = self.usage_spent
        return {"prompt": prompt, "completion": completion, "total": prompt + completion}

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": self.format,
            "name": self.name,
            "status": self.status,
            "spec_hash": self.spec_hash,
            "spec_path": self.spec_path,
            "spec": self.spec,
            "inputs": self.inputs,
            "step_settings": self.step_settings,
            "templates": self.templates,
            "versions": self.versions,
            "executor": self.executor,
            "model": self.model.model_dump(mode="json") if self.model else None,
            "sessions": _sessions(self.sessions),
            "usage_spent": list(self.usage_spent),
            "message": self.message or "",
            "steps": [s.to_dict() for s in self.steps],
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
            "engine": self.engine.model_dump(mode="json") if self.engine else None,
        }
        if self.diversity is not None:
            data["diversity"] = self.diversity.model_dump(mode="json", exclude_none=True)
        if self.counts is not None:
            data["counts"] = self.counts.model_dump(mode="json")
        if self.review is not None:
            data["review"] = self.review.model_dump(mode="json")
        return data


class LoopManifest(ManifestBase):
    """An S3 loop's manifest: its rounds (as in ``summary.json``), the best one, the tokens of
    every round.
    """

    kind: Literal["s3"] = "s3"
    rounds: list[dict[str, Any]] | None = None
    best_round: int | None = None
    tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": self.format,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "spec_hash": self.spec_hash,
            "spec_path": self.spec_path,
            "spec": self.spec,
            "inputs": self.inputs,
            "versions": self.versions,
            "sessions": _sessions(self.sessions),
        }
        if self.rounds is not None:
            data["rounds"] = self.rounds
        if self.message is not None:
            data.update(message=self.message, best_round=self.best_round, tokens=self.tokens)
        return data


def parse_manifest(text: str) -> Manifest | LoopManifest:
    """A manifest from ``manifest.json``'s text, of the kind it declares."""
    data = json.loads(text)
    if isinstance(data, dict) and data.get("kind") == "s3":
        return LoopManifest.model_validate(data)
    return Manifest.model_validate(data)
