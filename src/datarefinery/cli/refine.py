"""``refinery refine pii|detox|code`` and ``refinery eval pii|detox``.

The refine commands build the spec a user would write (one step) and run it with ``runner.run``,
so OUT is an ordinary resumable run directory. The eval commands run each method the same way
under a work folder and print / write the figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from datarefinery import UsageError
from datarefinery.cli.console import command_errors, console, fail
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
from datarefinery.cli.run import Fresh, Out, Quiet, run_and_report
from datarefinery.loop.detox_eval import evaluate_detox
from datarefinery.loop.refine_eval import PII_METHODS, REFINE_LLM, evaluate_pii

refine_app = typer.Typer(
    help="Rewrite records to remove PII, toxicity or secrets (verified).", no_args_is_help=True
)
eval_app = typer.Typer(help="Score refinement methods on labelled data.", no_args_is_help=True)

Input = Annotated[Path, typer.Argument(help="Records: .jsonl, .csv, .parquet.", show_default=False)]
Field_ = Annotated[str, typer.Option("--field", help="The text field to refine.")]
Seed = Annotated[int, typer.Option("--seed", help="Run seed (model calls and sampling).")]
KeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="Surrogate key file (mode 600, >= 32 random bytes): separate runs then pick the same "
        "fake for the same value. Default: a random key kept in OUT/secrets/.",
    ),
]
KeyEnv = Annotated[
    str | None,
    typer.Option("--key-env", help="Environment variable holding the surrogate key instead."),
]
Detector = Annotated[
    str, typer.Option("--detector", help="regex | presidio | both (PII detector).")
]


def _llm(options: ModelOptions) -> dict[str, Any]:
    """The refine commands' model block (``REFINE_LLM``) under the model options."""
    with command_errors():
        chosen = options.block(REFINE_LLM)
    return chosen or dict(REFINE_LLM)


def _spec(
    name: str,
    input: Path,
    step: dict[str, Any],
    llm: dict[str, Any],
    seed: int,
    key_file: Path | None = None,
    key_env: str | None = None,
) -> dict[str, Any]:
    spec = {"name": name, "seed": seed, "llm": llm, "input": str(input), "steps": [step]}
    if key_file is not None or key_env is not None:
        file = str(key_file.resolve()) if key_file is not None else None
        spec["surrogate_key"] = {"file": file, "env": key_env}
    return spec


@refine_app.command("pii")
def refine_pii(
    input: Input,
    out: Out,
    method: Annotated[
        str, typer.Option("--method", help="gdr (model rewrite, verified) | dirs (replace only)")
    ] = "gdr",
    placeholder: Annotated[
        bool, typer.Option("--placeholder", help="dirs: <PERSON> instead of fake values")
    ] = False,
    consistency: Annotated[
        str, typer.Option("--consistency", help="record | dataset: scope of equal surrogates")
    ] = "record",
    detector: Detector = "both",
    detection: Annotated[
        str,
        typer.Option(
            "--detection",
            help="gdr: model+detectors (the model also lists the personal values of every "
            "record) | detectors (only records with a detected span reach the model; faster)",
        ),
    ] = "model+detectors",
    field: Field_ = "text",
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
    seed: Seed = 0,
    key_file: KeyFile = None,
    key_env: KeyEnv = None,
    fresh: Fresh = False,
    quiet: Quiet = False,
) -> None:
    """Remove PII from INPUT's text field into the run directory OUT."""
    options: dict[str, Any] = {
        "field": field,
        "detector": {"kind": detector},
        "consistency": consistency,
    }
    if method == "dirs":
        step = {"dirs": {**options, "mode": "placeholder" if placeholder else "surrogate"}}
    elif method == "gdr":
        step = {"pii_rewrite": {**options, "detection": detection}}
    else:
        raise fail(UsageError(f"--method is gdr or dirs, not {method!r}"))
    llm = _llm(ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx))
    spec = _spec("refine-pii", input, step, llm, seed, key_file, key_env)
    run_and_report(spec, out, fresh=fresh, quiet=quiet)


MeaningCheck = Annotated[str, typer.Option(help="Meaning checked by: cosine | judge | both")]


