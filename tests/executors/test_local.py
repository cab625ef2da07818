import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest

from datarefinery.config import LlamaCppConfig
from datarefinery.executors.local import LocalExecutor
from datarefinery.executors.progress import NullProgress
from datarefinery.records import Record, Rejected
from datarefinery.rundir import StepDir
from datarefinery.steps.base import Output, Step, StepConfig, StepContext
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.kill import kill_after_commits


class Shuffled(Step[StepConfig]):
    """Finishes shards in random order; tags each record with the order it was committed in."""

    name = "shuffled"
    Config = StepConfig
    uses_llm = True  # lets the executor run several shards at once
    stateful = True

    def __init__(self) -> None:
        super().__init__(StepConfig())
        self.committed: list[str] = []

    async def process(self, batch: list[Record]) -> list[Output]:
        await asyncio.sleep(random.random() / 50)
        return list(batch)

    def postprocess(self, outputs: list[Output]) -> list[Output]:
        self.committed.extend(o.id for o in outputs if isinstance(o, Record))
        return outputs


class Dropper(Step[StepConfig]):
    name = "dropper"
    Config = StepConfig

    async def process(self, batch: list[Record]) -> list[Output]:
        return batch[1:]


def records(n: int) -> list[Record]:
    return [Record(id=f"r{i:03d}", fields={"text": str(i)}) for i in range(n)]


def setup(step: Step[Any]) -> Step[Any]:
    step.setup(StepContext(name=step.name, index=0, seed=0, task=None, llm=LlamaCppConfig()))
    return step


def test_shards_commit_in_order_whatever_order_they_finish(tmp_path: Path) -> None:
    step = setup(Shuffled())
    step_dir = StepDir(tmp_path)
    summary = asyncio.run(
        LocalExecutor(shards_in_flight=4).run_step(
            step, step_dir, records(40), shard_size=3, progress=NullProgress()
        )
    )
    assert step.committed == [r.id for r in records(40)]
    assert summary.shards == 14 and summary.records_out == 40
    assert [r.id for r in step_dir.all_records()] == step.committed


def test_a_step_that_drops_records_silently_is_caught(tmp_path: Path) -> None:
    step = setup(Dropper(StepConfig()))
    with pytest.raises(RuntimeError, match="dropped 1 record"):
        asyncio.run(
            LocalExecutor().run_step(
                step, StepDir(tmp_path), records(4), shard_size=2, progress=NullProgress()
            )
        )


def test_rejections_count_as_accounted(tmp_path: Path) -> None:
    class Rejecting(Step[StepConfig]):
        name = "rejecting"
        Config = StepConfig

        async def process(self, batch: list[Record]) -> list[Output]:
            return [Rejected(r, "rejecting", "too_short") for r in batch]

    summary = asyncio.run(
        LocalExecutor().run_step(
            setup(Rejecting(StepConfig())),
            StepDir(tmp_path),
            records(5),
            shard_size=2,
            progress=NullProgress(),
        )
    )
    assert summary.records_out == 0 and summary.rejected == {"too_short": 5}


def write_people(path: Path, n: int) -> Path:
    """Records with e-mail addresses and phone numbers to mask; every 7th has a label outside
    the task's labels and is rejected by ``validate``."""
    with path.open("w") as handle:
        for i in range(n):
            label = "bogus" if i % 7 == 3 else ("pos", "neg")[i % 2]
            text = f"Record {i}: write to user{i}@example.com or call +1 415 555 {i % 10000:04d}."
            handle.write(json.dumps({"id": f"r{i:05d}", "text": text, "label": label}) + "\n")
    return path


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_gives_the_uninterrupted_dataset(
    tmp_path: Path,
) -> None:
    """A two-step CPU pipeline (validate, then mask PII) killed with SIGKILL four times at random
    commit counts of either step, then run to the end: the same dataset and rejections as a run
    that was never interrupted, every record exactly once."""
    spec = {
        "name": "kill-test",
        "seed": 1,
        "task": {
            "description": "records with contact details",
            "fields": {"text": {}, "label": {"type": "label"}},
            "labels": ["pos", "neg"],
        },
        "input": str(write_people(tmp_path / "in.jsonl", 6000)),
        "shard_size": 100,
        "steps": [{"validate": {}}, {"dirs": {"detector": {"kind": "regex"}}}],
    }
    spec_path = write_spec(tmp_path / "spec.yaml", spec)
    reference = refinery("run", spec_path, "-o", tmp_path / "reference", "-q", *LEAN)
    assert reference.returncode == 0, reference.stdout + reference.stderr

    rng = random.Random(20261121)
    out = tmp_path / "killed"
    points = [("01-validate", 0, rng.uniform(0.0, 0.3))] + [
        (rng.choice(["01-validate", "02-dirs"]), rng.randrange(1, 50), rng.uniform(0, 0.05))
        for _ in range(3)
    ]
    landed = [kill_after_commits(spec_path, out, *point) for point in points]
    assert sum(landed) >= 3, f"too few kills hit a running process: {points} {landed}"
    assert not (out / "dataset.jsonl").exists()

    rerun = refinery("run", spec_path, "-o", out, "-q", *LEAN)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for name in ("dataset.jsonl", "rejected.jsonl"):
        assert (out / name).read_text() == (tmp_path / "reference" / name).read_text(), name
    ids = [json.loads(line)["id"] for line in (out / "dataset.jsonl").read_text().splitlines()]
    rejected = (out / "rejected.jsonl").read_text().splitlines()
    assert len(ids) == len(set(ids)) and len(ids) + len(rejected) == 6000
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert len(manifest["sessions"]) >= 2
