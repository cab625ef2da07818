"""The model pass of ``code_anonymize``: which lines the model reads, what it may answer, and how
its answer is checked.

The model reads every comment and string-literal line (Python: the lines ``tokenize`` puts a
COMMENT or STRING token on; other languages: lines with a comment marker or a quote), in batches,
and answers the lines that hold a secret or personal value, each with its rewritten text and the
values it saw. Its answer is a claim: a line it was not shown is ignored, a claimed value that
is not on the line is dropped, and the rewritten code must keep its line structure (Python: still
``ast.parse``) and hold none of the values the detectors found or the model claimed.
"""

from __future__ import annotations

import ast
import io
import tokenize

from pydantic import BaseModel, ConfigDict, Field

# The decoding grammar grows with these caps; a batch of lines rarely holds more secrets.
MAX_LINES = 12
MAX_LINE_CHARS = 400
MAX_VALUES = 4
OTHER_MARKERS = ("#", "//", "/*", "*/", '"', "'", "`")


class LineRewrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line: int = Field(..., ge=1)
    text: str = Field(..., max_length=MAX_LINE_CHARS)
    values: list[str] = Field(default_factory=list, max_length=MAX_VALUES)


class LinesReply(BaseModel):
    """``{"lines": [{"line": N, "text": ..., "values": [...]}]}``; empty: no secret, no PII."""

    model_config = ConfigDict(extra="forbid")

    lines: list[LineRewrite] = Field(default_factory=list, max_length=MAX_LINES)


def python_lines(code: str) -> list[int]:
    """1-based numbers of the lines a COMMENT or STRING token (f-string parts too) touches."""
    kinds = {tokenize.COMMENT, tokenize.STRING}
    fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", None)
    if fstring_middle is not None:
        kinds.add(fstring_middle)
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type in kinds:
            lines.update(range(token.start[0], token.end[0] + 1))
    return sorted(lines)


def other_lines(code: str) -> list[int]:
    """Lines with a comment marker or a quote, and the lines inside ``/* */`` blocks: a plain
    heuristic, since a line the model is shown needlessly costs tokens, never correctness.
    """
    chosen = []
    in_block = False
    for number, line in enumerate(code.splitlines(), start=1):
        if in_block or any(marker in line for marker in OTHER_MARKERS):
            chosen.append(number)
        if "/*" in line:
            in_block = "*/" not in line.split("/*")[-1]
        elif in_block and "*/" in line:
            in_block = False
    return chosen


def batches(numbers: list[int], size: int) -> list[list[int]]:
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


def numbered(code_lines: list[str], numbers: list[int]) -> str:
    """The shown lines as ``N: text``, the form the model answers by."""
    return "\n".join(f"{n}: {code_lines[n - 1]}" for n in numbers)


def apply_lines(code: str, shown: set[int], reply_lines: list[LineRewrite]) -> tuple[str, int]:
    """The code with the model's lines put in (only lines it was shown, one line each: a reply
    text with a line break is cut there), and how many reply lines were ignored.

    Each line keeps its own indentation: models often answer a line without its leading blanks
    (most failed Python rewrites on the development split no longer parsed for that alone), and
    a comment or string literal never needs a different indentation.
    """
    lines = code.splitlines(keepends=True)
    ignored = 0
    for item in reply_lines:
        if item.line not in shown or item.line > len(lines):
            ignored += 1
            continue
        original = lines[item.line - 1]
        ending = original[len(original.rstrip("\r\n")) :]
        text = item.text.splitlines()[0] if item.text else ""
        if text.strip():
            indent = original[: len(original) - len(original.lstrip(" \t"))]
            text = indent + text.lstrip(" \t")
        lines[item.line - 1] = text + ending
    return "".join(lines), ignored


def claimed_values(code: str, reply_lines: list[LineRewrite]) -> tuple[list[str], int]:
    """The model's claimed values that occur on the line it named (others are dropped and
    counted); values under three characters identify nothing and would match everywhere.
    """
    lines = code.splitlines()
    kept: list[str] = []
    dropped = 0
    for item in reply_lines:
        for value in item.values:
            value = value.strip()
            on_line = 1 <= item.line <= len(lines) and value in lines[item.line - 1]
            if len(value) < 3 or not on_line:
                dropped += 1
            elif value not in kept:
                kept.append(value)
    return kept, dropped


def structure_problem(before: str, after: str, python: bool) -> str:
    """Why ``after`` is not a valid rewrite of ``before``'s structure, or ``""``."""
    if len(before.splitlines()) != len(after.splitlines()):
        return "the number of lines changed"
    if python:
        try:
            ast.parse(after)
        except SyntaxError as exc:
            return f"the code no longer parses: {exc.msg} on line {exc.lineno}"
    return ""


def remaining(after: str, values: list[str]) -> list[int]:
    """1-based lines of ``after`` that still hold one of ``values``."""
    return [
        number
        for number, line in enumerate(after.splitlines(), start=1)
        if any(value in line for value in values)
    ]
