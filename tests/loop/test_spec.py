from __future__ import annotations

from pathlib import Path

import pytest

from datarefinery.config import LoadedSpec, RunSpec
from datarefinery.errors import ConfigError
from datarefinery.loop.spec import load_s3_spec
from datarefinery.pipeline import Pipeline

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("s3_*.yaml")))
def test_every_s3_example_validates(example: str) -> None:
    loaded = load_s3_spec(EXAMPLES / example)
    spec = loaded.spec
    # the seed synthesis builds as a run spec's steps would
    run_spec = RunSpec.model_validate(
        {"task": spec.task.model_dump(), "llm": spec.llm.model_dump(), "steps": spec.synthesis}
    )
    Pipeline.from_spec(LoadedSpec(run_spec, loaded.source, {}))


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    text = (EXAMPLES / "s3_imdb.yaml").read_text().replace("rounds: 2", "rounds: two")
    path = tmp_path / "s3.yaml"
    path.write_text(text)
    line = text.splitlines().index("  rounds: two") + 1
    with pytest.raises(ConfigError, match=rf"s3.yaml, line {line}, field loop.rounds"):
        load_s3_spec(path)


def test_a_task_without_labels_is_refused() -> None:
    with pytest.raises(ConfigError, match="label field"):
        load_s3_spec(
            {
                "task": {"description": "d", "fields": {"text": {}}},
                "synthesis": [{"zero_shot": None}],
                "data": {"validation": "v.jsonl"},
            }
        )


def test_extrapolate_options_and_synthesis_steps_are_checked_at_load(tmp_path: Path) -> None:
    text = (EXAMPLES / "s3_imdb.yaml").read_text()
    path = tmp_path / "s3.yaml"
    path.write_text(text.replace("    k: 2 ", "    kk: 2 "))
    line = (
        path.read_text()
        .splitlines()
        .index(next(x for x in path.read_text().splitlines() if x.startswith("    kk: 2")))
    )
    with pytest.raises(ConfigError, match=rf"line {line + 1}, field loop.extrapolate.kk"):
        load_s3_spec(path)
    path.write_text(text.replace("  - rationale:", "  - rationalle:"))
    with pytest.raises(ConfigError, match="unknown step 'rationalle'"):
        load_s3_spec(path)


def test_an_llm_override_replaces_the_block_and_changes_the_loops_identity() -> None:
    loaded = load_s3_spec(EXAMPLES / "s3_imdb.yaml")
    server = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "served"}
    chosen = loaded.with_llm(server)
    assert chosen.spec.llm.backend == "openai" and chosen.spec.llm.model == "served"
    assert chosen.spec.llm.temperature == loaded.spec.llm.temperature
    assert chosen.spec.spec_hash() != loaded.spec.spec_hash()
    assert loaded.with_llm({"n_threads": 1}).spec.spec_hash() == loaded.spec.spec_hash()
    assert loaded.with_llm(None) is loaded


def small_model_spec(tmp_path: Path, small_model: str) -> Path:
    text = (EXAMPLES / "s3_imdb.yaml").read_text()
    path = tmp_path / "s3.yaml"
    path.write_text(text.replace("  small_model: tfidf-lr       # or embedding-lr", small_model))
    return path


def test_small_model_takes_a_kind_or_its_options(tmp_path: Path) -> None:
    from datarefinery.models.smallmodel import LinearModelOptions, TransformerOptions

    assert load_s3_spec(EXAMPLES / "s3_imdb.yaml").small_model() == LinearModelOptions(
        kind="tfidf-lr", c=1.0
    )
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "config.json").write_text("{}")
    path = small_model_spec(
        tmp_path,
        "  small_model:\n    kind: transformer\n    weights: weights\n    epochs: 1\n"
        "    learning_rate: 0.0001\n    batch_size: 8\n    max_length: 64",
    )
    options = load_s3_spec(path).small_model()
    assert options == TransformerOptions(
        kind="transformer",
        weights=str(weights.resolve()),  # relative to the spec's folder
        epochs=1,
        learning_rate=1e-4,
        batch_size=8,
        max_length=64,
    )


@pytest.mark.parametrize(
    ("small_model", "message"),
    [
        ("  small_model: {kind: tfidf-lr, c: 0}", "field loop.small_model.tfidf-lr.c: .*greater"),
        (
            "  small_model: {kind: tfidf-lr, epochs: 3}",
            "field loop.small_model.tfidf-lr.epochs: unknown",
        ),
        (
            "  small_model: {kind: transformer, epochs: 0}",
            "field loop.small_model.transformer.epochs: .*greater",
        ),
        ("  small_model: bert", "field loop.small_model: .*'tfidf-lr', 'embedding-lr'"),
        (
            "  small_model: {kind: transformer, weights: nowhere}",
            "field loop.small_model.weights: .*nowhere is not a local Hugging Face model folder",
        ),
    ],
)
def test_small_model_errors_name_the_line(tmp_path: Path, small_model: str, message: str) -> None:
    path = small_model_spec(tmp_path, small_model)
    line = path.read_text().splitlines().index(small_model) + 1
    with pytest.raises(ConfigError, match=rf"s3.yaml, line {line}, {message}"):
        load_s3_spec(path)
