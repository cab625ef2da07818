"""Reading records from JSONL, CSV, Parquet and local Hugging Face datasets.

Rows become ``Record``s: a row in datarefinery's own shape (``id`` + ``fields`` mapping) is read
back as it was written; any other row is a flat mapping of task fields (an ``id`` column, if
present, becomes the record id). Every problem is an ``InputFileError`` naming the file, the line
(or row) and the field. Fields named in ``messages`` are chats: a list (JSONL, Parquet) or its JSON
text (CSV), checked and read back as a list of ``{role, content}``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datarefinery.errors import InputFileError, MissingDependencyError
from datarefinery.io.formats import Format
from datarefinery.io.messages import parse_messages
from datarefinery.records import Provenance, Record, stable_id

_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path) -> Format:
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return "hf"
        raise InputFileError(
            str(path),
            "is a folder but not a saved Hugging Face dataset (no dataset_info.json / state.json); "
            "give a .jsonl, .csv or .parquet file, or a folder written by Dataset.save_to_disk",
        )
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            str(path),
            f"unknown file type {path.suffix!r}: use .jsonl, .csv or .parquet, or set the format",
        )
    return fmt


def read_records(
    path: str | Path,
    *,
    format: Format = "auto",
    required: list[str] | None = None,
    limit: int | None = None,
    messages: list[str] | None = None,
) -> Iterator[Record]:
    """Stream records from ``path``. ``required`` fields must be present and non-empty."""
    for _, record in read_numbered(
        path, format=format, required=required, limit=limit, messages=messages
    ):
        yield record


def read_numbered(
    path: str | Path,
    *,
    format: Format = "auto",
    required: list[str] | None = None,
    limit: int | None = None,
    messages: list[str] | None = None,
) -> Iterator[tuple[int, Record]]:
    """``read_records`` with each record's line (row number for Parquet and HF datasets), for
    checks made after reading that must still name where the bad record is.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(str(path), "no such file")
    fmt = detect_format(path) if format == "auto" else format
    rows = {"jsonl": _jsonl_rows, "csv": _csv_rows, "parquet": _parquet_rows, "hf": _hf_rows}[fmt]
    for count, (line, row) in enumerate(rows(path), start=1):
        record = _to_record(row, path, line)
        _check_required(record, required or [], path, line)
        _parse_messages(record, messages or [], path, line)
        yield line, record
        if limit is not None and count >= limit:
            return


def _to_record(row: dict[str, Any], path: Path, line: int) -> Record:
    if isinstance(row.get("fields"), dict) and "id" in row:
        try:
            return Record.from_dict(row)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputFileError(str(path), f"malformed record: {exc}", line=line) from None
    fields = dict(row)
    provenance_blob = fields.pop("provenance", None)
    record_id = fields.pop("id", None)
    provenance = Provenance(step="input", technique="input", source=path.name)
    if isinstance(provenance_blob, str) and provenance_blob.startswith("{"):
        try:
            provenance = Provenance.from_dict(json.loads(provenance_blob))
        except (ValueError, TypeError):
            raise InputFileError(
                str(path), "not valid provenance JSON", line=line, field="provenance"
            ) from None
    elif isinstance(provenance_blob, dict):
        provenance = Provenance.from_dict(provenance_blob)
    scores = {k[6:]: fields.pop(k) for k in list(fields) if k.startswith("score.")}
    if record_id is None or record_id == "":
        record_id = stable_id(path.name, line)
    return Record(id=str(record_id), fields=fields, provenance=provenance, scores=scores)


def _check_required(record: Record, required: list[str], path: Path, line: int) -> None:
    for name in required:
        value = record.fields.get(name)
        if name not in record.fields:
            present = ", ".join(sorted(record.fields)) or "none"
            raise InputFileError(
                str(path), f"missing (the row has: {present})", line=line, field=name
            )
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InputFileError(str(path), "is empty", line=line, field=name)


def _parse_messages(record: Record, names: list[str], path: Path, line: int) -> None:
    for name in names:
        if name not in record.fields or record.fields[name] is None:
            continue  # a missing field is ``required``'s (or the validate step's) to report
        try:
            record.fields[name] = parse_messages(record.fields[name])
        except ValueError as exc:
            raise InputFileError(
                str(path), f"record {record.id}: {exc}", line=line, field=name
            ) from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputFileError(
                    str(path), f"not UTF-8 (bad byte at column {exc.start + 1})", line=number
                ) from None
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputFileError(
                    str(path), f"not valid JSON: {exc.msg} at column {exc.colno}", line=number
                ) from None
            if not isinstance(row, dict):
                raise InputFileError(
                    str(path), f"expected a JSON object, got {type(row).__name__}", line=number
                )
            yield number, row


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None:
                return
            header = list(reader.fieldnames)
            if any(not h for h in header) or len(set(header)) != len(header):
                raise InputFileError(
                    str(path), f"bad header {header}: names must be unique", line=1
                )
            for row in reader:
                line = reader.line_num
                if None in row:
                    raise InputFileError(
                        str(path),
                        f"{len(header) + len(row[None])} cells for {len(header)} columns",
                        line=line,
                    )
                missing = [k for k, v in row.items() if v is None]
                if missing:
                    raise InputFileError(
                        str(path),
                        "row has fewer cells than the header",
                        line=line,
                        field=missing[0],
                    )
                yield line, dict(row)
    except UnicodeDecodeError as exc:
        raise InputFileError(str(path), f"not UTF-8 (bad byte at offset {exc.start})") from None
    except csv.Error as exc:
        raise InputFileError(str(path), f"not valid CSV: {exc}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(str(path), f"not a readable Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def _hf_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError("reading Hugging Face datasets", "hf") from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InputFileError(str(path), f"not a saved Hugging Face dataset: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict):
        raise InputFileError(
            str(path),
            f"holds several splits {list(loaded)}; give the folder of one split",
        )
    for number, row in enumerate(loaded, start=1):
        yield number, dict(row)
