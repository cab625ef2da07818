"""The local executor's worker processes for CPU-bound steps: the same committed bytes as one
worker, and resume after an interruption, with the pool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.executors.local import LocalExecutor
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.records import Record, Rejected
from datarefinery.steps.base import Output, RecordStep, StepConfig
from datarefinery.steps.registry import STEPS
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.kill import kill_after_commits
from tests.support.specs import review_reply, sentiment_spec

NAMES = ["Maria Lindqvist", "John Smith", "Aiko Tanaka", "Peter Novak", "Fatima Haddad"]


def write_messages(path: Path, n: int) -> Path:
    """Messages with names, e-mail addresses and phone numbers; every 9th has no text, which
    ``dirs`` rejects."""
    with path.open("w") as handle:
        for i in range(n):
            name = NAMES[i % len(NAMES)]
            user = name.split()[0].lower()
            text = (
                f"Hi, this is {name}. Write to {user}{i}@example.com or call "
                f"+1 415 555 {i % 10000:04d} about order {i}."
            )
            handle.write(json.dumps({"id": f"m{i:04d}", "text": "" if i % 9 == 4 else text}))
            handle.write("\n")
    return path


def dirs_spec(source: Path, detector: str, workers: int, shard_size: int) -> dict[str, Any]:
    options = {"mode": "surrogate", "consistency": "dataset", "detector": {"kind": detector}}
    return {
        "name": "pool-test",
        "seed": 3,
        "input": str(source),
        "shard_size": shard_size,
        # A fixed key (the default is a new random one per run directory) so that two run
        # directories pick the same fakes.
        "surrogate_key": {"file": str(source.with_name("surrogate.key"))},
        "executor": {"workers": workers},
        "steps": [{"dirs": options}],
    }


def write_key(source: Path, key: str = "k" * 64) -> None:
    path = source.with_name("surrogate.key")
    path.write_text(key)
    path.chmod(0o600)


def run_files(out: Path) -> dict[str, bytes]:
    """Every output a run commits: the dataset, the rejections and each shard's files."""
    names = ["dataset.jsonl", "rejected.jsonl"]
    shards = sorted(p for p in (out / "steps").rglob("*") if p.is_file() and p.suffix != ".done")
    return {
        **{name: (out / name).read_bytes() for name in names},
        **{str(p.relative_to(out)): p.read_bytes() for p in shards},
    }


def same_run(tmp_path: Path, detector: str, n: int, shard_size: int) -> None:
    source = write_messages(tmp_path / "in.jsonl", n)
    write_key(source)
    outputs = {}
    for workers in (1, 2):
        spec = dirs_spec(source, detector, workers, shard_size)
        result = datarefinery.run(spec, tmp_path / f"w{workers}", diversity=False)
        assert result.status == "complete", result.message
        assert result.rejected_size == len(range(4, n, 9))
        outputs[workers] = run_files(tmp_path / f"w{workers}")
    assert len(outputs[2]) > 4  # several shards were committed
    assert outputs[2] == outputs[1]


def test_the_pool_commits_the_one_worker_bytes(tmp_path: Path) -> None:
    same_run(tmp_path, "regex", n=40, shard_size=4)


@pytest.mark.slow
def test_the_pool_commits_the_one_worker_bytes_with_presidio(tmp_path: Path) -> None:
    """Real Presidio (spaCy) loaded in each worker: names found, the same bytes."""
    same_run(tmp_path, "presidio", n=12, shard_size=3)
    dataset = (tmp_path / "w2" / "dataset.jsonl").read_text()
    assert not any(name in dataset for name in NAMES)


def test_after_a_model_step_in_this_process_the_pool_commits_the_one_worker_bytes(
    tmp_path: Path,
) -> None:
    """A model step (scripted) stays in the run's process with the engine; the ``dirs`` step
    after it goes to the workers (which get no engine) and commits what one worker does."""
    spec = sentiment_spec(count=8, shard_size=3)
    spec["steps"].append({"dirs": {"detector": {"kind": "regex"}}})
    outputs = {}
    for workers in (1, 2):
        result = datarefinery.run(
            {**spec, "executor": {"workers": workers}},
            tmp_path / f"w{workers}",
            backend=ScriptedBackend(review_reply),
            diversity=False,
        )
        assert result.status == "complete" and result.dataset_size == 16
        outputs[workers] = run_files(tmp_path / f"w{workers}")
    assert outputs[2] == outputs[1]


EXPLODE = "DATAREFINERY_TEST_EXPLODE"  # set: the step fails on record m0013 ("usage": as such)


class Explode(RecordStep[StepConfig]):
    """Upper-cases the text and tags the process it ran in; fails on one record while the
    variable is set (an interruption mid-run; workers read it from the environment they start
    with)."""

    name = "explode"
    Config = StepConfig
    cpu_bound = True

    def apply(self, record: Record) -> Output:
        if record.id == "m0013" and (how := os.environ.get(EXPLODE)):
            if how == "usage":
                raise ConfigError(f"unset {EXPLODE}")
            raise RuntimeError("interrupted on purpose")
        if not record.fields["text"]:
            return Rejected(record, self.ctx.name, "empty")
        fields = {**record.fields, "text": str(record.fields["text"]).upper()}
        return Record(record.id, fields, record.provenance, {"pid": os.getpid()})


