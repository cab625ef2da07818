"""``refinery review OUT``: the local review page for a run directory."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer

from datarefinery.cli.calibration import calibration_command
from datarefinery.cli.console import command_errors, console
from datarefinery.errors import MissingDependencyError, UsageError


def review_command(
    out: Annotated[
        Path, typer.Argument(help="The run directory (refinery run -o OUT).", show_default=False)
    ],
    reviewer: Annotated[
        str | None,
        typer.Option(
            "--reviewer",
            help="Who decides; recorded with every decision (asked for when not given).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int, typer.Option("--port", help="Port on 127.0.0.1 (default: a free one).")
    ] = 0,
    sort_by: Annotated[
        str | None,
        typer.Option(
            "--sort-by",
            help="Order the queue by this score, ascending, instead of by uncertainty.",
            show_default=False,
        ),
    ] = None,
    calibration: Annotated[
        bool,
        typer.Option(
            "--calibration", help="Report how well the judges agree with people; serve nothing."
        ),
    ] = False,
) -> None:
    """Serve a review page on 127.0.0.1 for the run's records, most uncertain first. Open the
    printed address (it carries an access token); decisions are stored in OUT/review/ as made.
    """
    if calibration:
        calibration_command(out)
        return
    _serve(out, reviewer, port, sort_by)


def _serve(out: Path, reviewer: str | None, port: int, sort_by: str | None) -> None:
    with command_errors():
        try:
            from datarefinery.review.app import create_app
            from datarefinery.review.server import bind, server
        except ImportError as exc:
            raise MissingDependencyError("refinery review", "review") from exc
        from datarefinery.review.load import load_run

        run = load_run(out)
        # Asked here, not by typer, so that --calibration needs no reviewer.
        reviewer = reviewer or typer.prompt("Reviewer name")
        token = secrets.token_urlsafe(24)
        app = create_app(out, run, reviewer=reviewer, token=token, sort_by=sort_by)
        try:
            sock = bind(port)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): choose another --port, "
                "or leave it out for a free one"
            ) from None
    address = f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}"
    console.print(f"reviewing {len(run.records)} records of {out} as {reviewer}")
    console.print(f"open {address}", soft_wrap=True)
    console.print("decisions are stored in OUT/review/decisions.sqlite as made; Ctrl+C stops")
    server(app).run(sockets=[sock])
