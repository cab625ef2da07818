"""Fingerprints of the files a spec names, so a resumed run notices when one changed.

A run's identity is its spec hash plus the content of every file the spec points at (input file,
seed records, pools, facts, template files). Hashing a large input on every resume would be slow,
so a fingerprint keeps the size and modification time beside the SHA-256: when both match the
stored ones the file is taken as unchanged without reading it, otherwise it is hashed again, and
only a different hash is a change (a ``touch`` or a copy with the same bytes is not).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datarefinery.errors import RunDirError
from datarefinery.text import string_leaves

Fingerprint = dict[str, Any]  # {"size": int, "mtime_ns": int, "sha256": str}

_CHUNK = 1 << 20


def named_files(spec_data: Mapping[str, Any], base_dir: Path) -> list[Path]:
    """Every existing file a spec's ``input``, ``task`` or ``steps`` names, and the input folder
    when the input is a saved dataset folder.

    Any string value there that resolves (relative to ``base_dir``, the spec's folder) to an
    existing file counts: step options that name files are plain strings in the spec, and a string
    that only happens to match a file is harmless to fingerprint. Folders count only as the input
    (a step option such as ``data`` must not pull in a whole folder, or the run's own output). The
    model block is left out: a model file's identity is already part of every cached call.
    """
    found: dict[str, Path] = {}
    source = spec_data.get("input")
    if isinstance(source, Mapping) and isinstance(source.get("path"), str):
        folder = _as_path(source["path"], base_dir, folders=True)
        if folder is not None:
            found[str(folder)] = folder
    for section in ("input", "task", "steps"):
        for value in string_leaves(spec_data.get(section)):
            path = _as_path(value, base_dir)
            if path is not None:
                found.setdefault(str(path), path)
    return [found[key] for key in sorted(found)]


def _as_path(value: str, base_dir: Path, *, folders: bool = False) -> Path | None:
    if not value or "\n" in value or len(value) > 4096:
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        if path.is_file() or (folders and path.is_dir()):
            return path.resolve()
    except OSError:  # a name too long for the file system, a permission error: not a file we use
        return None
    return None


def fingerprint(path: Path, previous: Fingerprint | None = None) -> Fingerprint:
    """The fingerprint of ``path``; ``previous`` lets an unchanged size and mtime skip the hash."""
    size, mtime_ns = _stat(path)
    if previous and previous.get("size") == size and previous.get("mtime_ns") == mtime_ns:
        return {"size": size, "mtime_ns": mtime_ns, "sha256": previous.get("sha256")}
    return {"size": size, "mtime_ns": mtime_ns, "sha256": _sha256(path)}


def fingerprints(
    paths: list[Path], previous: Mapping[str, Fingerprint] | None = None
) -> dict[str, Fingerprint]:
    before = previous or {}
    return {str(p): fingerprint(p, before.get(str(p))) for p in paths}


def check_unchanged(
    previous: Mapping[str, Fingerprint], current: Mapping[str, Fingerprint], run_dir: Path
) -> None:
    """Refuse to resume a run whose named files changed since it started (file by file)."""
    for name, before in sorted(previous.items()):
        after = current.get(name)
        if after is None:
            what = "is no longer named by the spec" if Path(name).exists() else "is gone"
        elif after.get("sha256") != before.get("sha256"):
            what = "changed"
        else:
            continue
        raise RunDirError(
            f"{name} {what} since the run in {run_dir} started: resuming would mix records made "
            "from the old and the new content. Run again with --fresh to start over, or choose "
            "another -o."
        )
    for name in sorted(set(current) - set(previous)):
        raise RunDirError(
            f"{name} is named by the spec but was not part of the run in {run_dir}. Run again "
            "with --fresh to start over, or choose another -o."
        )


def _stat(path: Path) -> tuple[int, int]:
    if path.is_dir():
        size = mtime = 0
        for child in sorted(path.rglob("*")):
            if child.is_file():
                info = child.stat()
                size += info.st_size
                mtime = max(mtime, info.st_mtime_ns)
        return size, mtime
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            # Name and size delimit each file, so moving bytes between files changes the hash.
            digest.update(os.fsencode(file.relative_to(path)) + b"\0")
            digest.update(str(file.stat().st_size).encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
