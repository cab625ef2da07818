"""``run_experiment`` with a scripted model on a tiny IMDb-shaped folder: the four rows, the
shared seed set, the budget, the extra-data analysis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datarefinery.errors import UsageError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.analysis import word_edit_distance
from datarefinery.loop.experiment import ExperimentConfig, run_experiment
from datarefinery.loop.methods import METHODS
from tests.support.opinions import opinions_script, opinions_spec

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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_spec_describes_any_dataset_with_repeats(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = ExperimentConfig(
        budget=12, out=out, spec=opinions_spec(tmp_path), repeats=2, methods=list(METHODS)
    )
    table = run_experiment(config, backend=ScriptedBackend(opinions_script))
    rows = {row["method"]: row for row in table["rows"]}
    assert list(rows) == [
        "gold",
        "gold (validation)",
        "ZeroGen",
        "GoldGen",
        "S3",
        "S3 without rationales",
        "seed set only",
    ]
    assert table["seeds"] == [3, 4]  # the spec's seed, then the next
    assert all(row["runs"] == 2 for row in rows.values())
    assert rows["gold"]["records"] == 32 and rows["gold (validation)"]["records"] == 16
    assert rows["gold"]["val_accuracy"] is not None  # measured on validation when trained apart
    assert table["small_model"] == {"kind": "tfidf-lr", "c": 10.0}
    assert table["rounds"] == 1 and table["validation"] == table["test"] == 16
    for method in ("ZeroGen", "GoldGen", "S3"):
        row = rows[method]
        assert 0 < row["records"] <= 12 and row["tokens"] > 0
        assert row["accuracy_sd"] is not None and row["train_accuracy"] is not None
    runs = [r for r in table["runs"] if r["method"] == "S3"]
    assert [r["seed"] for r in runs] == [3, 4]
    for run in runs:
        folder = out / "s3" / f"seed-{run['seed']}"
        summary = json.loads((folder / "summary.json").read_text())
        assert [p["records"] for p in run["points"]] == [r["records"] for r in summary["rounds"]]
        assert all(r["train_accuracy"] is not None for r in summary["rounds"])
        # round 1 extrapolated from round 0's errors, real records read through the mapping
        errors = read_jsonl(folder / "rounds" / "00" / "errors.jsonl")
        examples = read_jsonl(folder / "rounds" / "01" / "examples.jsonl")
        assert {e["id"] for e in examples} <= {e["id"] for e in errors}
        assert all(set(e["fields"]) == {"opinion", "label"} for e in examples)
        assert {e["fields"]["label"] for e in errors} <= {"happy", "unhappy"}
    # the data-efficiency view: every method's curve, ZeroGen's from prefixes of its set
    view = table["efficiency"]
    assert set(view["curves"]) == set(rows)
    assert len(view["curves"]["S3"]) == 2 and len(view["curves"]["seed set only"]) == 1
    assert [p["records"] for p in view["curves"]["ZeroGen"]] == [6, 12]
    assert view["targets"] and all(t["fewest"] for t in view["targets"])
    markdown = (out / "table.md").read_text()
    assert "±" in markdown and "Records needed to reach" in markdown
    assert json.loads((out / "table.json").read_text())["rows"] == table["rows"]


def test_a_rerun_resumes_every_run(tmp_path: Path) -> None:
    config = ExperimentConfig(
        budget=12, out=tmp_path / "out", spec=opinions_spec(tmp_path), repeats=2
    )
    first = run_experiment(config, backend=ScriptedBackend(opinions_script))
    again = ScriptedBackend(opinions_script)
    second = run_experiment(config, backend=again)
    assert again.requests == []
    assert second["rows"] == first["rows"]


def test_the_ablations(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = ExperimentConfig(
        budget=12,
        out=out,
        spec=opinions_spec(tmp_path),
        methods=["s3", "s3_no_rationale", "seed_only"],
    )
    table = run_experiment(config, backend=ScriptedBackend(opinions_script))
    assert [row["method"] for row in table["rows"]] == [
        "S3",
        "S3 without rationales",
        "seed set only",
    ]

    def seed_set(method: str) -> list[dict[str, Any]]:
        return read_jsonl(out / method / "seed-3" / "rounds" / "00" / "run" / "dataset.jsonl")

    # S3 seeds with the spec's rationale step; the ablation with zero_shot, then extrapolates
    assert {r["provenance"]["technique"] for r in seed_set("s3")} == {"rationale"}
    assert {r["provenance"]["technique"] for r in seed_set("s3_no_rationale")} == {"zero_shot"}
    no_rationale = json.loads((out / "s3_no_rationale" / "seed-3" / "summary.json").read_text())
    assert no_rationale["source"] == "errors" and len(no_rationale["rounds"]) == 2
    added = read_jsonl(
        out / "s3_no_rationale" / "seed-3" / "rounds" / "01" / "run" / "dataset.jsonl"
    )
    assert added and {r["provenance"]["technique"] for r in added} == {"extrapolate"}
    # the seed set alone: S3's seed set (the same requests, answered by the shared cache), no rounds
    seed_only = json.loads((out / "seed_only" / "seed-3" / "summary.json").read_text())
    assert len(seed_only["rounds"]) == 1
    assert seed_set("seed_only") == seed_set("s3")
    rows = {row["method"]: row for row in table["rows"]}
    assert rows["seed set only"]["records"] == len(seed_set("s3")) < rows["S3"]["records"]


def test_the_rationale_ablation_does_not_apply_to_sentence_pairs(tmp_path: Path) -> None:
    folder = tmp_path / "rte"
    folder.mkdir()
    rows = [
        {"premise": f"The {w} museum opened in {1900 + i}.", "label_text": label}
        | {"hypothesis": f"The museum {'opened' if label == 'entailment' else 'closed'} {i}."}
        for i, (w, label) in enumerate(
            zip(
                ["old", "new", "big", "small"] * 2,
                ["entailment", "not_entailment"] * 4,
                strict=True,
            )
        )
    ]
    for split in ("validation", "test"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def script(request: Request) -> str:
        verb = "closed" if '"not_entailment"' in request.messages[-1].content else "opened"
        return json.dumps({"hypothesis": f"It {verb} long ago, call {request.seed}."})

    config = ExperimentConfig(
        data=folder,
        budget=8,
        out=tmp_path / "out",
        llm={"max_tokens": 64},
        methods=["zerogen", "s3_no_rationale", "seed_only"],
        repeats=2,
    )
    table = run_experiment(config, backend=ScriptedBackend(script))
    rows = {row["method"]: row for row in table["rows"]}
    assert rows["S3 without rationales"]["runs"] == 0
    assert "does not apply" in rows["S3 without rationales"]["note"]
    assert rows["ZeroGen"]["runs"] == rows["seed set only"]["runs"] == 2
    assert not (tmp_path / "out" / "s3_no_rationale").exists()
    assert "S3 without rationales: does not apply" in (tmp_path / "out" / "table.md").read_text()
