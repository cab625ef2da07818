"""The ``refinery`` command. It calls only the public Python API."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

import datarefinery
from datarefinery.cli.evaluate import evaluate_command, write_run_report
from datarefinery.errors import DatarefineryError, UsageError

app = typer.Typer(
    name="refinery",
    help="Synthesize, refine, curate and evaluate training data with generative models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit codes: a script can tell a bad spec from a run that stopped on its budget.
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130

console = Console(stderr=False)
err_console = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red bold]error:[/] {exc}", highlight=False, markup=True)
    return typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else 1)


@app.command("run")
def run_command(
    spec: Annotated[Path, typer.Argument(help="The run spec (YAML).", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run directory (created or resumed).")],
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard what OUT holds and start over.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log retries and calls.")
    ] = False,
    diversity: Annotated[
        bool,
        typer.Option(
            "--diversity/--no-diversity",
            help="Summarize the dataset's diversity (distinct-n, embedding dispersion).",
        ),
    ] = True,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Write OUT/report/ when complete.")
    ] = True,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="local (this machine) or ray (a Ray cluster; needs datarefinery[ray])",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster address (e.g. auto, or host:6379); default: start a local one",
        ),
    ] = None,
) -> None:
    """Run a pipeline spec into OUT: dataset.jsonl, rejected.jsonl, manifest.json, and the
    evaluation report in OUT/report/ (metrics.json, report.html, card.md).

    Running the same command again resumes: finished shards are skipped and answered model calls
    come from OUT/cache.sqlite.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    run_and_report(
        spec,
        out,
        fresh=fresh,
        quiet=quiet,
        diversity=diversity,
        report=report,
        executor=executor,
        address=address,
    )


def run_and_report(
    spec: Path | dict[str, Any],
    out: Path,
    *,
    fresh: bool,
    quiet: bool,
    diversity: bool = True,
    report: bool = False,
    executor: str = "local",
    address: str | None = None,
) -> None:
    """Run a spec (file or dict) into OUT with a progress bar, print the summary, and exit the
    command the way every run command does: 130 when interrupted, 3 when the run stopped early,
    1 or 2 (usage) with the error on a failure. With ``report``, a complete run also gets
    OUT/report/."""
    from datarefinery.cli.progress import RichProgress, print_summary

    options: dict[str, Any] = dict(
        fresh=fresh, diversity=diversity, executor=executor, address=address
    )
    try:
        if quiet:
            result = datarefinery.run(spec, out, **options)
        else:
            with RichProgress(console) as progress:
                result = datarefinery.run(spec, out, progress=progress, **options)
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: finished shards are kept; run the same command to resume"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except DatarefineryError as exc:
        raise _fail(exc) from None
    print_summary(console, result)
    if report and result.status == "complete":
        write_run_report(out)
    if result.status != "complete":
        raise typer.Exit(EXIT_STOPPED)


@app.command("export")
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
    try:
        dataset = run_dir / "dataset.jsonl"
        if not dataset.exists():
            raise UsageError(f"{run_dir} has no dataset.jsonl: is it a finished run directory?")
        count = datarefinery.write_records(out, datarefinery.read_records(dataset))
    except DatarefineryError as exc:
        raise _fail(exc) from None
    console.print(f"wrote {count} records to {out}")


app.command("evaluate")(evaluate_command)


@app.command("version")
def version_command() -> None:
    """Print the versions of datarefinery and its engine."""
    from datarefinery.runner import versions

    for name, value in versions().items():
        console.print(f"{name} {value}")


from datarefinery.cli.refine import eval_app, refine_app  # noqa: E402 - after app exists

app.add_typer(refine_app, name="refine")
app.add_typer(eval_app, name="eval")
from datarefinery.cli.s3 import experiment_app, s3_command  # noqa: E402

app.command("s3")(s3_command)
app.add_typer(experiment_app, name="experiment")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # pragma: no cover - `refinery ... | head`
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
