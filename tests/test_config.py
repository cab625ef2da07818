from pathlib import Path

import pytest

from datarefinery.config import load_spec, spec_from_dict
from datarefinery.errors import ConfigError, InputFileError
from tests.support.specs import sentiment_spec


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_example_spec_loads() -> None:
    loaded = load_spec(Path(__file__).parent.parent / "examples" / "sentiment.yaml")
    assert loaded.spec.task is not None
    assert loaded.spec.task.label_field == "label"
    assert list(loaded.spec.task.labels) == ["positive", "negative"]


def test_unknown_option_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nllm:\n  backend: llamacpp\n  temprature: 0.5\nsteps:\n  - zero_shot: {}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert f"{path}, line 4" in message
    assert "llm.temprature" in message
    assert "unknown option" in message


def test_bad_value_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nllm:\n  temperature: hot\nsteps:\n  - zero_shot: {}\n")
    with pytest.raises(ConfigError, match=r"line 3, field llm\.temperature"):
        load_spec(path)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsteps: [\n  - a: b\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(path)


def test_openai_backend_needs_base_url() -> None:
    spec = sentiment_spec(backend="openai", model="m")
    with pytest.raises(ConfigError, match="base_url"):
        spec_from_dict(spec)


def test_spec_hash_ignores_execution_settings() -> None:
    a = spec_from_dict(sentiment_spec()).spec
    b = spec_from_dict(sentiment_spec(concurrency=16, budget={"max_tokens": 10})).spec
    c = spec_from_dict(sentiment_spec(temperature=0.1)).spec
    assert a.spec_hash() == b.spec_hash()
    assert a.spec_hash() != c.spec_hash()


def test_spec_hash_ignores_the_worker_count() -> None:
    """A run resumes with another ``executor.workers`` (the output does not depend on it), and
    specs written before the option existed keep their hash."""
    a = spec_from_dict(sentiment_spec()).spec
    b = spec_from_dict({**sentiment_spec(), "executor": {"workers": 3}}).spec
    assert b.executor.workers == 3 and a.executor.workers is None
    assert a.spec_hash() == b.spec_hash()


def test_worker_count_is_validated_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nexecutor:\n  workers: 0\nsteps:\n  - filter: {}\n")
    with pytest.raises(ConfigError, match=r"line 3, field executor\.workers"):
        load_spec(path)


def test_labels_may_be_a_list() -> None:
    spec = sentiment_spec()
    spec["task"]["labels"] = ["positive", "negative"]
    loaded = spec_from_dict(spec)
    assert loaded.spec.task is not None
    assert loaded.spec.task.labels == {"positive": "", "negative": ""}


def test_label_field_needs_labels() -> None:
    spec = sentiment_spec()
    spec["task"]["labels"] = {}
    with pytest.raises(ConfigError, match="list the labels"):
        spec_from_dict(spec)


@pytest.mark.parametrize(
    "example",
    sorted(
        p.name
        for p in (Path(__file__).parent.parent / "examples").glob("*.yaml")
        if not p.name.startswith("s3_")  # S3 specs: tests/loop/test_spec.py
    ),
)
def test_every_example_spec_builds_its_pipeline(example: str) -> None:
    from datarefinery.pipeline import Pipeline
    from datarefinery.steps.base import StepContext

    loaded = load_spec(Path(__file__).parent.parent / "examples" / example)
    pipeline = Pipeline.from_spec(loaded)
    for index, step in enumerate(pipeline.steps):
        # setup reads the seeds, pools and facts the spec names: they must exist and be valid
        step.setup(
            StepContext(
                name=pipeline.names[index],
                index=index,
                seed=loaded.spec.seed,
                task=loaded.spec.task,
                llm=loaded.spec.llm,
                base_dir=loaded.base_dir,
            )
        )


SEED_SPEC = """\
task:
  description: d
  fields:
    text: {}
    label: {type: label}
  labels: [pos, neg]
  seeds:
    - {text: fine, label: pos}
    - {text: bad, label: nope}
steps:
  - zero_shot: {}
"""


def test_a_bad_inline_seed_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, SEED_SPEC)
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert str(caught.value) == (
        f"{path}, line 9, field task.seeds[1].label: 'nope' is not one of the labels ['pos', 'neg']"
    )
    path = write(tmp_path, SEED_SPEC.replace("{text: fine, label: pos}", "{txt: x}"))
    with pytest.raises(ConfigError, match=r"line 8, field task.seeds\[0\].text: missing"):
        load_spec(path)
    path = write(
        tmp_path, SEED_SPEC.replace("{text: fine, label: pos}", "{text: a, label: pos, x: 1}")
    )
    with pytest.raises(ConfigError, match=r"line 8, field task.seeds\[0\].x: unknown field"):
        load_spec(path)


def test_a_bad_seed_file_names_its_own_line_and_field(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        '{"text": "ok", "label": "pos", "extra": "ignored"}\n\n{"text": 3, "label": "neg"}\n'
    )
    spec = SEED_SPEC.split("  seeds:")[0] + "  seeds: seeds.jsonl\nsteps:\n  - zero_shot: {}\n"
    path = write(tmp_path, spec)
    with pytest.raises(InputFileError) as caught:
        load_spec(path)
    assert str(caught.value) == f"{seeds}, line 3, field 'text': expected text, got int"
    seeds.write_text('{"text": "ok", "label": "pos"}\n')
    assert load_spec(path).spec.task is not None
    seeds.unlink()
    with pytest.raises(InputFileError, match="no such file"):
        load_spec(path)
