"""Running the real ``refinery`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REFINERY = [sys.executable, "-m", "datarefinery.cli.app"]
# For runs whose test is about the dataset (resume, faults, executors): the end-of-run diversity
# summary and report load the embedding model, seconds per run that such tests do not look at.
LEAN = ("--no-report", "--no-diversity")


def write_spec(path: Path, spec: dict) -> Path:  # type: ignore[type-arg]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def refinery(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*REFINERY, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )
