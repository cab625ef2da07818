"""``refinery evaluate``: metrics.json, report.html and card.md for a dataset or a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from datarefinery import DatarefineryError, UsageError
from datarefinery.cli.console import command_errors, console, err_console
from datarefinery.detect.factory import DetectorConfig, make_detector
from datarefinery.evaluate import evaluate_dataset, write_report
from datarefinery.evaluate.report.html import lookup


def evaluate_command(
    dataset: Annotated[
        Path, typer.Argument(help="A run directory or a data file.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for the report files.")],
    real: Annotated[
        Path | None,
        typer.Option("--real", help="Labeled real data: fidelity, and utility's test set."),
    ] = None,
    real_train: Annotated[
        Path | None,
        typer.Option("--real-train", help="A real training split: utility's reference model."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="The records the dataset was made from: privacy overlap."),
    ] = None,
    known_values: Annotated[
        Path | None,
        typer.Option("--known-values", help="A file of sensitive values, one per line."),
    ] = None,
    text_field: Annotated[
        str | None, typer.Option("--text-field", help="Text field(s), comma-separated.")
    ] = None,
    label_field: Annotated[str | None, typer.Option("--label-field")] = None,
    real_label_field: Annotated[
        str | None,
        typer.Option("--real-label-field", help="The real sets' label column, if named otherwise."),
    ] = None,
    pii_detector: Annotated[
        str,
        typer.Option("--pii-detector", help="regex (no model), presidio or both (refine extra)"),
    ] = "both",
    max_embed: Annotated[
        int, typer.Option("--max-embed", help="Records per set for embedding metrics.")
    ] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Measure a dataset: diversity; fidelity and utility with --real; privacy with --source.

    Writes OUT/metrics.json, OUT/report.html (open it in a browser; it works offline) and
    OUT/card.md (a dataset card; for a run directory it reads the run's manifest).
    """
    # Why long: a typer signature, one option per few lines; the body is a handful of calls
    with command_errors():
        try:
            detector = make_detector(DetectorConfig.model_validate({"kind": pii_detector}))
        except ValueError:
            raise UsageError("--pii-detector: use regex, presidio or both") from None
        values: list[str] = []
        if known_values is not None:
            if not known_values.exists():
                raise UsageError(f"--known-values: no such file {known_values}")
            text = known_values.read_text(encoding="utf-8")
            values = [line.strip() for line in text.splitlines() if line.strip()]
        with console.status("evaluating (embedding the records takes a while)"):
            evaluation = evaluate_dataset(
                dataset,
                real=real,
                real_train=real_train,
                source=source,
                known_values=values,
                text_field=text_field,
                label_field=label_field,
                real_label_field=real_label_field,
                detector=detector,
                max_embed=max_embed,
                seed=seed,
            )
            paths = write_report(evaluation, out)
    print_headline(evaluation.metrics)
    for name, path in paths.items():
        console.print(f"{name:8} {path}")


def write_run_report(run_dir: Path) -> None:
    """The report of a finished run into RUN/report; a failure is a warning, never a failed run
    (the dataset is already written).
    """
    try:
        # Pattern detectors only: loading spaCy for every run would cost more than the run.
        evaluation = evaluate_dataset(run_dir, detector=make_detector("regex"))
        paths = write_report(evaluation, run_dir / "report")
    except (DatarefineryError, ImportError) as exc:
        err_console.print(f"[yellow]report skipped:[/] {escape(str(exc))}", highlight=False)
        return
    console.print(f"report   {paths['report']}  (metrics.json, card.md beside it)")


def print_headline(metrics: dict[str, object]) -> None:
    """The few numbers worth seeing in a terminal."""
    parts = [
        ("records", "diversity.records"),
        ("distinct-2", "diversity.distinct_2"),
        ("self-ROUGE-2", "diversity.self_rouge2"),
        ("Vendi", "diversity.vendi_score"),
        ("C2ST AUC", "fidelity.classifier_auc_embedding"),
        ("MMD", "fidelity.mmd_rbf"),
        ("utility acc (tfidf)", "utility.tfidf-lr.dataset.accuracy"),
        ("utility acc (embedding)", "utility.embedding-lr.dataset.accuracy"),
        ("records with PII", "privacy.pii.records_with_pii"),
    ]
    shown = [(name, lookup(metrics, key)) for name, key in parts]
    console.print(" · ".join(f"{name} {value}" for name, value in shown if value is not None))
