import json
from pathlib import Path

import pytest

import datarefinery
from datarefinery.config import TaskSpec
from datarefinery.errors import MissingDependencyError
from datarefinery.evaluate import run_diversity
from datarefinery.evaluate.diversity import distinct_n
from datarefinery.llm.scripted import ScriptedBackend
from tests.support.cli import refinery, write_spec
from tests.support.specs import SENTIMENT_TASK, review_reply, sentiment_spec

TEXTS = ["The film was great fun.", "The film was dull.", "A slow, sad and lovely film."]


def dataset(tmp_path: Path) -> Path:
    path = tmp_path / "dataset.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": str(i), "fields": {"text": t, "label": "positive", "n": i}}) + "\n"
            for i, t in enumerate(TEXTS)
        )
    )
    return path


def test_summary_of_each_text_field(tmp_path: Path) -> None:
    task = TaskSpec.model_validate(SENTIMENT_TASK)
    summary = run_diversity.summarize(dataset(tmp_path), task)
    assert summary["records"] == 3 and summary["embedding"] == "all-MiniLM-L6-v2"
    text = summary["fields"]["text"]
    assert text["distinct_1"] == round(distinct_n(TEXTS, 1), 4)
    assert text["distinct_2"] == round(distinct_n(TEXTS, 2), 4)
    assert 0.0 < text["dispersion"] < 1.5
    # without a task, every string field counts; a cap on embedded records samples them
    summary = run_diversity.summarize(dataset(tmp_path), None, max_embedded=2)
    assert set(summary["fields"]) == {"text", "label"}
    assert summary["fields"]["text"]["embedded_sample"] == 2
    assert summary["fields"]["label"]["distinct_1"] == round(1 / 3, 4)


def test_a_large_dataset_is_counted_on_a_seeded_sample(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": str(i), "fields": {"text": f"word{i}"}}) + "\n" for i in range(50)
        )
    )
    summary = run_diversity.summarize(path, None, max_counted=10, max_embedded=4)
    assert summary["records"] == 50 and summary["counted_sample"] == 10
    # ten distinct one-word texts: distinct-1 of the sample is 1.0, and the same seed, same sample
    assert summary["fields"]["text"]["distinct_1"] == 1.0
    again = run_diversity.summarize(path, None, max_counted=10, max_embedded=4)
    assert again == summary
    whole = run_diversity.summarize(path, None, max_counted=50, max_embedded=4)
    assert "counted_sample" not in whole and whole["records"] == 50


def test_without_the_embed_extra_it_reports_distinct_n_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise MissingDependencyError("sentence embeddings", "embed")

    monkeypatch.setattr(run_diversity, "_embedder", missing)
    summary = run_diversity.summarize(dataset(tmp_path), None)
    assert summary["embedding"].startswith("not computed: sentence embeddings needs")
    assert "pip install 'datarefinery[embed]'" in summary["embedding"]
    assert "dispersion" not in summary["fields"]["text"] and summary["fields"]["text"]["distinct_2"]


def test_a_run_writes_it_to_the_manifest_and_prints_it(tmp_path: Path) -> None:
    result = datarefinery.run(
        sentiment_spec(count=2), tmp_path / "a", backend=ScriptedBackend(review_reply)
    )
    assert set(result.manifest["diversity"]["fields"]["text"]) == {
        "distinct_1",
        "distinct_2",
        "dispersion",
    }
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["diversity"] == result.manifest["diversity"]
    result = datarefinery.run(
        sentiment_spec(count=2),
        tmp_path / "b",
        backend=ScriptedBackend(review_reply),
        diversity=False,
    )
    assert "diversity" not in result.manifest


def test_the_cli_prints_the_summary(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        {
            **sentiment_spec(count=1),
            "steps": [{"mix": {"other": str(tmp_path / "other.jsonl"), "ratio": 0.5}}],
            "input": str(tmp_path / "in.jsonl"),
        },
    )
    row = {"text": "A fine film.", "label": "positive"}
    (tmp_path / "in.jsonl").write_text(json.dumps(row) + "\n")
    (tmp_path / "other.jsonl").write_text(
        json.dumps({**row, "text": "A bad film.", "label": "positive"}) + "\n"
    )
    done = refinery("run", spec, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "diversity of text: distinct-1 " in done.stdout and "dispersion " in done.stdout
    assert "Loading weights" not in done.stdout + done.stderr
    quiet = refinery("run", spec, "-o", tmp_path / "out2", "--no-diversity")
    assert quiet.returncode == 0 and "diversity of" not in quiet.stdout
