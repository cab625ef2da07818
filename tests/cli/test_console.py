from __future__ import annotations

import pytest
import typer

from datarefinery import ConfigError, DatarefineryError, UsageError
from datarefinery.cli.console import EXIT_INTERRUPTED, command_errors


@pytest.mark.parametrize(
    ("error", "code"), [(DatarefineryError("x"), 1), (UsageError("x"), 2), (ConfigError("x"), 2)]
)
def test_an_error_is_printed_and_exits_by_kind(
    error: Exception, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info, command_errors():
        raise error
    assert info.value.exit_code == code
    assert "error: x" in capsys.readouterr().err


def test_an_interrupt_exits_130_with_the_resume_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as info, command_errors("run it again"):
        raise KeyboardInterrupt
    assert info.value.exit_code == EXIT_INTERRUPTED
    assert "interrupted: run it again" in capsys.readouterr().err


def test_without_a_hint_an_interrupt_stays_an_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt), command_errors():
        raise KeyboardInterrupt


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(ValueError), command_errors("hint"):
        raise ValueError("a bug is not a usage error")
