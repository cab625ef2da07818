"""Pools of contexts read from a file (NLI premises, QA contexts, facts, table rows) for the steps
that condition each call on one of them.
"""

from __future__ import annotations

from pathlib import Path

from datarefinery.errors import InputFileError
from datarefinery.io.formats import Format
from datarefinery.io.read import read_records
from datarefinery.records import Record
from datarefinery.text import normalized_key


def load_pool(
    path: str,
    base_dir: Path,
    *,
    required: list[str],
    format: Format = "auto",
    limit: int | None = None,
) -> list[Record]:
    """The file's records (path relative to the spec), without repeats of the ``required`` fields
    (of every field when none is required): datasets such as RTE list one premise under several
    hypotheses. Errors name the file and line.
    """
    resolved = Path(path)
    if not resolved.is_absolute():
        resolved = base_dir / resolved
    seen: set[str] = set()
    pool = []
    for record in read_records(resolved, format=format, required=required):
        key = normalized_key(record.fields, required or sorted(record.fields))
        if key in seen:
            continue
        seen.add(key)
        pool.append(record)
        if limit is not None and len(pool) >= limit:
            break
    if not pool:
        raise InputFileError(str(resolved), "holds no records to draw from")
    return pool
