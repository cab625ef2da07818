"""The ``refinery`` command: one module per command group, assembled here.

The commands call the public Python API (``datarefinery.run``, ``run_s3``, ``export``, the
errors) and, for what that API does not cover, these internals:
``runner.versions`` (``version``), ``cli.progress`` (the progress bar and run summary, over
``llm.engine.EngineStats``), ``evaluate`` (``evaluate_dataset``, ``write_report``,
``report.html.lookup``), ``detect.factory`` (the PII detector of ``evaluate``),
``loop.refine_eval`` (``refinery eval``), ``loop.experiment`` (``refinery experiment``),
``loop.plan`` and ``loop.estimate`` (``refinery plan``), ``io.export.EXPORT_FORMATS`` (the names
``refinery export --format`` takes), ``import_review`` (``refinery import-review``) and ``review``
(the review page of ``refinery review``).
"""

from __future__ import annotations

import sys

import typer

from datarefinery.cli.console import console
from datarefinery.cli.evaluate import evaluate_command
from datarefinery.cli.export import export_command
from datarefinery.cli.import_review import import_review_command
from datarefinery.cli.plan import plan_command
from datarefinery.cli.refine import eval_app, refine_app
from datarefinery.cli.review import review_command
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


def version_command() -> None:
    """Print the versions of datarefinery and its engine."""
    for name, value in versions().items():
        console.print(f"{name} {value}")


app.command("run")(run_command)
app.command("plan")(plan_command)
app.command("export")(export_command)
app.command("import-review")(import_review_command)
app.command("evaluate")(evaluate_command)
app.command("review")(review_command)
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
