"""``run_experiment`` with a scripted model on a tiny IMDb-shaped folder: the four rows, the
shared seed set, the budget, the extra-data analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datarefinery.errors import UsageError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.analysis import word_edit_distance
from datarefinery.loop.experiment import ExperimentConfig, run_experiment

POSITIVE = ["great", "wonderful", "superb", "moving"]
NEGATIVE = ["awful", "dreadful", "dull", "boring"]


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w") as handle:
        for i, (text, label) in enumerate(rows):
            handle.write(json.dumps({"id": f"{path.stem}{i}", "text": text, "label_text": label}))
            handle.write("\n")


def imdb_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "imdb"
    folder.mkdir()
    rows = [(f"a {w} film, truly {w} {i}", "positive") for i, w in enumerate(POSITIVE * 2)]
    rows += [(f"an {w} film, truly {w} {i}", "negative") for i, w in enumerate(NEGATIVE * 2)]
    write(folder / "validation.jsonl", rows)
    write(folder / "test.jsonl", rows)
    return folder


def scripted(request: Request) -> str:
    prompt = request.messages[-1].content
    label = "positive" if '"positive"' in prompt else "negative"
    words = POSITIVE if label == "positive" else NEGATIVE
    seed = request.seed or 0
    if "reasons" in json.dumps(request.json_schema):
        return json.dumps({"reasons": [f"the {label} reason number {i}" for i in range(8)]})
    return json.dumps({"text": f"This film was {words[seed % 4]} in every way, call {seed}."})


def test_experiment_writes_the_four_rows(tmp_path: Path) -> None:
    config = ExperimentConfig(
        data=imdb_folder(tmp_path), budget=16, out=tmp_path / "out", llm={"max_tokens": 64}
    )
    table = run_experiment(config, backend=ScriptedBackend(scripted))
    rows = {row["method"]: row for row in table["rows"]}
    assert list(rows) == ["gold", "ZeroGen", "GoldGen", "S3"]
    assert rows["gold"]["records"] == 16
    assert rows["ZeroGen"]["records"] == 16
    for method in ("GoldGen", "S3"):
        assert rows[method]["records"] <= 16
        assert rows[method]["tokens"] > 0
    saved = json.loads((tmp_path / "out" / "table.json").read_text())
    assert saved["rows"] == table["rows"]
    markdown = (tmp_path / "out" / "table.md").read_text()
    assert "| S3 |" in markdown and "Extra-data analysis" in markdown
    # GoldGen and S3 start from the same seed set (the second answered from the shared cache)
    seeds = [
        (tmp_path / "out" / m / "seed-0" / "rounds" / "00" / "run" / "dataset.jsonl").read_text()
        for m in ("goldgen", "s3")
    ]
    assert seeds[0] == seeds[1]


def test_unknown_dataset_is_a_usage_error(tmp_path: Path) -> None:
    config = ExperimentConfig(data=tmp_path, budget=16, out=tmp_path / "out", llm={})
    with pytest.raises(UsageError, match="no preset"):
        run_experiment(config)


def test_word_edit_distance() -> None:
    assert word_edit_distance(["a", "b"], ["a", "b"]) == 0.0
    assert word_edit_distance(["a", "b"], ["a", "c"]) == 0.5
    assert word_edit_distance([], ["x"]) == 1.0
    assert word_edit_distance([], []) == 0.0
