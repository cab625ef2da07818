"""House rules that a reader should not have to check by hand: small modules, and a function over
60 lines says why it is long (a ``# Why long:`` comment in its body)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "datarefinery"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
REASON = "# Why long:"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in sorted(SRC.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them): {long}"


def test_a_function_over_60_lines_says_why() -> None:
    unexplained = []
    for path in sorted(SRC.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            body = lines[node.lineno - 1 : node.end_lineno]
            if length > MAX_FUNCTION_LINES and not any(REASON in line for line in body):
                unexplained.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({length})")
    assert not unexplained, (
        f"functions over {MAX_FUNCTION_LINES} lines without a '{REASON}' comment: {unexplained}"
    )
