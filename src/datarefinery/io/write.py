"""Writing records as JSONL (full records), or flat rows as CSV, Parquet or a Hugging Face dataset.

Flat rows hold ``id``, the task fields, ``provenance`` as a JSON string and ``score.<name>``
columns; ``read_records`` reads them back into the same records.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from datarefinery.errors import MissingDependencyError, UsageError
from datarefinery.io.formats import Format
from datarefinery.records import Record


def flat_row(record: Record) -> dict[str, Any]:
    row: dict[str, Any] = {"id": record.id, **record.fields}
    row["provenance"] = json.dumps(record.provenance.to_dict(), ensure_ascii=False)
    for name, value in record.scores.items():
        row[f"score.{name}"] = value
    return row


def write_jsonl_atomic(path: Path, lines: Iterable[str]) -> int:
    """Write lines to ``path`` through a temporary file and a rename; returns the line count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return count


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON (keys in their order, a final newline) through a temporary
    file, an fsync and a rename, so readers see the old file or the new one, never half of one.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_records(path: str | Path, records: Iterable[Record], *, format: Format = "auto") -> int:
    """Write records; the format follows the suffix unless given. Returns how many were written."""
    path = Path(path)
    fmt: str = format
    if fmt == "auto":
        suffix = path.suffix.lower()
        by_suffix = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
        fmt = by_suffix.get(suffix, "hf" if suffix == "" else "unknown")
    if fmt == "jsonl":
        return write_jsonl_atomic(path, (r.to_json() for r in records))
    rows = [flat_row(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        return len(rows)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
        return len(rows)
    if fmt == "hf":
        try:
            import datasets
        except ImportError as exc:
            raise MissingDependencyError("writing Hugging Face datasets", "hf") from exc
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
        return len(rows)
    raise UsageError(
        f"cannot tell the format of {path}: use a .jsonl, .csv or .parquet name, "
        "a folder name (no suffix) for a Hugging Face dataset, or --format"
    )


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value