@refine_app.command("detox")
def refine_detox(
    input: Input,
    out: Out,
    threshold: Annotated[float, typer.Option(help="Rewrite records scored at or above.")] = 0.5,
    scorer: Annotated[str, typer.Option(help="profanity | llm | both")] = "profanity",
    meaning_check: MeaningCheck = "both",
    field: Field_ = "text",
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
    seed: Seed = 0,
    fresh: Fresh = False,
    quiet: Quiet = False,
) -> None:
    """Rewrite toxic records of INPUT politely (meaning kept) into OUT."""
    options = {"threshold": threshold, "scorer": scorer, "meaning_check": meaning_check}
    step = {"detox_rewrite": {"field": field, **options}}
    llm = _llm(ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx))
    run_and_report(_spec("refine-detox", input, step, llm, seed), out, fresh=fresh, quiet=quiet)


@refine_app.command("code")
def refine_code(
    input: Input,
    out: Out,
    language: Annotated[str, typer.Option(help="python | other")] = "python",
    field: Field_ = "text",
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
    seed: Seed = 0,
    key_file: KeyFile = None,
    key_env: KeyEnv = None,
    fresh: Fresh = False,
    quiet: Quiet = False,
) -> None:
    """Replace secrets and PII in the comments and strings of INPUT's code into OUT."""
    step = {"code_anonymize": {"field": field, "language": language}}
    llm = _llm(ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx))
    spec = _spec("refine-code", input, step, llm, seed, key_file, key_env)
    run_and_report(spec, out, fresh=fresh, quiet=quiet)


def _work(work: Path | None, out: Path | None, kind: str) -> Path:
    if work is not None:
        return work
    if out is not None:
        return out.with_name(f"{out.stem}.runs")
    return Path(f"eval-{kind}-runs")


def _write(result: dict[str, Any], out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"wrote {out}")


@eval_app.command("pii")
def eval_pii(
    gold: Annotated[Path, typer.Option("--gold", help="JSONL with text and gold spans.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the figures as JSON.")] = None,
    method: Annotated[
        list[str] | None, typer.Option("--method", help=" | ".join(PII_METHODS))
    ] = None,
    work: Annotated[Path | None, typer.Option("--work", help="Where the runs go.")] = None,
    limit: Annotated[int | None, typer.Option(help="Score a seeded sample of N records.")] = None,
    detector: Detector = "both",
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
    seed: Seed = 0,
) -> None:
    """Score PII removal per method: token recall (no identifying token of a value left), lenient
    recall (the full value gone), precision, F1, leaks, per entity type.
    """
    # Why long: a typer signature, one option per line or few; then one call and the table
    methods = method or ["dirs", "pii_rewrite"]
    unknown = [m for m in methods if m not in PII_METHODS]
    if unknown:
        raise fail(UsageError(f"unknown method {unknown}; choose from {sorted(PII_METHODS)}"))
    llm = _llm(ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx))
    with command_errors():
        result = evaluate_pii(
            gold,
            _work(work, out, "pii"),
            methods=methods,
            llm=llm,
            detector={"kind": detector},
            limit=limit,
            seed=seed,
        )
    table = Table(
        title=f"PII removal on {gold} ({result['records']} records)",
        caption="token recall: no identifying token of a gold value left (F1, leaks use it); "
        "lenient recall: the full value string gone",
    )
    columns = {
        "method": "",
        "token recall": "token_recall",
        "lenient recall": "lenient_recall",
        "precision": "precision",
        "F1": "f1",
        "leaks": "leaks",
        "lenient leaks": "lenient_leaks",
        "kept": "preservation",
        "rec/s": "records_per_s",
    }
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, m in result["methods"].items():
        table.add_row(name, *(str(m.get(k, "-")) for k in list(columns.values())[1:]))
    console.print(table)
    for name, m in result["methods"].items():
        per_type = ", ".join(
            f"{t} {v['token_removed']}/{v['gold']} (lenient {v['lenient_removed']})"
            for t, v in m.get("per_type", {}).items()
        )
        console.print(f"{name} (token / gold): {per_type}", highlight=False)
    print_outcomes(result)
    _write(result, out)


