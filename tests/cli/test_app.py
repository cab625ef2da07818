"""The ``refinery`` command: exit codes and messages users see."""

import json
from pathlib import Path

import pytest

from tests.support.cli import refinery, write_spec
from tests.support.specs import sentiment_spec


def test_bad_spec_exits_2_with_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nsteps:\n  - zero_shot:\n      count_per_lable: 3\n")
    completed = refinery("run", spec, "-o", tmp_path / "out")
    assert completed.returncode == 2
    assert f"{spec}, line 4, field steps[0].zero_shot.count_per_lable: unknown option" in (
        completed.stderr.replace("\n", "")
    )


def test_bad_input_file_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "A fine film indeed.", "label": "positive"}\n{"label": "negative"}\n')
    spec = sentiment_spec()
    spec.update(input=str(data), steps=[{"validate": {}}])
    completed = refinery("run", write_spec(tmp_path / "spec.yaml", spec), "-o", tmp_path / "out")
    assert completed.returncode == 2
    message = completed.stderr.replace("\n", "")
    assert f"{data}, line 2, field 'text': missing" in message
    assert "Traceback" not in completed.stderr


def test_missing_spec_file(tmp_path: Path) -> None:
    completed = refinery("run", tmp_path / "nope.yaml", "-o", tmp_path / "out")
    assert completed.returncode == 2
    assert "spec file not found" in completed.stderr


def test_version() -> None:
    completed = refinery("version")
    assert completed.returncode == 0
    assert "datarefinery 0.1.0" in completed.stdout
    assert "llama-cpp-python 0.3.36" in completed.stdout


def test_export_to_csv(tmp_path: Path) -> None:
    data = tmp_path / "reviews.jsonl"
    data.write_text('{"text": "Loved every minute of it.", "label": "positive"}\n')
    spec = sentiment_spec()
    spec.update(input=str(data), steps=[{"validate": {}}])
    assert (
        refinery(
            "run", write_spec(tmp_path / "s.yaml", spec), "-o", tmp_path / "run", "-q"
        ).returncode
        == 0
    )
    completed = refinery("export", tmp_path / "run", "-o", tmp_path / "out.csv")
    assert completed.returncode == 0, completed.stderr
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header.startswith("id,text,label,provenance")


@pytest.mark.slow
def test_run_on_the_embedded_model_prints_a_summary(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec.yaml", sentiment_spec(count=1))
    completed = refinery("run", spec_path, "-o", tmp_path / "out")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert "complete in" in out
    assert "dataset.jsonl" in out and "rejected.jsonl" in out and "manifest.json" in out
    assert "tokens spent" in out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["backend"] == "llamacpp"
