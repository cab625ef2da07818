"""The ``refinery`` command: one module per command group, assembled here.

The commands call the public Python API (``datarefinery.run``, ``run_s3``, ``read_records``,
``write_records``, the errors) and, for what that API does not cover, these internals:
``runner.versions`` (``version``), ``cli.progress`` (the progress bar and run summary, over
``llm.engine.EngineStats``), ``evaluate`` (``evaluate_dataset``, ``write_report``,
``report.html.lookup``), ``detect.factory`` (the PII detector of ``evaluate``),
``loop.refine_eval`` (``refinery eval``) and ``loop.experiment`` (``refinery experiment``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

import datarefinery
from datarefinery import UsageError
from datarefinery.cli.console import command_errors, console
from datarefinery.cli.evaluate import evaluate_command
from datarefinery.cli.refine import eval_app, refine_app
from datarefinery.cli.run import run_command
from datarefinery.cli.s3 import experiment_app, s3_command
from datarefinery.runner import versions

app = typer.Typer(
    name="refinery",
    help="Synthesize, refine, curate and evaluate training data with generative models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option(
            "-o", "--out", help="Output file: .jsonl, .csv, .parquet, or a folder (HF dataset)."
        ),
    ],
) -> None:
    """Write a run's dataset in another format (flat columns for CSV / Parquet / HF)."""
    with command_errors():
        dataset = run_dir / "dataset.jsonl"
        if not dataset.exists():
            raise UsageError(f"{run_dir} has no dataset.jsonl: is it a finished run directory?")
        count = datarefinery.write_records(out, datarefinery.read_records(dataset))
    console.print(f"wrote {count} records to {out}")


def version_command() -> None:
    """Print the versions of datarefinery and its engine."""
    for name, value in versions().items():
        console.print(f"{name} {value}")


app.command("run")(run_command)
app.command("export")(export_command)
app.command("evaluate")(evaluate_command)
app.command("version")(version_command)
app.add_typer(refine_app, name="refine")
app.add_typer(eval_app, name="eval")
app.command("s3")(s3_command)
app.add_typer(experiment_app, name="experiment")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover - `refinery ... | head`
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
