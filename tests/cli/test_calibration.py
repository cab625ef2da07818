"""``refinery review OUT --calibration``: the judges' and labellers' agreement with people."""

from pathlib import Path

from typer.testing import CliRunner

from datarefinery.cli.app import app
from datarefinery.cli.console import EXIT_USAGE
from tests.support.calibration_runs import labelled_run

RUNNER = CliRunner()


def _review(out: Path) -> list[str]:
    return ["review", str(out), "--calibration"]


def _said(output: str) -> str:
    return " ".join(output.split())


def test_the_table_prints_the_figures(tmp_path: Path) -> None:
    out = labelled_run(tmp_path)
    done = RUNNER.invoke(app, _review(out), env={"COLUMNS": "160"})
    assert done.exit_code == 0, done.output
    said = _said(done.output)
    assert "Judges and labellers against people (15 decisions)" in said
    assert "label: label kappa" in said and "0.6 [" in said
    assert "n=10, raw agreement 0.8; left out: 5 rejected by a person" in said
    assert "judge: kappa at threshold 4" in said and "0.53 [" in said
    assert "judge: best threshold" in said and "3 (kappa 0.675 [" in said
    assert "bootstrap over records for kappa, Wilson for shares" in said


def test_without_decisions_it_says_how_to_make_some(tmp_path: Path) -> None:
    out = labelled_run(tmp_path, decide=False)
    done = RUNNER.invoke(app, _review(out), env={"COLUMNS": "160"})
    assert done.exit_code == 0
    assert f"decide on some records with `refinery review {out}` first" in _said(done.output)


def test_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path: Path) -> None:
    done = RUNNER.invoke(app, _review(tmp_path))
    assert done.exit_code == EXIT_USAGE
    assert "is not a run directory (no manifest.json)" in _said(done.output)