def print_outcomes(result: dict[str, Any]) -> None:
    """A row per outcome and method, for the methods whose step names outcomes (GDR)."""
    named = {n: m["outcomes"] for n, m in result["methods"].items() if m.get("outcomes")}
    if not named:
        return
    table = Table(
        title="What became of each record",
        caption="rewritten: the model's rewrite, verified; rewritten_patched: the model's rewrite "
        "with leaked values replaced; replaced: detect-and-replace fallback; unchanged: nothing "
        "found by the detectors or the model",
    )
    table.add_column("outcome")
    for name in named:
        table.add_column(name, justify="right")
    for outcome in next(iter(named.values())):
        table.add_row(outcome, *(str(counts.get(outcome, 0)) for counts in named.values()))
    console.print(table)


@eval_app.command("detox")
def eval_detox(
    pairs: Annotated[Path, typer.Option("--pairs", help="JSONL: toxic + neutral_references.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the figures as JSON.")] = None,
    work: Annotated[Path | None, typer.Option("--work", help="Where the run goes.")] = None,
    limit: Annotated[
        int | None, typer.Option(help="Score a seeded sample of N measured records.")
    ] = None,
    scorer: Annotated[str, typer.Option(help="The step's gate: profanity | llm | both")] = (
        "profanity"
    ),
    meaning_check: MeaningCheck = "both",
    reserve: Annotated[
        int,
        typer.Option(
            help="Rows held out of measurement to train and calibrate the independent toxicity "
            "scorers (0: none, gate scorer only)."
        ),
    ] = 300,
    reserve_seed: Annotated[int, typer.Option(help="Seed of the reserved slice.")] = 0,
    llm_file: LLMFile = None,
    model: Model = None,
    base_url: BaseUrl = None,
    api_key_env: ApiKeyEnv = None,
    threads: Threads = None,
    parallel: Parallel = None,
    n_ctx: NCtx = None,
    seed: Seed = 0,
) -> None:
    """Score detoxification: share non-toxic by the gate and by independent scorers, similarity
    to the references and to the input.
    """
    llm = _llm(ModelOptions(llm_file, model, base_url, api_key_env, threads, parallel, n_ctx))
    with command_errors():
        result = evaluate_detox(
            pairs,
            _work(work, out, "detox"),
            llm=llm,
            options={"scorer": scorer, "meaning_check": meaning_check},
            limit=limit,
            seed=seed,
            reserve=reserve,
            reserve_seed=reserve_seed,
        )
    print_detox(result)
    _write(result, out)


def print_detox(result: dict[str, Any]) -> None:
    """The toxicity table (texts x scorers) and the similarity table."""
    held = result["reserve"]
    if held["rows"]:
        console.print(
            f"reserved {held['rows']} rows (seed {held['seed']}, ids in {held['ids_file']}) to "
            f"train and calibrate the independent scorers; measured on the other "
            f"{held['measured_from']} ({result['records']} sampled)",
            highlight=False,
        )
    else:
        console.print("no reserved rows: toxicity by the gate's own scorer only", highlight=False)
    scorers = result["scorers"]
    table = Table(title=f"Toxicity on {result['pairs']} ({result['records']} records)")
    table.add_column("texts")
    for name, about in scorers.items():
        role = "gate" if about["role"] == "gate" else about["role"].split(",")[0]
        label = f"{name} ({role}, < {about['threshold']})"
        table.add_column(f"{label} non-toxic", justify="right")
        table.add_column("mean toxicity", justify="right")
    for texts, figures in result["toxicity"].items():
        cells = []
        for name in scorers:
            cells += [str(figures[name]["non_toxic"]), str(figures[name]["mean_toxicity"])]
        table.add_row(f"{texts} ({figures['count']})", *cells)
    console.print(table)
    for name, about in scorers.items():
        console.print(f"{name}: {about['model']}", highlight=False)
    columns = ("similarity_to_input", "similarity_to_reference", "unchanged", "records_per_s")
    similarity = Table(title="Meaning kept")
    similarity.add_column("method")
    for column in columns:
        similarity.add_column(column.replace("_", " "), justify="right")
    for name, m in result["methods"].items():
        similarity.add_row(name, *(str(m.get(k, "-")) for k in columns))
    console.print(similarity)
    stopped = result["methods"]["detox_rewrite"].get("rewrites_stopped_by_check")
    if stopped:
        counts = ", ".join(f"{check} {n}" for check, n in stopped.items())
        console.print(f"rewrites stopped by each check (re-asked or rejected): {counts}")