def explode_spec(source: Path, workers: int) -> dict[str, Any]:
    return {
        "input": str(source),
        "shard_size": 2,
        "executor": {"workers": workers},
        "steps": [{"explode": {}}],
    }


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failed_shard_stops_the_run_and_the_rerun_resumes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shard 6 (records 12, 13) fails in a worker: the run fails with the worker's traceback,
    what it committed is a prefix of the shards, and a rerun processes only the rest."""
    monkeypatch.setitem(STEPS, "explode", f"{__name__}:Explode")
    source = write_messages(tmp_path / "in.jsonl", 20)
    monkeypatch.setenv(EXPLODE, "crash")
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="interrupted on purpose"):
        datarefinery.run(explode_spec(source, 2), out, diversity=False)
    step_dir = out / "steps" / "01-explode"
    committed = sorted(p.name for p in step_dir.glob("*.done"))
    assert committed == [f"shard-{i:05d}.done" for i in range(len(committed))]
    assert len(committed) <= 6
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"

    monkeypatch.delenv(EXPLODE)
    resumed = datarefinery.run(explode_spec(source, 2), out, diversity=False)
    assert resumed.status == "complete"
    (summary,) = resumed.steps
    assert summary.shards == 10 and summary.shards_resumed == len(committed)
    kept = records(resumed.dataset_path)
    pids = {r["scores"]["pid"] for r in kept}
    assert os.getpid() not in pids  # every shard ran in a worker

    reference = datarefinery.run(explode_spec(source, 1), tmp_path / "one", diversity=False)
    assert [r["scores"]["pid"] for r in records(reference.dataset_path)] == [os.getpid()] * 18
    strip = [{**r, "scores": {}} for r in kept]
    assert strip == [{**r, "scores": {}} for r in records(reference.dataset_path)]
    assert resumed.rejected_path.read_bytes() == reference.rejected_path.read_bytes()


def test_a_step_whose_input_fits_one_shard_runs_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STEPS, "explode", f"{__name__}:Explode")
    source = write_messages(tmp_path / "in.jsonl", 2)
    result = datarefinery.run(explode_spec(source, 4), tmp_path / "run", diversity=False)
    assert [r["scores"]["pid"] for r in records(result.dataset_path)] == [os.getpid()] * 2


def test_a_usage_error_in_a_worker_arrives_as_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A datarefinery error raised in a worker reaches the run as the same kind of error (not
    as a crash of the worker), with its message."""
    monkeypatch.setitem(STEPS, "explode", f"{__name__}:Explode")
    source = write_messages(tmp_path / "in.jsonl", 20)
    monkeypatch.setenv(EXPLODE, "usage")
    with pytest.raises(datarefinery.UsageError, match=f"unset {EXPLODE}"):
        datarefinery.run(explode_spec(source, 2), tmp_path / "run", diversity=False)


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    with pytest.raises(datarefinery.UsageError, match="at least one worker"):
        LocalExecutor(workers=0)
    spec = dirs_spec(tmp_path / "in.jsonl", "regex", 0, 2)
    with pytest.raises(ConfigError, match="executor"):
        datarefinery.run(spec, tmp_path / "run")


def test_a_run_resumes_with_another_worker_count(tmp_path: Path) -> None:
    """The worker count is not part of the run's identity: the output does not depend on it."""
    source = write_messages(tmp_path / "in.jsonl", 6)
    write_key(source)
    first = datarefinery.run(dirs_spec(source, "regex", 1, 2), tmp_path / "run", diversity=False)
    again = datarefinery.run(dirs_spec(source, "regex", 2, 2), tmp_path / "run", diversity=False)
    assert again.status == "complete" and again.steps[0].shards_resumed == 3
    assert again.dataset_path.read_bytes() == first.dataset_path.read_bytes()


@pytest.mark.slow
def test_sigkill_with_the_pool_then_rerun_gives_the_uninterrupted_dataset(
    tmp_path: Path,
) -> None:
    """``refinery run`` with two workers killed (SIGKILL) after some shards were committed, twice,
    then run to the end: the dataset and rejections of an uninterrupted one-worker run."""
    source = write_messages(tmp_path / "in.jsonl", 3000)
    write_key(source)
    reference = tmp_path / "reference"
    spec_path = write_spec(tmp_path / "one.yaml", dirs_spec(source, "regex", 1, 50))
    done = refinery("run", spec_path, "-o", reference, "-q", *LEAN)
    assert done.returncode == 0, done.stdout + done.stderr

    spec_path = write_spec(tmp_path / "spec.yaml", dirs_spec(source, "regex", 2, 50))
    out = tmp_path / "killed"
    landed = [kill_after_commits(spec_path, out, "01-dirs", n, 0.0) for n in (5, 25)]
    assert all(landed), "a kill came after the run had ended"
    assert not (out / "dataset.jsonl").exists()
    rerun = refinery("run", spec_path, "-o", out, "-q", *LEAN)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for name in ("dataset.jsonl", "rejected.jsonl"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["sessions"]) == 3
