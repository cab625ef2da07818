"""Writing an evaluation to a folder: metrics.json, report.html, card.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

from datarefinery.evaluate.report.card import render_card
from datarefinery.evaluate.report.html import render_html
from datarefinery.evaluate.suite import Evaluation


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(evaluation: Evaluation, out: str | Path) -> dict[str, Path]:
    """Write the three files into ``out`` (created) and return their paths by name."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": folder / "metrics.json",
        "report": folder / "report.html",
        "card": folder / "card.md",
    }
    metrics_text = json.dumps(evaluation.metrics, indent=2, ensure_ascii=False, default=float)
    _write_atomic(paths["metrics"], metrics_text + "\n")
    _write_atomic(paths["report"], render_html(evaluation))
    real = evaluation.metrics.get("real", {}).get("path")
    _write_atomic(paths["card"], render_card(evaluation, real_path=real))
    return paths
