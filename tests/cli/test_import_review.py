"""``refinery import-review`` (and ``export --format argilla|labelstudio``) as a user types them."""

import json
from pathlib import Path

from typer.testing import CliRunner

from datarefinery.cli.app import app
from datarefinery.cli.console import EXIT_USAGE
from datarefinery.decisions import DecisionStore
from tests.io.test_labelstudio import documented_export
from tests.test_import_review import fake_run

RUNNER = CliRunner()


def _said(output: str) -> str:
    return " ".join(output.split())


def test_export_then_import_label_studio(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1", "r2", "r3", "r4"])
    tasks = tmp_path / "tasks.json"
    done = RUNNER.invoke(app, ["export", str(run), "-o", str(tasks), "--format", "labelstudio"])
    assert done.exit_code == 0, done.output
    assert f"wrote 4 records to {tasks}" in _said(done.output)
    assert f"wrote the labeling config to {tasks.with_suffix('.xml')}" in _said(done.output)
    export = tmp_path / "export.json"
    export.write_text(json.dumps(documented_export()))
    done = RUNNER.invoke(app, ["import-review", str(run), str(export)])
    assert done.exit_code == 0, done.output
    said = _said(done.output)
    assert "Label Studio: 3 decisions stored in" in said
    assert "(accept 1 · correct 1 · reject 1)" in said
    assert "not stored: 1 drafts, 1 items without an answer" in said
    assert len(DecisionStore.of_run(run).latest()) == 3


def test_argilla_export_and_tool_option(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1"])
    records = tmp_path / "records.json"
    done = RUNNER.invoke(app, ["export", str(run), "-o", str(records), "-f", "argilla"])
    assert done.exit_code == 0, done.output
    assert "records.settings.json" in "".join(done.output.split())
    assert (tmp_path / "records.settings.json").exists()
    rows = json.loads(records.read_text())
    rows[0]["responses"] = {"label": [{"value": "negative", "status": "submitted"}]}
    records.write_text(json.dumps(rows))
    done = RUNNER.invoke(
        app,
        ["import-review", str(run), str(records), "--tool", "argilla", "--reviewer-default", "ana"],
    )
    assert done.exit_code == 0, done.output
    assert "Argilla: 1 decisions stored" in _said(done.output)
    decision = DecisionStore.of_run(run).latest()["r1"]
    assert (decision.action, decision.label, decision.by) == ("correct", "negative", "ana")


def test_errors_exit_2_with_file_and_position(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "run", ["r1"])
    export = tmp_path / "export.json"
    export.write_text(json.dumps(documented_export()))
    done = RUNNER.invoke(app, ["import-review", str(run), str(export)])
    assert done.exit_code == EXIT_USAGE
    assert "record ids that run" in _said(done.output)
    assert "task 2 (id 2), annotation 1: r2" in _said(done.output)
    done = RUNNER.invoke(app, ["import-review", str(run), str(tmp_path / "missing.json")])
    assert done.exit_code == EXIT_USAGE
    assert "missing.json: no such file" in _said(done.output)
