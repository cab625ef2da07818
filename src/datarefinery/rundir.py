"""The run directory: what a run has finished, committed so that a crash loses nothing finished.

Layout::

    OUT/manifest.json                      spec, versions, model, counts, tokens, cost, timings
    OUT/cache.sqlite                       LLM responses by request hash
    OUT/steps/NN-name/shard-00000.jsonl    records a step kept from input shard 0
    OUT/steps/NN-name/shard-00000.rejected.jsonl
    OUT/steps/NN-name/shard-00000.done     stats; written last, so its presence means committed
    OUT/dataset.jsonl, OUT/rejected.jsonl  the final outputs, written when every step is done

Shards are JSONL rather than Parquet: records carry nested, per-step provenance and scores that do
not fit one columnar schema, and a shard is small enough that the format costs nothing measurable.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

from datarefinery.errors import RunDirError
from datarefinery.io.write import write_json_atomic, write_jsonl_atomic
from datarefinery.manifest import (
    MANIFEST_FORMAT,
    LoopManifest,
    Manifest,
    ManifestBase,
    ShardStats,
    parse_manifest,
)
from datarefinery.records import Record, Rejected


class StepDir:
    """Shards of one step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def _shard(self, index: int, suffix: str) -> Path:
        return self.path / f"shard-{index:05d}{suffix}"

    def is_done(self, index: int) -> bool:
        return self._shard(index, ".done").exists()

    def commit(
        self, index: int, records: list[Record], rejected: list[Rejected], stats: ShardStats
    ) -> None:
        """Write a shard's outputs, then its marker. Until the marker exists the shard is not done,
        and a rerun recomputes it (from the response cache) and overwrites the partial files.
        """
        write_jsonl_atomic(self._shard(index, ".jsonl"), (r.to_json() for r in records))
        write_jsonl_atomic(
            self._shard(index, ".rejected.jsonl"),
            (json.dumps(r.to_dict(), ensure_ascii=False) for r in rejected),
        )
        write_json_atomic(self._shard(index, ".done"), stats.to_dict())

    def shard_stats(self, index: int) -> ShardStats:
        return ShardStats.from_dict(json.loads(self._shard(index, ".done").read_text()))

    def records(self, index: int) -> Iterator[Record]:
        with self._shard(index, ".jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                yield Record.from_dict(json.loads(line))

    def rejected_lines(self, index: int) -> Iterator[str]:
        path = self._shard(index, ".rejected.jsonl")
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield line.rstrip("\n")

    def mark_complete(self, shards: int) -> None:
        write_json_atomic(self.path / "_COMPLETE", {"shards": shards})

    def complete_shards(self) -> int | None:
        marker = self.path / "_COMPLETE"
        if not marker.exists():
            return None
        return int(json.loads(marker.read_text())["shards"])

    def all_records(self) -> Iterator[Record]:
        shards = self.complete_shards()
        if shards is None:
            raise RuntimeError(f"{self.path} is not complete")
        for index in range(shards):
            yield from self.records(index)


class RunDir:
    """Opens (or creates) a run directory for a spec; refuses one that holds a different spec.

    ``previous`` is the manifest an earlier session left (``None`` in a new directory).
    """

    MANIFEST = "manifest.json"

    def __init__(self, path: Path, previous: Manifest | LoopManifest | None = None) -> None:
        self.path = path
        self.previous = previous

    @classmethod
    def open(cls, path: str | Path, spec_hash: str, *, fresh: bool = False) -> RunDir:
        root = Path(path)
        manifest_path = root / cls.MANIFEST
        if fresh and root.exists():
            _check_deletable(root)
            shutil.rmtree(root)
        previous = None
        if root.exists() and any(root.iterdir()):
            if not manifest_path.exists():
                raise RunDirError(
                    f"{root} exists, is not empty and holds no manifest.json: choose another -o "
                    "(an empty or new folder)."
                )
            previous = cls(root).read_manifest()
            if previous is not None and previous.spec_hash != spec_hash:
                raise RunDirError(
                    f"{root} holds a run of a different spec (spec hash "
                    f"{previous.spec_hash}, this one {spec_hash}). Use another -o, or "
                    "--fresh to discard that run."
                )
        root.mkdir(parents=True, exist_ok=True)
        return cls(root, previous)

    def read_manifest(self) -> Manifest | LoopManifest | None:
        """The manifest an earlier session wrote, typed (``None`` in a new directory)."""
        path = self.path / self.MANIFEST
        if not path.exists():
            return None
        try:
            return parse_manifest(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # bad JSON, or fields that do not validate
            raise RunDirError(
                f"{path} is not a manifest this version can read ({exc}). Use another -o, or "
                "--fresh to discard that run."
            ) from None

    def write_manifest(self, manifest: ManifestBase) -> None:
        write_json_atomic(self.path / self.MANIFEST, manifest.to_json())

    def step_dir(self, index: int, name: str) -> StepDir:
        return StepDir(self.path / "steps" / f"{index + 1:02d}-{name}")

    @property
    def cache_path(self) -> Path:
        return self.path / "cache.sqlite"

    @property
    def dataset_path(self) -> Path:
        return self.path / "dataset.jsonl"

    @property
    def rejected_path(self) -> Path:
        return self.path / "rejected.jsonl"


def _check_deletable(root: Path) -> None:
    """Refuse ``--fresh`` on anything but a run directory of ours: one whose ``manifest.json``
    carries our format marker (or, from before the marker, our versions entry), and never the
    working directory, one of its parents or the home folder.
    """
    resolved = root.resolve()
    here = Path.cwd().resolve()
    if resolved == here or resolved in here.parents or resolved == Path.home().resolve():
        raise RunDirError(
            f"--fresh would delete {root}, which holds the current directory or the home "
            "folder; refusing. Give -o a run directory of its own."
        )
    if not any(root.iterdir()):
        return
    manifest_path = root / RunDir.MANIFEST
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    ours = isinstance(data, dict) and (
        data.get("format") == MANIFEST_FORMAT
        or (
            "spec_hash" in data
            and isinstance(data.get("versions"), dict)
            and "datarefinery" in data["versions"]
        )
    )
    if not ours:
        raise RunDirError(
            f"{root} is not empty and not a datarefinery run directory (no manifest.json of "
            "ours); refusing to delete it. Choose another -o."
        )
