"""``export``: records to a file in a format chosen by name, for trainers and other tools.

``EXPORT_FORMATS`` is the table of names. A family of formats lives in its own module (the record
formats in ``io.write``, the training shapes in ``io.training``) and adds its names here, each with
a one-line summary and its writer.

Training shapes go into the container the output's suffix names: ``.jsonl`` (JSON lines, what
``datasets.load_dataset("json")`` and the trainers' scripts read), ``.json`` (one JSON array, as
the Alpaca release and LLaMA-Factory's ``dataset_info`` files use), ``.parquet``, ``.csv`` (flat
shapes only) or a folder without suffix (a Hugging Face dataset, ``Dataset.save_to_disk``).
Every row is built before the first byte is written, so a record that cannot be exported stops the
export with nothing half-written.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datarefinery.errors import InputFileError, MissingDependencyError, UsageError
from datarefinery.io.argilla import write_argilla
from datarefinery.io.formats import Format
from datarefinery.io.labelstudio import write_labelstudio
from datarefinery.io.read import read_numbered
from datarefinery.io.training import SHAPES, ExportMapping, MappingProblem, Row, with_kept
from datarefinery.io.write import write_jsonl_atomic, write_records
from datarefinery.records import Record

# A record with where it came from, for error messages: (file, line), or None for records given
# in Python.
Located = tuple[Record, tuple[str, int] | None]
Writer = Callable[[Path, Iterable[Located], ExportMapping], int]


@dataclass(frozen=True)
class ExportFormat:
    summary: str
    write: Writer
    takes_mapping: bool


def _record_format(name: Format) -> Writer:
    def write(path: Path, located: Iterable[Located], mapping: ExportMapping) -> int:
        return write_records(path, (record for record, _ in located), format=name)

    return write


def _training_format(name: str) -> Writer:
    shape = SHAPES[name]

    def write(path: Path, located: Iterable[Located], mapping: ExportMapping) -> int:
        rows = [_row(shape, record, where, mapping) for record, where in located]
        return write_rows(path, rows, what=name)

    return write


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "jsonl": ExportFormat("whole records, one JSON object a line", _record_format("jsonl"), False),
    "csv": ExportFormat("flat columns", _record_format("csv"), False),
    "parquet": ExportFormat("flat columns", _record_format("parquet"), False),
    "hf": ExportFormat("flat columns, a Hugging Face dataset folder", _record_format("hf"), False),
    "sft-messages": ExportFormat(
        'chat SFT, TRL conversational: {"messages": [{role, content}]}',
        _training_format("sft-messages"),
        True,
    ),
    "sharegpt": ExportFormat(
        'chat SFT: {"conversations": [{from, value}]}', _training_format("sharegpt"), True
    ),
    "alpaca": ExportFormat(
        "instruction SFT: {instruction, input, output}", _training_format("alpaca"), True
    ),
    "dpo": ExportFormat(
        "preference pairs, TRL standard: {prompt, chosen, rejected}", _training_format("dpo"), True
    ),
    "dpo-messages": ExportFormat(
        "preference pairs, TRL conversational (message lists)",
        _training_format("dpo-messages"),
        True,
    ),
    # Annotation tools: the records with their labels as suggestions, plus the project settings
    # the tool needs, written next to the output (io.argilla, io.labelstudio).
    "argilla": ExportFormat(
        "Argilla 2.x records JSON with label suggestions (+ NAME.settings.json)",
        write_argilla,
        False,
    ),
    "labelstudio": ExportFormat(
        "Label Studio 1.x tasks JSON with predictions (+ NAME.xml labeling config)",
        write_labelstudio,
        False,
    ),
}


def _row(
    shape: Callable[[Record, ExportMapping], Row],
    record: Record,
    where: tuple[str, int] | None,
    mapping: ExportMapping,
) -> Row:
    try:
        return with_kept(shape(record, mapping), record, mapping)
    except MappingProblem as problem:
        message = f"record {record.id}: {problem.message}"
        if where is not None:
            raise InputFileError(where[0], message, line=where[1], field=problem.field) from None
        raise UsageError(f"field {problem.field!r}: {message}") from None


def export(
    source: str | Path | Iterable[Record],
    path: str | Path,
    *,
    format: str | None = None,
    mapping: ExportMapping | Mapping[str, Any] | None = None,
) -> int:
    """Write ``source`` (a run directory, a records file, or records) to ``path`` as ``format``
    (a name in ``EXPORT_FORMATS``; ``None``: a record format from the suffix, as
    ``write_records``). ``mapping`` names the record fields of the training formats' parts.
    Returns how many rows were written.
    """
    return export_located(_locate(source), path, format=format, mapping=mapping)


def export_located(
    located: Iterable[Located],
    path: str | Path,
    *,
    format: str | None = None,
    mapping: ExportMapping | Mapping[str, Any] | None = None,
) -> int:
    """``export`` of records that carry where they were read from (file, line), for messages."""
    fields = mapping if isinstance(mapping, ExportMapping) else ExportMapping(**(mapping or {}))
    path = Path(path)
    if format is None:
        if not fields.is_default():
            raise UsageError(
                "field mapping options apply to the training formats: add --format "
                + " | ".join(n for n, f in EXPORT_FORMATS.items() if f.takes_mapping)
            )
        format_name = "auto"
    else:
        chosen = EXPORT_FORMATS.get(format)
        if chosen is None:
            raise UsageError(
                f"unknown export format {format!r}: use one of {', '.join(EXPORT_FORMATS)}"
            )
        if not chosen.takes_mapping and not fields.is_default():
            raise UsageError(
                f"--format {format} writes whole records; field mapping options apply to the "
                "training formats (sft-messages, sharegpt, alpaca, dpo, dpo-messages)"
            )
        format_name = format
    if format_name == "auto":
        return write_records(path, (record for record, _ in located))
    return EXPORT_FORMATS[format_name].write(path, located, fields)


def _locate(source: str | Path | Iterable[Record]) -> Iterator[Located]:
    if not isinstance(source, (str, Path)):
        return ((record, None) for record in source)
    source = Path(source)
    if source.is_dir() and (source / "dataset.jsonl").exists():
        source = source / "dataset.jsonl"
    where = str(source)
    return ((record, (where, line)) for line, record in read_numbered(source))


def write_rows(path: Path, rows: list[Row], *, what: str) -> int:
    """Write plain rows (every row gets every column, missing values as null) in the container
    ``path``'s suffix names.
    """
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    rows = [{name: row.get(name) for name in columns} for row in rows]
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return write_jsonl_atomic(path, (json.dumps(r, ensure_ascii=False) for r in rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        _write_json_array(path, rows)
    elif suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    elif suffix == ".csv":
        _write_flat_csv(path, rows, list(columns), what)
    elif suffix == "":
        try:
            import datasets
        except ImportError as exc:
            raise MissingDependencyError("writing Hugging Face datasets", "hf") from exc
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    else:
        raise UsageError(
            f"cannot tell the container of {path}: name it .jsonl, .json, .parquet or .csv, "
            "or give a folder name without a suffix for a Hugging Face dataset"
        )
    return len(rows)


def _write_json_array(path: Path, rows: list[Row]) -> None:
    # Through a temporary name and a rename, like the JSONL writer: never half a file at ``path``.
    tmp = path.with_name(f".{path.name}.rows")
    tmp.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _write_flat_csv(path: Path, rows: list[Row], columns: list[str], what: str) -> None:
    nested = next((c for c in columns for r in rows if isinstance(r[c], (list, dict))), None)
    if nested is not None:
        raise UsageError(
            f"{what} rows hold lists in {nested!r}, which CSV cannot: "
            "name the output .jsonl, .json or .parquet, or a folder (Hugging Face dataset)"
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
