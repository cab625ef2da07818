"""``refinery s3`` and ``refinery experiment s3`` as a user runs them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.support.cli import refinery, write_spec
from tests.support.examples import EXAMPLES
from tests.support.opinions import opinions_spec
from tests.support.specs import SENTIMENT_TASK


def tiny_spec() -> dict:  # type: ignore[type-arg]
    reviews = str(EXAMPLES / "data" / "reviews.jsonl")  # 8 real-looking reviews, 4 per label
    task = copy.deepcopy(SENTIMENT_TASK)
    task["fields"]["text"]["max_chars"] = 80
    return {
        "name": "s3-tiny",
        "seed": 5,
        "task": task,
        "llm": {"max_tokens": 64, "parallel": 4},
        "synthesis": [{"zero_shot": {"count_per_label": 2}}],
        "data": {"validation": reviews, "test": reviews},
        "loop": {"rounds": 1, "examples_per_round": 2, "extrapolate": {"k": 2}},
        "shard_size": 8,
    }


def read(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_s3_on_the_embedded_model_keeps_every_round(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "s3.yaml", tiny_spec())
    out = tmp_path / "out"
    completed = refinery("s3", spec, "-o", out)
    assert completed.returncode == 0, completed.stderr
    assert "| round |" in completed.stdout
    summary = json.loads((out / "summary.json").read_text())
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    first, second = rounds
    assert first["records"] == len(read(out / "rounds" / "00" / "train.jsonl")) >= 2
    assert first["errors"] == len(read(out / "rounds" / "00" / "errors.jsonl")) >= 1
    examples = read(out / "rounds" / "01" / "examples.jsonl")
    error_ids = {e["id"] for e in read(out / "rounds" / "00" / "errors.jsonl")}
    assert second["examples"] == len(examples) == min(2, first["errors"])
    assert {e["id"] for e in examples} <= error_ids
    made = read(out / "rounds" / "01" / "run" / "dataset.jsonl")
    rejected = read(out / "rounds" / "01" / "run" / "rejected.jsonl")
    assert len(made) + len(rejected) == 2 * len(examples)  # k per example, none lost
    gold = {e["id"]: e["fields"]["label"] for e in examples}
    for record in made:
        parent = record["provenance"]["parent_ids"][0]
        assert record["fields"]["label"] == gold[parent]  # the error's gold label
        assert record["provenance"]["model"].startswith("llamacpp:SmolLM2")
    assert second["records"] == first["records"] + second["added"]
    assert second["added"] + second["dropped_duplicates"] == len(made)
    assert all(r["tokens"] > 0 for r in rounds)
    assert 0 <= second["val_accuracy"] <= 1 and second["test_accuracy"] is not None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["kind"] == "s3"
    # a rerun resumes: same rounds, nothing new asked of the model
    again = refinery("s3", spec, "-o", out, "-q")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "summary.json").read_text())["rounds"] == rounds


def test_a_bad_spec_is_a_usage_error_naming_the_line(tmp_path: Path) -> None:
    spec = tiny_spec()
    spec["loop"]["rounds"] = -1
    completed = refinery("s3", write_spec(tmp_path / "s3.yaml", spec), "-o", tmp_path / "out")
    assert completed.returncode == 2
    assert "s3.yaml, line" in completed.stderr and "loop.rounds" in completed.stderr


def test_experiment_needs_a_known_dataset(tmp_path: Path) -> None:
    completed = refinery(
        "experiment", "s3", "--data", tmp_path, "--budget", "16", "-o", tmp_path / "out"
    )
    assert completed.returncode == 2
    assert "no preset" in completed.stderr


def test_experiment_takes_one_dataset(tmp_path: Path) -> None:
    spec = opinions_spec(tmp_path)
    both = refinery(
        "experiment", "s3", "--data", tmp_path, "--spec", spec, "--budget", "8", "-o", tmp_path
    )
    neither = refinery("experiment", "s3", "--budget", "8", "-o", tmp_path / "out")
    for completed in (both, neither):
        assert completed.returncode == 2
        assert "--data DIR (imdb, rte, qnli, adversarial_qa) or --spec FILE" in completed.stderr


def test_experiment_names_unknown_methods(tmp_path: Path) -> None:
    args = ("--spec", opinions_spec(tmp_path), "--budget", "8", "-o", tmp_path / "out")
    completed = refinery("experiment", "s3", *args, "--methods", "s3,zerogen2")
    assert completed.returncode == 2
    assert "choose among gold, zerogen, goldgen, s3, s3_no_rationale, seed_only" in completed.stderr


@pytest.mark.slow
def test_experiment_on_a_spec_dataset_with_repeats_on_the_embedded_model(tmp_path: Path) -> None:
    spec = opinions_spec(
        tmp_path,
        llm={"max_tokens": 48, "parallel": 4},
        synthesis=[{"zero_shot": {"count_per_label": 1}}],
    )
    out = tmp_path / "out"
    args = ("--spec", spec, "--budget", "8", "--repeats", "2", "--k", "1", "--threads", "1")
    completed = refinery("experiment", "s3", *args, "--methods", "gold,s3", "-o", out, "-q")
    assert completed.returncode == 0, completed.stderr
    assert "| S3 | 2 |" in completed.stdout and "Records needed to reach" in completed.stdout
    table = json.loads((out / "table.json").read_text())
    assert table["seeds"] == [3, 4] and table["rounds"] == 1
    rows = {row["method"]: row for row in table["rows"]}
    assert list(rows) == ["gold", "gold (validation)", "S3"]
    s3 = rows["S3"]
    assert s3["runs"] == 2 and 2 <= s3["records"] <= 8 and s3["tokens"] > 0
    assert 0 <= s3["accuracy"] <= 1 and s3["accuracy_sd"] is not None
    for seed in (3, 4):
        summary = json.loads((out / "s3" / f"seed-{seed}" / "summary.json").read_text())
        assert summary["status"] == "complete"
        assert all(r["train_accuracy"] is not None for r in summary["rounds"])
        made = read(out / "s3" / f"seed-{seed}" / "rounds" / "00" / "run" / "dataset.jsonl")
        assert made and all(r["provenance"]["model"].startswith("llamacpp:SmolLM2") for r in made)
    assert len(table["efficiency"]["curves"]["S3"]) >= 1
