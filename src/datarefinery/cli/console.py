"""What every ``refinery`` command shares: the consoles, the exit codes, and how an error or an
interrupt ends a command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from datarefinery import DatarefineryError, UsageError

# Exit codes: a script can tell a bad spec from a run that stopped on its budget, and both from a
# run that waits for people to review records (``refinery review OUT``, then run it again).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_WAITING = 4
EXIT_INTERRUPTED = 130

console = Console(stderr=False)
err_console = Console(stderr=True)


def fail(exc: Exception) -> typer.Exit:
    """Print ``exc`` as an error; the exit to raise: 2 for a usage error, else 1."""
    # Escaped: a message may hold brackets that are not markup (pip install 'datarefinery[ray]').
    err_console.print(f"[red bold]error:[/] {escape(str(exc))}", highlight=False, markup=True)
    return typer.Exit(EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR)


@contextmanager
def command_errors(resume_hint: str | None = None) -> Iterator[None]:
    """End the command the way every command ends: a ``DatarefineryError`` is printed and exits
    1 or 2 (``fail``). With ``resume_hint``, Ctrl-C exits 130 and says how to resume; without
    it, an interrupt stays an interrupt.
    """
    try:
        yield
    except KeyboardInterrupt:
        if resume_hint is None:
            raise
        err_console.print(f"[yellow]interrupted[/]: {resume_hint}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except DatarefineryError as exc:
        raise fail(exc) from None
