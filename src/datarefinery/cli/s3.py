"""``refinery s3 SPEC -o OUT`` (the S3 loop) and ``refinery experiment s3`` (its Table 2)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

import datarefinery
from datarefinery import UsageError
from datarefinery.cli.console import EXIT_STOPPED, command_errors, console
from datarefinery.cli.model_options import (
    ApiKeyEnv,
    BaseUrl,
    LLMFile,
    Model,
    ModelOptions,
    NCtx,
    Parallel,
    Threads,
)
from datarefinery.cli.run import Fresh, Out
from datarefinery.loop.experiment import ExperimentConfig, run_experiment
from datarefinery.loop.methods import DEFAULT_METHODS, METHODS
from datarefinery.loop.qa_spec import is_qa_spec, load_qa_spec
from datarefinery.loop.spec import load_s3_spec
from datarefinery.loop.table import table_markdown

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No per-round lines.")]
RESUME = "run the same command again to resume"

experiment_app = typer.Typer(help="Compare generation methods on real data.", no_args_is_help=True)


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


def s3_command(
    spec: Annotated[Path, typer.Argument(help="The S3 spec (YAML).", show_default=False)],
    out: Out,
    fresh: Fresh = False,
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
    options = ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx)
    with command_errors(RESUME):
        llm = options.block(load_s3_spec(spec).spec.llm.model_dump(mode="json"))
        result = datarefinery.run_s3(spec, out, llm=llm, fresh=fresh, log=say)
    console.print((out / "summary.md").read_text(encoding="utf-8"), markup=False)
    if result.status != "complete":
        raise typer.Exit(EXIT_STOPPED)


@experiment_app.command("s3")
def experiment_s3_command(
    budget: Annotated[int, typer.Option("--budget", help="Records each method may make.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (resumed).")],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="A preset dataset folder: imdb, rte, qnli (validation/test), or adversarial_qa "
            "(extractive QA: F1 and exact match).",
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="An S3 spec (YAML) describing any labelled dataset: task, data, small_model and "
            "the seed synthesis; or a QA spec (task_type: qa) for any extractive QA dataset.",
        ),
    ] = None,
    repeats: Annotated[
        int, typer.Option("--repeats", min=1, help="Run seeds per method (mean ± sd).")
    ] = 1,
    methods: Annotated[
        str,
        typer.Option(
            "--methods",
            help="Comma-separated, or all: gold, zerogen, goldgen, s3, s3_no_rationale, seed_only.",
        ),
    ] = ",".join(DEFAULT_METHODS),
    target: Annotated[
        list[float] | None,
        typer.Option(
            "--target",
            help="A test accuracy (0-1) for the data-efficiency view, repeatable "
            "(default: each generating method's final accuracy).",
            show_default=False,
        ),
    ] = None,
    small_model: Annotated[
        str | None,
        typer.Option(
            "--small-model",
            help="tfidf-lr, embedding-lr or transformer, with default options (default: the "
            "spec's, else tfidf-lr).",
            show_default=False,
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option(
            "--rounds",
            help="Extrapolation rounds (default: the spec's, else 2).",
            show_default=False,
        ),
    ] = None,
    k: Annotated[
        int | None,
        typer.Option(
            "--k",
            help="Records extrapolated per example (default: the spec's, else 2).",
            show_default=False,
        ),
    ] = None,
    seed_share: Annotated[
        float, typer.Option("--seed-share", help="Share of the budget for the seed set.")
    ] = 0.5,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            help="Sampling temperature (default: the spec's; for --data 0.9, or the --llm file's).",
        ),
    ] = None,
    test_limit: Annotated[
        int | None, typer.Option("--test-limit", help="Use the first N test records.")
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="First run seed (default: the spec's, else 0).", show_default=False
        ),
    ] = None,
    quiet: Quiet = False,
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
) -> None:
    """Gold, ZeroGen, GoldGen and S3 (and the ablations s3_no_rationale, seed_only) at the same
    record budget, each with --repeats run seeds; writes OUT/table.md and OUT/table.json (mean ±
    sd of test/val/train accuracy, records, tokens; the data-efficiency view; the extra-data
    analysis). Rerun to resume.
    """
    # Why long: a typer signature, one option per few lines; the body is a handful of calls
    _quiet_logs()
    say = (lambda _: None) if quiet else (lambda line: console.print(line, highlight=False))
    with command_errors(RESUME):
        if small_model not in (None, "tfidf-lr", "embedding-lr", "transformer"):
            raise UsageError(
                f"--small-model {small_model!r}: use tfidf-lr, embedding-lr or transformer "
                "(their options go in a spec's loop.small_model)"
            )
        if (data is None) == (spec is None):
            raise UsageError(
                "name the dataset with --data DIR (imdb, rte, qnli, adversarial_qa) or --spec FILE"
            )
        options = ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx)
        llm = _experiment_llm(spec, temperature, options)
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        config = ExperimentConfig(
            budget=budget,
            out=out,
            data=data,
            spec=spec,
            llm=llm,
            small_model=small_model,  # type: ignore[arg-type]  # checked above
            rounds=rounds,
            k=k,
            seed_share=seed_share,
            seed=seed,
            repeats=repeats,
            methods=list(METHODS) if chosen == ["all"] else chosen,
            targets=tuple(target or ()),
            test_limit=test_limit,
        )
        table = run_experiment(config, log=say)
    console.print(table_markdown(table), markup=False)
    console.print(f"wrote {out / 'table.md'} and {out / 'table.json'}")


def _experiment_llm(
    spec: Path | None, temperature: float | None, options: ModelOptions
) -> dict[str, Any] | None:
    """The model block: the options over the spec's block, or for a preset over the
    experiment's defaults (llama.cpp's 4 sequences at once, a temperature for varied records).
    None: the spec's block as it is.
    """
    if spec is not None and is_qa_spec(spec):
        base = load_qa_spec(spec).llm.model_dump(mode="json")
    elif spec is not None:
        base = load_s3_spec(spec).spec.llm.model_dump(mode="json")
    else:
        base = {
            "model": "default",
            "parallel": 4,
            "concurrency": 4,
            "n_ctx": 2048,
            "temperature": 0.9,
        }
    llm = options.block(base)
    if temperature is not None:
        llm = {**(llm or base), "temperature": temperature}
    return llm if llm is not None or spec is not None else base
