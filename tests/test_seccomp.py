"""The seccomp filter refuses platforms it has no syscall table for."""

import pytest

from datarefinery.errors import UsageError
from datarefinery.seccomp import seccomp_program


@pytest.mark.parametrize("machine", ["riscv64", "armv7l"])
def test_unsupported_platform_runs_nothing(machine: str) -> None:
    with pytest.raises(UsageError, match="nothing is executed"):
        seccomp_program(machine)
