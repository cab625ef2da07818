"""``refinery import-review``: people's answers from Argilla or Label Studio as review decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datarefinery.cli.console import command_errors, console
from datarefinery.decisions import DECISIONS_FILE
from datarefinery.import_review import TOOL_NAMES, Tool, import_review


def import_review_command(
    out: Annotated[
        Path, typer.Argument(help="The run directory the records came from.", show_default=False)
    ],
    file: Annotated[
        Path,
        typer.Argument(
            help="The tool's export: Label Studio 'JSON' export, or Argilla records "
            "(dataset.records.to_json / to_list).",
            show_default=False,
        ),
    ],
    tool: Annotated[
        Tool | None,
        typer.Option("--tool", help="argilla or labelstudio (default: told from the file)."),
    ] = None,
    reviewer_default: Annotated[
        str | None,
        typer.Option(
            "--reviewer-default",
            help="Reviewer name for answers whose file does not say who gave them.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Record the answers people gave in Argilla or Label Studio as review decisions of OUT:
    the suggested label kept is accept, another label is correct, discarded / skipped is
    reject; drafts are counted and left out. Unknown record ids or a malformed file stop the
    import with nothing stored (exit 2).
    """
    with command_errors():
        summary = import_review(out, file, tool=tool, reviewer_default=reviewer_default)
    counts = " · ".join(f"{a} {summary.actions[a]}" for a in ("accept", "correct", "reject"))
    console.print(
        f"{TOOL_NAMES[summary.tool]}: {summary.stored} decisions stored in "
        f"{out / DECISIONS_FILE} ({counts})",
        highlight=False,
    )
    left = {
        "already in force": summary.unchanged,
        "drafts": summary.drafts,
        "answers without a label": summary.unlabeled,
        "items without an answer": summary.unanswered,
    }
    if any(left.values()):
        console.print(
            "not stored: " + ", ".join(f"{n} {what}" for what, n in left.items() if n),
            highlight=False,
        )
