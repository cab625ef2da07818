"""``refinery review OUT --calibration``: the run's judges and labellers measured against the
people's decisions, printed as one table (the figures the report page and the card show).
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from datarefinery import UsageError
from datarefinery.cli.console import command_errors, console
from datarefinery.decisions import DECISIONS_FILE
from datarefinery.evaluate.calibration import calibrate, figure_rows


def calibration_command(out: Path) -> None:
    with command_errors():
        if not (out / "manifest.json").exists():
            raise UsageError(
                f"{out} is not a run directory (no manifest.json): give the -o folder of a run."
            )
        result = calibrate(out)
        if result is None:
            console.print(
                f"No review decisions in {out / DECISIONS_FILE} yet: decide on some records with "
                f"`refinery review {out}` first."
            )
            return
        data = result.to_dict()
        rows = figure_rows(data)
        if not rows:
            console.print(
                f"{result.decisions} decisions, but the run has no label or judge step to "
                "measure against them."
            )
            return
        table = Table(
            title=f"Judges and labellers against people ({result.decisions} decisions)",
            caption="95 % intervals: bootstrap over records for kappa, Wilson for shares",
        )
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_column("detail")
        for figure, value, detail in rows:
            table.add_row(figure, value, detail)
        console.print(table)
