"""The round loop that ``loop.s3`` (classification) and ``loop.qa`` (extractive QA) share.

A task's loop subclasses ``RoundLoop`` and says how to read its real sets, which steps
extrapolate, how to train and score its small model and how its summary reads; this module runs
the rounds, resumes them, stops them (no examples left, patience, a record or token budget) and
writes the run directory that ``loop.s3`` describes.
"""

from __future__ import annotations

import json
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

from datarefinery.config import LLMConfig, LoadedSpec, RunSpec, TaskSpec
from datarefinery.io.write import write_json_atomic, write_jsonl_atomic
from datarefinery.llm.base import Backend
from datarefinery.manifest import LoopManifest, Manifest
from datarefinery.records import Record
from datarefinery.redact import public_spec
from datarefinery.rundir import RunDir
from datarefinery.runner import run, versions
from datarefinery.text import normalized_key

Log = Callable[[str], None]
Steps = list[dict[str, dict[str, Any] | None]]


@dataclass
class RoundResult:
    """One round: the set it trained on, how the model did on it and on the real sets, what it got
    wrong, what it cost. ``tokens`` counts the round's generation, by the backend or a shared cache.
    """

    round: int
    added: int
    dropped_duplicates: int
    records: int
    val_accuracy: float
    test_accuracy: float | None
    errors: int
    examples: int
    tokens: int
    rejected: int
    seconds: float
    train_accuracy: float | None = None  # None: read from a round.json older than it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class S3Result:
    run_dir: Path
    status: str
    message: str = ""
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def best(self) -> RoundResult | None:
        """The round with the best validation accuracy (the earliest of equals: fewer records)."""
        return max(self.rounds, key=lambda r: (r.val_accuracy, -r.round), default=None)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rounds)

    @property
    def dataset_path(self) -> Path:
        return self.run_dir / "dataset.jsonl"


def merge(
    current: Sequence[Record], new: Sequence[Record], fields: Sequence[str]
) -> tuple[list[Record], int]:
    """``current`` followed by the records of ``new`` whose ``fields`` (normalized) are not already
    there; and how many were dropped as repeats.
    """
    seen = {normalized_key(r.fields, fields) for r in current}
    merged = list(current)
    dropped = 0
    for record in new:
        key = normalized_key(record.fields, fields)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        merged.append(record)
    return merged, dropped


def choose_examples(pool: Sequence[Record], limit: int | None, seed: int) -> list[Record]:
    """A seeded sample of ``limit`` records of ``pool`` (all of it when ``limit`` is None), in
    the pool's order so a rerun writes the same file.
    """
    if limit is None or limit >= len(pool):
        return list(pool)
    picked = set(random.Random(seed).sample(range(len(pool)), limit))
    return [r for i, r in enumerate(pool) if i in picked]


