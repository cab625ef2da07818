"""``refinery s3 SPEC -o OUT`` (the S3 loop) and ``refinery experiment s3`` (its Table 2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

import datarefinery
from datarefinery import UsageError
from datarefinery.cli.console import EXIT_STOPPED, command_errors, console
from datarefinery.cli.model_options import (
    ApiKeyEnv,
    BaseUrl,
    LLMFile,
    Model,
    NCtx,
    Parallel,
    Threads,
    llm_block_from_options,
)
from datarefinery.loop.experiment import ExperimentConfig, run_experiment, table_markdown
from datarefinery.loop.spec import load_s3_spec

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No per-round lines.")]
RESUME = "run the same command again to resume"

experiment_app = typer.Typer(help="Compare generation methods on real data.", no_args_is_help=True)


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


def s3_command(
    spec: Annotated[Path, typer.Argument(help="The S3 spec (YAML).", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run directory (created or resumed).")],
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Discard what OUT holds and start over.")
    ] = False,
    quiet: Quiet = False,
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
) -> None:
    """Run the S3 loop: seed synthesis, then rounds of training a small model, collecting its
    errors on the real validation set and extrapolating them.

    Writes OUT/rounds/NN/ (each round's run, examples, training set, errors), OUT/dataset.jsonl
    (the best round's set), OUT/summary.md and OUT/summary.json. Rerun to resume. The model
    options override the spec's llm: block (and so are part of the loop's identity).
    """
    # Why long: a typer signature, one option per few lines; the body is a handful of calls
    _quiet_logs()
    say = (lambda _: None) if quiet else (lambda line: console.print(line, highlight=False))
    with command_errors(RESUME):
        llm = llm_block_from_options(
            llm_file,
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            threads=threads,
            parallel=parallel,
            n_ctx=n_ctx,
            base=load_s3_spec(spec).spec.llm.model_dump(mode="json"),
        )
        result = datarefinery.run_s3(spec, out, llm=llm, fresh=fresh, log=say)
    console.print((out / "summary.md").read_text(encoding="utf-8"), markup=False)
    if result.status != "complete":
        raise typer.Exit(EXIT_STOPPED)


@experiment_app.command("s3")
def experiment_s3_command(
    data: Annotated[
        Path, typer.Option("--data", help="Dataset folder: imdb, rte or qnli (validation/test).")
    ],
    budget: Annotated[int, typer.Option("--budget", help="Records each method may make.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (resumed).")],
    small_model: Annotated[
        str,
        typer.Option("--small-model", help="tfidf-lr, embedding-lr or transformer (fine-tune)."),
    ] = "tfidf-lr",
    rounds: Annotated[int, typer.Option("--rounds", help="Extrapolation rounds.")] = 2,
    k: Annotated[int, typer.Option("--k", help="Records extrapolated per example.")] = 2,
    seed_share: Annotated[
        float, typer.Option("--seed-share", help="Share of the budget for the seed set.")
    ] = 0.5,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature", help="Sampling temperature [default: 0.9, or the --llm file's]"
        ),
    ] = None,
    test_limit: Annotated[
        int | None, typer.Option("--test-limit", help="Use the first N test records.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Run seed.")] = 0,
    quiet: Quiet = False,
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
) -> None:
    """Gold, ZeroGen, GoldGen and S3 at the same record budget; writes OUT/table.md and
    OUT/table.json (rows: method, records, accuracy on the real test split) and the extra-data
    analysis. Rerun to resume.
    """
    # Why long: a typer signature, one option per few lines; the body is a handful of calls
    _quiet_logs()
    say = (lambda _: None) if quiet else (lambda line: console.print(line, highlight=False))
    with command_errors(RESUME):
        if small_model not in ("tfidf-lr", "embedding-lr", "transformer"):
            raise UsageError(
                f"--small-model {small_model!r}: use tfidf-lr, embedding-lr or transformer"
            )
        if not 0 < seed_share < 1:
            raise UsageError("--seed-share is a share of the budget, between 0 and 1")
        # The experiment's own defaults, under the model options: llama.cpp's 4 sequences at
        # once, and a temperature for varied records.
        base = {
            "model": "default",
            "parallel": 4,
            "concurrency": 4,
            "n_ctx": 2048,
            "temperature": 0.9,
        }
        llm = llm_block_from_options(
            llm_file,
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            threads=threads,
            parallel=parallel,
            n_ctx=n_ctx,
            base=base,
        )
        config = ExperimentConfig(
            data=data,
            budget=budget,
            out=out,
            llm={**(llm or base), **({} if temperature is None else {"temperature": temperature})},
            small_model=small_model,  # type: ignore[arg-type]  # checked above
            rounds=rounds,
            k=k,
            seed_share=seed_share,
            seed=seed,
            test_limit=test_limit,
        )
        table = run_experiment(config, log=say)
    console.print(table_markdown(table), markup=False)
    console.print(f"wrote {out / 'table.md'} and {out / 'table.json'}")
