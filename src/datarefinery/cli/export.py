"""``refinery export``: a run's dataset (or any records file) as records or as training data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer

import datarefinery
from datarefinery import UsageError
from datarefinery.cli.console import command_errors, console
from datarefinery.io.argilla import settings_path
from datarefinery.io.export import EXPORT_FORMATS
from datarefinery.io.labelstudio import config_path
from datarefinery.waiting import REVIEW_RECORDS, ReviewRecords, waiting_step

_FORMATS_HELP = "; ".join(f"{name}: {f.summary}" for name, f in EXPORT_FORMATS.items())
_TRAINING = {name for name, f in EXPORT_FORMATS.items() if f.takes_mapping}
# The annotation tools' project settings, written next to the records.
_SIDECARS = {
    "labelstudio": ("labeling config", config_path),
    "argilla": ("settings", settings_path),
}

# What each --records value exports of a run waiting for review (datarefinery.waiting).
_WHICH = {
    "undecided": "the records it waits on (--records routed | all for more)",
    "routed": "every record routed to review, decided or not",
    "all": "the review step's whole input",
}


def _field(part: str, default: str) -> Any:
    return typer.Option(
        f"--{part}-field",
        help=f"Record field holding the {part} (default: {default}).",
        show_default=False,
        rich_help_panel="Field mapping (training formats)",
    )


def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A run directory (finished, or waiting for review), or a records file "
            "(.jsonl, .csv, .parquet, HF folder).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="Output: .jsonl, .json, .csv, .parquet, or a folder (Hugging Face dataset).",
        ),
    ],
    format: Annotated[
        str | None,
        typer.Option(
            "-f",
            "--format",
            help=f"{_FORMATS_HELP}. Default: whole records, the format from OUT's suffix.",
            show_default=False,
        ),
    ] = None,
    messages_field: Annotated[str | None, _field("messages", "messages, when present")] = None,
    prompt_field: Annotated[str | None, _field("prompt", "prompt | instruction | question")] = None,
    response_field: Annotated[str | None, _field("response", "response | output | answer")] = None,
    system_field: Annotated[str | None, _field("system", "none, so no system message")] = None,
    input_field: Annotated[str | None, _field("input", "input, when present")] = None,
    chosen_field: Annotated[str | None, _field("chosen", "chosen")] = None,
    rejected_field: Annotated[str | None, _field("rejected", "rejected")] = None,
    records: Annotated[
        str | None,
        typer.Option(
            "--records",
            help="Of a run waiting for review, which records its review step reads: undecided "
            "(default: the ones it waits on), routed, or all.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            help="Copy this record field (or 'id') into every row; repeat for more.",
            show_default=False,
            rich_help_panel="Field mapping (training formats)",
        ),
    ] = None,
) -> None:
    """Write records in another format: whole records (jsonl, csv, parquet, hf), training
    rows (sft-messages, sharegpt, alpaca, dpo, dpo-messages) or annotation-tool tasks
    (labelstudio, argilla). A run waiting for review gives the records its review step waits on.
    A record missing a mapped field stops the export with its file, line, record id and the
    option to set (exit 2).
    """
    # Why long: typer reads the options from this signature, one entry per field-mapping option.
    with command_errors():
        markers = ("dataset.jsonl", "dataset_info.json", "state.json")
        waiting = waiting_step(source)
        if source.is_dir() and waiting is None and not any((source / n).exists() for n in markers):
            raise UsageError(
                f"{source} has no dataset.jsonl: is it a finished run directory? "
                "(or give a records file or a saved Hugging Face dataset)"
            )
        if records is not None and records not in REVIEW_RECORDS:
            raise UsageError(f"--records {records}: use one of {', '.join(REVIEW_RECORDS)}")
        mapping = datarefinery.ExportMapping(
            messages=messages_field,
            prompt=prompt_field,
            response=response_field,
            system=system_field,
            input=input_field,
            chosen=chosen_field,
            rejected=rejected_field,
            keep=tuple(keep or ()),
        )
        count = datarefinery.export(
            source, out, format=format, mapping=mapping, review=cast(ReviewRecords | None, records)
        )
    if waiting is not None:
        console.print(f"{source} waits for review: exporting {_WHICH[records or 'undecided']}")
    console.print(f"wrote {count} {'rows' if format in _TRAINING else 'records'} to {out}")
    if format in _SIDECARS:
        what, where = _SIDECARS[format]
        console.print(f"wrote the {what} to {where(out)}")
