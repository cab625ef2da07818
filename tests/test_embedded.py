"""Runs on the real embedded model: resume after SIGKILL, cache on rerun, the hard budget."""

import copy
import json
from pathlib import Path

import pytest

import datarefinery
from tests.support.cli import LEAN, refinery, write_spec
from tests.support.kill import kill_after_commits
from tests.support.specs import SENTIMENT_TASK, sentiment_spec
from tests.support.texts import HARD_TEXTS

pytestmark = pytest.mark.slow


def dataset_lines(run_dir: Path) -> list[str]:
    return (run_dir / "dataset.jsonl").read_text().splitlines()


def test_embedded_run_then_rerun_costs_nothing(tmp_path: Path) -> None:
    spec = sentiment_spec(count=2)
    first = datarefinery.run(spec, tmp_path)
    assert first.status == "complete"
    records = [json.loads(line) for line in dataset_lines(tmp_path)]
    assert len(records) + first.rejected_size == 4
    for record in records:
        assert 10 <= len(record["fields"]["text"]) <= 160
        assert record["provenance"]["model"].startswith("llamacpp:SmolLM2-135M-Instruct")
    assert first.manifest["engine"]["backend_calls"] >= 4
    second = datarefinery.run(spec, tmp_path)
    assert second.manifest["engine"]["backend_calls"] == 0
    assert second.usage == first.usage  # the budget sees what the first session spent
    assert dataset_lines(tmp_path) == [json.dumps(r, ensure_ascii=False) for r in records]


def test_sigkill_mid_run_then_rerun_gives_the_uninterrupted_dataset(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec.yaml", sentiment_spec(count=6, shard_size=2))
    reference = tmp_path / "reference"
    assert refinery("run", spec_path, "-o", reference, "-q", *LEAN).returncode == 0

    killed = tmp_path / "killed"
    # After the first commit, and a moment more to get into the middle of the next shard.
    assert kill_after_commits(spec_path, killed, "01-zero_shot", 1, 0.7)
    step_dir = killed / "steps" / "01-zero_shot"
    committed = len(list(step_dir.glob("*.done")))
    assert 1 <= committed < 6, "the kill should land mid-run"
    assert not (killed / "dataset.jsonl").exists()

    rerun = refinery("run", spec_path, "-o", killed, "-q", *LEAN)
    assert rerun.returncode == 0, rerun.stderr
    assert dataset_lines(killed) == dataset_lines(reference)
    ids = [json.loads(line)["id"] for line in dataset_lines(killed)]
    assert len(ids) == len(set(ids))
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["steps"][0]["shards_resumed"] == committed
    assert len(manifest["sessions"]) == 2


def test_budget_stop_exit_code_and_resume(tmp_path: Path) -> None:
    spec = sentiment_spec(count=3, shard_size=1, budget={"max_tokens": 600}, concurrency=1)
    spec_path = write_spec(tmp_path / "spec.yaml", spec)
    stopped = refinery("run", spec_path, "-o", tmp_path / "out", "-q", *LEAN)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "token budget reached" in stopped.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "stopped"
    assert 0 < sum(manifest["usage_spent"]) <= 600

    spec["llm"]["budget"]["max_tokens"] = 100_000
    write_spec(spec_path, spec)
    resumed = refinery("run", spec_path, "-o", tmp_path / "out", "-q", *LEAN)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"]["dataset"] + manifest["counts"]["rejected"] == 6
    assert manifest["steps"][0]["shards_resumed"] >= 1


def test_the_budget_holds_with_many_calls_in_flight_on_hard_text(tmp_path: Path) -> None:
    """Eight calls in flight, four decoded together, over text where the tokens per character are
    several times the English rate: the spend stays under the budget and the run stops cleanly."""
    source = tmp_path / "reviews.jsonl"
    rows = [
        {"id": f"r{i}", "text": text, "label": ("positive", "negative")[i % 2]}
        for i, text in enumerate(HARD_TEXTS * 2)
    ]
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    limit = 2500
    spec = {
        "seed": 5,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "input": str(source),
        "llm": {
            "max_tokens": 24,
            "concurrency": 8,
            "parallel": 4,
            "n_ctx": 1024,
            # One thread: on a loaded shared machine llama.cpp's spinning thread team stalls.
            "n_threads": 1,
            "budget": {"max_tokens": limit},
        },
        "steps": [{"paraphrase": {"per_record": 4}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    assert result.status == "stopped", result.message
    assert "token budget reached" in result.message
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    spent = sum(manifest["usage_spent"])
    assert spent == result.usage.total_tokens
    assert limit / 2 < spent <= limit
