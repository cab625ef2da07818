"""``refinery plan SPEC -o OUT``: what a run will cost, from a few real calls, before it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from datarefinery.cli.console import command_errors, console
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
from datarefinery.loop.estimate import Range, StepEstimate, Totals
from datarefinery.loop.plan import Plan, plan


def plan_command(
    spec: Annotated[Path, typer.Argument(help="The run spec (YAML).", show_default=False)],
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Run directory (left planned; run continues it).")
    ],
    sample: Annotated[
        int,
        typer.Option("--sample", "-n", min=1, help="Records sampled per step (real model calls)."),
    ] = 3,
    prompts: Annotated[
        bool, typer.Option("--prompts/--no-prompts", help="Print each model step's first prompt.")
    ] = True,
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
) -> None:
    """Validate SPEC, render each model step's first prompt, make a few real calls per step and
    print the run's estimated calls, tokens, cost and wall time, per step and in total.

    OUT is left marked as planned, holding only the response cache of the sampled calls:
    `refinery run SPEC -o OUT` continues there and answers them from the cache (give it the
    same model options).
    """
    options = ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx)
    with command_errors():
        loaded, llm = spec_and_llm(spec, options)
        result = plan(loaded, out, sample=sample, llm=llm)
    print_plan(result, prompts=prompts)


def _num(value: float) -> str:
    return f"{value:,.0f}"


def _usd(value: float) -> str:
    return f"${value:,.4f}"


def _time(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _cell(value: Range, fmt: str = "num") -> str:
    render = {"num": _num, "usd": _usd, "time": _time}[fmt]
    if render(value.low) == render(value.high):
        return render(value.mid)
    return f"{render(value.mid)} ({render(value.low)}–{render(value.high)})"


def _row(name: str, records_in: str, values: StepEstimate | Totals, priced: bool) -> list[str]:
    return [
        name,
        records_in,
        _cell(values.calls),
        _cell(values.prompt_tokens),
        _cell(values.completion_tokens),
        _cell(values.cost_usd, fmt="usd") if priced else "-",
        _cell(values.seconds, fmt="time"),
    ]


def print_plan(result: Plan, *, prompts: bool = True) -> None:
    """The plan as a person reads it: prompts, then the table, then how ranges are made and the
    warnings.
    """
    console.print(
        f"[bold]Plan for {escape(result.name)}[/]: {result.sample} record(s) sampled per step, "
        f"run directory {escape(str(result.run_dir))} (planned)"
    )
    if prompts:
        for step in result.steps:
            if step.prompt is not None:
                console.rule(f"first prompt of {escape(step.name)}", align="left")
                console.print(escape(step.prompt), highlight=False)
        console.rule()
    priced = result.total.cost_usd.high > 0
    table = Table(show_edge=False, header_style="bold")
    columns = ("step", "records in", "calls", "prompt tokens", "completion tokens", "cost", "time")
    for column in columns:
        table.add_column(column, justify="left" if column == "step" else "right")
    for step in result.steps:
        table.add_row(*_row(step.name, _cell(step.records_in), step, priced))
    table.add_row(*_row("total", "", result.total, priced), style="bold")
    console.print(table)
    sampled = sum(s.sample_calls for s in result.steps)
    cached = sum(s.cached_calls for s in result.steps)
    console.print(
        f"sample: {sampled} call(s) ({cached} from the cache), "
        f"{result.spent.total_tokens:,} tokens spent now; the run answers them from the cache "
        "and counts them in its budget.",
        highlight=False,
    )
    console.print(
        "ranges: 95 % t-intervals of the sample's per-record and per-call means, times the "
        "records in (ranges too after the first step); time assumes "
        f"{result.parallel} call(s) at once, its high end one at a time."
        + ("" if priced else " No cost: the spec sets no llm.pricing."),
        highlight=False,
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