class RoundSpec(Protocol):
    """What the loop reads of a task's loop spec (``S3Spec``, ``QALoopSpec``)."""

    @property
    def name(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def task(self) -> TaskSpec: ...
    @property
    def llm(self) -> LLMConfig: ...
    @property
    def synthesis(self) -> Steps: ...
    @property
    def shard_size(self) -> int: ...
    def spec_hash(self) -> str: ...
    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


class Rounds(NamedTuple):
    """How many rounds, what each extrapolates from and how much, when the loop stops early."""

    rounds: int
    source: str
    examples_per_round: int | None
    max_records: int | None
    k: int
    patience: int | None = None  # None: the rounds go on whatever validation does


SpecT = TypeVar("SpecT", bound=RoundSpec)


class RoundLoop(ABC, Generic[SpecT]):
    """The rounds of one loop into ``out``; ``spec_path`` is the loop manifest's, ``run_source``
    each round's run's; ``fields`` are those that make two records repeats of each other.
    """

    result_type: ClassVar[type[RoundResult]] = RoundResult
    score_name: ClassVar[str] = "val"  # how the log names the validation score

    def __init__(
        self,
        spec: SpecT,
        plan: Rounds,
        out: Path,
        backend: Backend | None,
        log: Log,
        *,
        fields: Sequence[str],
        spec_path: str,
        run_source: str,
    ) -> None:
        self.spec, self.plan, self.out, self.backend, self.log = spec, plan, out, backend, log
        self.fields, self.spec_path, self.run_source = fields, spec_path, run_source
        self.val: list[Record] = []
        self.test: list[Record] = []

    @abstractmethod
    def _load_real(self) -> tuple[list[Record], list[Record]]:
        """The real validation and test sets."""

    @abstractmethod
    def _extrapolation(self) -> Steps:
        """The steps of every round after the first, on its examples."""

    @abstractmethod
    def _train(
        self, number: int, merged: list[Record], folder: Path
    ) -> tuple[dict[str, Any], list[Record]] | str:
        """Train the small model on ``merged`` and score it: the round's scores (``val_accuracy``,
        ``test_accuracy``, ``train_accuracy`` and those of ``result_type``'s own) and the
        validation records it gets wrong; or why the loop cannot go on.
        """

    @abstractmethod
    def _stop_reason(self, records: int) -> str:
        """Why a round found no examples to extrapolate from."""

    @abstractmethod
    def _markdown(self, summary: dict[str, Any]) -> str: ...

    def _summary_model(self) -> dict[str, Any]:
        """The small model's entries of ``summary.json`` (placed before ``source``)."""
        return {}

    def run(self, fresh: bool = False) -> S3Result:
        spec = self.spec
        run_dir = RunDir.open(self.out, spec.spec_hash(), fresh=fresh)
        manifest = LoopManifest(
            name=spec.name,
            spec_hash=spec.spec_hash(),
            spec_path=self.spec_path,
            spec=public_spec(spec.model_dump(mode="json")),
            versions=versions(),
        )
        manifest.begin_session(run_dir.previous)
        run_dir.write_manifest(manifest)
        self.val, self.test = self._load_real()
        result = S3Result(self.out, "complete")
        train: list[Record] = []
        best, since_best = -1.0, 0
        for number in range(self.plan.rounds + 1):
            examples: list[Record] = []
            if number > 0:
                examples = self._examples(len(train), number)
                if not examples:
                    result.message = self._stop_reason(len(train))
                    break
            outcome = self._round(number, train, examples)
            if isinstance(outcome, str):
                result.status, result.message = "stopped", outcome
                break
            round_result, train = outcome
            result.rounds.append(round_result)
            manifest.rounds = [r.to_dict() for r in result.rounds]
            run_dir.write_manifest(manifest)
            self.log(
                f"round {number}: {round_result.records} records (+{round_result.added}), "
                f"{self.score_name} {round_result.val_accuracy:.4f}, errors {round_result.errors}"
            )
            if round_result.val_accuracy > best:
                best, since_best = round_result.val_accuracy, 0
            else:
                since_best += 1
                if self.plan.patience is not None and since_best >= self.plan.patience:
                    result.message = f"no better validation accuracy for {since_best} round(s)"
                    break
        self._finish(run_dir, manifest, result)
        return result

    def _round_dir(self, number: int) -> Path:
        return self.out / "rounds" / f"{number:02d}"

    def _examples(self, records: int, number: int) -> list[Record]:
        plan = self.plan
        errors = self._round_dir(number - 1) / "errors.jsonl"
        pool = _read(errors) if plan.source == "errors" else self.val
        limit = plan.examples_per_round
        if plan.max_records is not None:
            room = max(0, (plan.max_records - records) // plan.k)
            limit = room if limit is None else min(limit, room)
        return choose_examples(pool, limit, self.spec.seed * 1000 + number)

    def _round(
        self, number: int, train: list[Record], examples: list[Record]
    ) -> tuple[RoundResult, list[Record]] | str:
        folder = self._round_dir(number)
        done = folder / "round.json"
        if done.exists():
            saved = json.loads(done.read_text(encoding="utf-8"))
            return self.result_type(**saved), _read(folder / "train.jsonl")
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        steps = self.spec.synthesis
        input_path = None
        if number > 0:
            input_path = folder / "examples.jsonl"
            write_jsonl_atomic(input_path, (r.to_json() for r in examples))
            steps = self._extrapolation()
        generated = run(
            self._sub_spec(number, steps, input_path),
            folder / "run",
            backend=self.backend,
            diversity=False,
        )
        if generated.status != "complete":
            return f"round {number} stopped: {generated.message}"
        merged, dropped = merge(train, _read(generated.dataset_path), self.fields)
        trained = self._train(number, merged, folder)
        if isinstance(trained, str):
            return trained
        scores, errors = trained
        result = self.result_type(
            round=number,
            added=len(merged) - len(train),
            dropped_duplicates=dropped,
            records=len(merged),
            errors=len(errors),
            examples=len(examples),
            tokens=_tokens(generated.manifest),
            rejected=generated.rejected_size,
            seconds=round(time.perf_counter() - started, 2),
            **scores,
        )
        write_jsonl_atomic(folder / "train.jsonl", (r.to_json() for r in merged))
        write_jsonl_atomic(folder / "errors.jsonl", (r.to_json() for r in errors))
        write_json_atomic(done, result.to_dict())
        return result, merged

    def _sub_spec(self, number: int, steps: Steps, input_path: Path | None) -> LoadedSpec:
        spec = self.spec
        llm = spec.llm.model_dump(mode="json")
        budget = spec.llm.budget.max_tokens
        if budget is not None:
            # The loop's token budget spans every round: each round gets what is left.
            spent = sum(_round_tokens(self._round_dir(n)) for n in range(number))
            llm["budget"]["max_tokens"] = max(1, budget - spent)
        data: dict[str, Any] = {
            "name": f"{spec.name}-round-{number:02d}",
            "seed": spec.seed,
            "task": spec.task.model_dump(mode="json"),
            "llm": llm,
            "steps": steps,
            "shard_size": spec.shard_size,
        }
        if input_path is not None:
            data["input"] = {"path": str(input_path.resolve()), "format": "jsonl"}
        return LoadedSpec(RunSpec.model_validate(data), self.run_source, {})

    def _finish(self, run_dir: RunDir, manifest: LoopManifest, result: S3Result) -> None:
        best = result.best
        if best is not None:
            records = _read(self._round_dir(best.round) / "train.jsonl")
            write_jsonl_atomic(result.dataset_path, (r.to_json() for r in records))
        rounds = [r.to_dict() for r in result.rounds]
        summary = {
            "name": self.spec.name,
            "status": result.status,
            "message": result.message,
            **self._summary_model(),
            "source": self.plan.source,
            "validation": len(self.val),
            "test": len(self.test),
            "tokens": result.tokens,
            "best_round": best.round if best else None,
            "rounds": rounds,
        }
        write_json_atomic(self.out / "summary.json", summary)
        (self.out / "summary.md").write_text(self._markdown(summary), encoding="utf-8")
        manifest.status, manifest.message = result.status, result.message
        manifest.rounds, manifest.tokens = rounds, result.tokens
        manifest.best_round = best.round if best else None
        manifest.finish_session()
        run_dir.write_manifest(manifest)


def summary_markdown(
    summary: dict[str, Any], title: str, about: str, scores: Sequence[tuple[str, str]]
) -> str:
    """``summary.md``: the status, ``about`` (the model, the examples, the real sets) and a row a
    round, with ``scores`` (column, key of the round) as percentages.
    """
    columns = "".join(f" {column} |" for column, _ in scores)
    lines = [
        f"# {title}: {summary['name']}",
        "",
        f"status: {summary['status']}" + (f" ({summary['message']})" if summary["message"] else ""),
        about,
        "",
        f"| round | examples | added | records |{columns} errors | tokens | rejected |",
        "|" + "---:|" * (len(scores) + 7),
    ]
    for r in summary["rounds"]:
        mark = " (best)" if r["round"] == summary["best_round"] else ""
        cells = " | ".join(_percent(r.get(key)) for _, key in scores)
        lines.append(
            f"| {r['round']}{mark} | {r['examples']} | {r['added']} | {r['records']} | {cells} "
            f"| {r['errors']} | {r['tokens']} | {r['rejected']} |"
        )
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}"


def _read(path: Path) -> list[Record]:
    with path.open(encoding="utf-8") as handle:
        return [Record.from_dict(json.loads(line)) for line in handle if line.strip()]


def _tokens(manifest: Manifest | None) -> int:
    """Tokens of a round's run: paid to the backend (all sessions) plus answered by the cache."""
    if manifest is None:
        return 0
    engine = manifest.engine
    cached = engine.cached_prompt_tokens + engine.cached_completion_tokens if engine else 0
    return sum(manifest.usage_spent) + cached


def _round_tokens(folder: Path) -> int:
    done = folder / "round.json"
    return int(json.loads(done.read_text(encoding="utf-8"))["tokens"]) if done.exists() else 0
