"""The S3 loop's logic with a scripted model: error collection, merging, rounds, resume."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from datarefinery.errors import ConfigError, InputFileError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.s3 import collect_errors, run_s3
from datarefinery.models.smallmodel import make_small_model
from datarefinery.records import Record
from tests.support.specs import SENTIMENT_TASK

WORDS = {"positive": ["great", "wonderful", "superb"], "negative": ["awful", "dreadful", "dull"]}


def record(id_: str, text: str, label: str) -> Record:
    return Record(id=id_, fields={"text": text, "label": label})


def write_real(path: Path, rows: list[tuple[str, int]]) -> Path:
    names = {1: "positive", 0: "negative"}
    with path.open("w") as handle:
        for i, (text, label) in enumerate(rows):
            row = {"id": f"r{i}", "text": text, "label": label, "label_text": names[label]}
            handle.write(json.dumps(row) + "\n")
    return path


def real_rows() -> list[tuple[str, int]]:
    # "plot" reviews are positive here: a seed set without the word cannot learn that, so the
    # first model gets them wrong and extrapolation (which copies the word) fixes it.
    rows = [(f"a {w} film number {i}", 1) for i, w in enumerate(WORDS["positive"])]
    rows += [(f"an {w} film number {i}", 0) for i, w in enumerate(WORDS["negative"])]
    rows += [(f"the plot twist {i}", 1) for i in range(4)]
    return rows


def scripted(request: Request) -> str:
    prompt = request.messages[-1].content
    label = "positive" if '"positive"' in prompt else "negative"
    seed = request.seed or 0
    if "got the example below wrong" in prompt:
        # a record like the example: its distinctive word, in other words
        word = "plot" if "plot" in prompt else WORDS[label][seed % 3]
        return json.dumps({"text": f"{word} {word} story {seed}"})
    return json.dumps({"text": f"{WORDS[label][seed % 3]} movie {seed}"})


def s3_spec(tmp_path: Path, **loop: Any) -> dict[str, Any]:
    real = write_real(tmp_path / "real.jsonl", real_rows())
    return {
        "name": "s3-test",
        "seed": 1,
        "task": copy.deepcopy(SENTIMENT_TASK),
        "llm": {"max_tokens": 64},
        "synthesis": [{"zero_shot": {"count_per_label": 4}}],
        "data": {"validation": str(real), "test": str(real), "label_field": "label_text"},
        "loop": {"rounds": 2, "patience": 2, "extrapolate": {"k": 2}, **loop},
        "shard_size": 4,
    }


def test_collect_errors_keeps_prediction_and_confidence() -> None:
    train = [record(f"p{i}", f"great {i}", "positive") for i in range(3)]
    train += [record(f"n{i}", f"awful {i}", "negative") for i in range(3)]
    model = make_small_model("tfidf-lr", ["text"]).fit(train)
    val = [record("a", "great", "positive"), record("b", "great", "negative")]
    errors = collect_errors(model, val)
    assert [e.id for e in errors] == ["b"]
    assert errors[0].scores["predicted"] == "positive"
    assert 0.5 < errors[0].scores["confidence"] <= 1.0
    assert errors[0].fields["label"] == "negative"  # the gold label, not the prediction
    assert val[1].scores == {}  # the input is not changed


def test_loop_extrapolates_errors_and_keeps_every_round(tmp_path: Path) -> None:
    backend = ScriptedBackend(scripted)
    result = run_s3(s3_spec(tmp_path), tmp_path / "out", backend=backend)
    assert result.status == "complete"
    first, second = result.rounds[0], result.rounds[1]
    assert first.records == 8 and first.errors == 4  # the four "plot" reviews
    assert second.examples == 4 and second.added == 8 and second.records == 16
    assert second.val_accuracy > first.val_accuracy and second.tokens > 0
    folder = tmp_path / "out" / "rounds" / "01"
    examples = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert {e["id"] for e in examples} == {"r6", "r7", "r8", "r9"}
    added = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()][8:]
    assert all(r["provenance"]["technique"] == "extrapolate" for r in added)
    assert all(r["fields"]["label"] == "positive" for r in added)  # the errors' gold label
    assert {r["provenance"]["parent_ids"][0] for r in added} == {"r6", "r7", "r8", "r9"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["best_round"] == result.best.round if result.best else False
    assert len(summary["rounds"]) == len(result.rounds)
    assert "| round |" in (tmp_path / "out" / "summary.md").read_text()
    dataset = (tmp_path / "out" / "dataset.jsonl").read_text().splitlines()
    assert result.best is not None and len(dataset) == result.best.records


def test_loop_resumes_without_new_calls(tmp_path: Path) -> None:
    spec = s3_spec(tmp_path)
    first = run_s3(spec, tmp_path / "out", backend=ScriptedBackend(scripted))
    (tmp_path / "out" / "rounds" / "01" / "round.json").unlink()
    again = ScriptedBackend(scripted)
    second = run_s3(spec, tmp_path / "out", backend=again)
    assert again.requests == []  # every call comes from the rounds' caches
    assert [r.val_accuracy for r in second.rounds] == [r.val_accuracy for r in first.rounds]
    assert [r.records for r in second.rounds] == [r.records for r in first.rounds]


def test_record_budget_limits_the_examples(tmp_path: Path) -> None:
    result = run_s3(
        s3_spec(tmp_path, max_records=12), tmp_path / "out", backend=ScriptedBackend(scripted)
    )
    assert [r.records for r in result.rounds] == [8, 12]
    assert result.rounds[1].examples == 2
    assert "record budget" in result.message


def test_goldgen_extrapolates_from_the_whole_validation_set(tmp_path: Path) -> None:
    result = run_s3(
        s3_spec(tmp_path, source="all", rounds=1),
        tmp_path / "out",
        backend=ScriptedBackend(scripted),
    )
    assert result.rounds[1].examples == 10


def test_near_copies_of_the_example_are_rejected(tmp_path: Path) -> None:
    def copying(request: Request) -> str:
        prompt = request.messages[-1].content
        if "got the example below wrong" in prompt:
            return json.dumps({"text": "the plot twist 1"})
        return scripted(request)

    result = run_s3(s3_spec(tmp_path, rounds=1), tmp_path / "out", backend=ScriptedBackend(copying))
    assert result.rounds[1].added == 0
    rejected = (tmp_path / "out" / "rounds" / "01" / "run" / "rejected.jsonl").read_text()
    assert "near_copy" in rejected


def test_bad_label_in_real_data_names_file_and_line(tmp_path: Path) -> None:
    spec = s3_spec(tmp_path)
    spec["data"]["label_field"] = "label"  # 0/1, not the task's label names
    with pytest.raises(InputFileError, match=r"real.jsonl, line 1.*label_map"):
        run_s3(spec, tmp_path / "out", backend=ScriptedBackend(scripted))


def test_spec_errors_name_the_field(tmp_path: Path) -> None:
    spec = s3_spec(tmp_path)
    spec["loop"]["ruonds"] = 3
    with pytest.raises(ConfigError, match=r"loop.ruonds"):
        run_s3(spec, tmp_path / "out")
