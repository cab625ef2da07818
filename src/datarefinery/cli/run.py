"""``refinery run SPEC -o OUT``, and the run-and-report sequence the ``refine`` commands share
(with the run directory's options, which ``s3`` takes too).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

import datarefinery
from datarefinery.cli import progress
from datarefinery.cli.console import EXIT_STOPPED, EXIT_WAITING, command_errors, console
from datarefinery.cli.evaluate import write_run_report
from datarefinery.cli.model_options import (
    ApiKeyEnv,
    BaseUrl,
    LLMFile,
    Model,
    ModelOptions,
    NCtx,
    Parallel,
    Threads,
    spec_and_llm,
)
from datarefinery.config import LoadedSpec

Out = Annotated[Path, typer.Option("-o", "--out", help="Run directory (created or resumed).")]
Fresh = Annotated[bool, typer.Option("--fresh", help="Discard what OUT holds and start over.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def run_command(
    spec: Annotated[Path, typer.Argument(help="The run spec (YAML).", show_default=False)],
    out: Out,
    fresh: Fresh = False,
    quiet: Quiet = False,
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
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
) -> None:
    """Run a pipeline spec into OUT: dataset.jsonl, rejected.jsonl, manifest.json, and the
    evaluation report in OUT/report/ (metrics.json, report.html, card.md).

    Running the same command again resumes: finished shards are skipped and answered model calls
    come from OUT/cache.sqlite.

    Exit codes: 0 complete, 1 error, 2 usage error, 3 stopped early (budget, backend), 4 waiting
    for review (a review step has undecided records: run `refinery review OUT --reviewer NAME`,
    then this command again), 130 interrupted.

    The model options override the spec's llm: block; the effective block is part of the run's
    identity, so OUT made with another model is refused (use --fresh, or another -o).
    """
    # Why long: a typer signature, one option per few lines; the body is a handful of calls
    options = ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx)
    with command_errors():
        loaded, llm = spec_and_llm(spec, options)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    run_and_report(
        loaded,
        out,
        fresh=fresh,
        quiet=quiet,
        diversity=diversity,
        report=report,
        executor=executor,
        address=address,
        llm=llm,
    )


def run_and_report(
    spec: Path | dict[str, Any] | LoadedSpec,
    out: Path,
    *,
    fresh: bool,
    quiet: bool,
    diversity: bool = True,
    report: bool = False,
    executor: str = "local",
    address: str | None = None,
    llm: dict[str, Any] | None = None,
) -> None:
    """Run a spec (file or dict) into OUT with a progress bar, print the summary, and exit the
    command the way every run command does: 130 when interrupted, 3 when the run stopped early,
    4 when it waits for review, 1 or 2 (usage) with the error on a failure. With ``report``, a
    complete run also gets OUT/report/. ``llm`` overrides the spec's model block.
    """
    options: dict[str, Any] = dict(
        fresh=fresh, diversity=diversity, executor=executor, address=address, llm=llm
    )
    with command_errors("finished shards are kept; run the same command to resume"):
        if quiet:
            result = datarefinery.run(spec, out, **options)
        else:
            with progress.RichProgress(console) as sink:
                result = datarefinery.run(spec, out, progress=sink, **options)
    progress.print_summary(console, result)
    if report and result.status == "complete":
        write_run_report(out)
    if result.status == "waiting_for_review":
        raise typer.Exit(EXIT_WAITING)
    if result.status != "complete":
        raise typer.Exit(EXIT_STOPPED)
