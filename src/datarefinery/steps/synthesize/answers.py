r"""Final answers: pull one out of a reply and decide whether it matches a reference.

Pure functions, no model. The reference decides how a candidate is read:

- a **number** (``18``, ``1,000``, ``$4.50``, ``75%``, ``3/4``, ``-2``, ``12.0 km``) matches the
  candidate's number exactly (fractions are exact; decimals within ``tolerance``). From a candidate
  that holds several numbers the last one counts, the convention of GSM8K's grading ("the answer is
  5 apples for 2 people" would read 2, so prompts ask for the bare answer). A percentage matches
  its own value and its hundredth (``75%`` matches ``75`` and ``0.75``).
- a **choice letter** (``B``, ``(B)``, ``B)``, ``answer: b``, ``option B``) matches the letter the
  candidate names (``(b)``, ``B. Paris``, ``The answer is B``).
- anything else matches as **text**: case, surrounding spaces and quotes, inner runs of spaces and
  a final full stop are ignored.

Before either side is read, ``final_answer`` keeps only what follows the last ``####`` (GSM8K's
marker), a ``\boxed{...}``, or an "answer is" / "Answer:" lead-in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

_MARKER = re.compile(r"####\s*(.*)$", re.DOTALL)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_LEAD_IN = re.compile(r"\banswer\b\s*(?:is\b)?\s*[:=]?", re.IGNORECASE)
# A number: optional sign and currency, digits with thousands commas (only where three digits
# follow, so "1,2" is two numbers), an optional decimal part, or a fraction "a/b".
_NUMBER = re.compile(
    r"(?:(?<![\w.)])(?P<sign>[-−]))?[$€£¥]?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?P<pct>\s*%|\s+percent\b)?",
    re.IGNORECASE,
)
_WHOLE_CHOICE = re.compile(
    r"^\s*(?:(?:answer|option|choice)\s*(?:is|:)?\s*)?\(?([A-Za-z])\)?[.:)]?\s*$",
    re.IGNORECASE,
)
_CHOICE_IN_TEXT = (
    re.compile(r"\(([A-Za-z])\)"),
    re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Za-z])\b\)?", re.IGNORECASE),
    re.compile(r"^\s*([A-Za-z])\s*[.:)](?:\s|$)"),
    re.compile(r"^\s*([A-Za-z])\s*$"),
)
_SPACES = re.compile(r"\s+")

Kind = Literal["number", "choice", "text"]


@dataclass(frozen=True, slots=True)
class Reading:
    """How one answer was read: its kind and its normal form (``value``) for comparing; ``shown``
    is the normal form as text, for details and scores.
    """

    kind: Kind
    value: Fraction | float | str | None
    percent: bool = False

    @property
    def shown(self) -> str:
        if isinstance(self.value, Fraction):
            number = _shown_fraction(self.value)
            return f"{number}%" if self.percent else number
        if isinstance(self.value, float):
            return f"{self.value:g}"
        return "" if self.value is None else self.value


def _shown_fraction(value: Fraction) -> str:
    """An integer, a decimal when it ends (``76.8``, not ``384/5``), else ``a/b``."""
    if value.denominator == 1:
        return str(value.numerator)
    rest = value.denominator
    for factor in (2, 5):
        while rest % factor == 0:
            rest //= factor
    return f"{float(value):.12g}" if rest == 1 else str(value)


def final_answer(text: str) -> str:
    """The part of ``text`` that states the final answer (all of it when no marker is found)."""
    marked = _MARKER.search(text)
    if marked:
        return marked.group(1).strip()
    boxed = _BOXED.findall(text)
    if boxed:
        return str(boxed[-1]).strip()
    lead_ins = list(_LEAD_IN.finditer(text))
    if lead_ins and text[lead_ins[-1].end() :].strip():
        return text[lead_ins[-1].end() :].strip()
    return text.strip()


def _number_value(match: re.Match[str]) -> Fraction | float:
    digits = match.group("num").replace(",", "")
    value: Fraction | float = Fraction(digits)
    denominator = match.group("den")
    if denominator is not None:
        below = Fraction(denominator.replace(",", ""))
        value = value / below if below else math.inf
    if match.group("sign"):
        value = -value
    return value


def read_number(text: str) -> Reading | None:
    """The last number in ``text`` (``None`` when it has none)."""
    found = list(_NUMBER.finditer(text))
    if not found:
        return None
    last = found[-1]
    return Reading("number", _number_value(last), percent=bool(last.group("pct")))


def read_choice(text: str) -> Reading | None:
    """The choice letter ``text`` names, upper-cased (``None`` when it names none)."""
    for pattern in _CHOICE_IN_TEXT:
        match = pattern.search(text)
        if match:
            return Reading("choice", match.group(1).upper())
    return None


def read_text(text: str) -> Reading:
    cleaned = _SPACES.sub(" ", text.strip().strip("\"'`").strip()).rstrip(".").strip()
    return Reading("text", cleaned.casefold())


def read_reference(reference: str) -> Reading:
    """How a reference answer is read: a number, a choice letter, or text."""
    text = final_answer(reference)
    choice = _WHOLE_CHOICE.match(text)
    if choice:
        return Reading("choice", choice.group(1).upper())
    # The whole reference must be one number (with units and currency around it), or "Paris 2024"
    # would be read as 2024.
    numbers = list(_NUMBER.finditer(text))
    if len(numbers) == 1 and not re.search(r"[A-Za-z]", text[: numbers[0].start()]):
        match = numbers[0]
        return Reading("number", _number_value(match), percent=bool(match.group("pct")))
    return read_text(text)


def read_candidate(candidate: str, like: Reading) -> Reading | None:
    """``candidate`` read the way the reference ``like`` is (``None``: it states no such answer)."""
    text = final_answer(candidate)
    if like.kind == "number":
        return read_number(text)
    if like.kind == "choice":
        return read_choice(text)
    return read_text(text) if text.strip() else None


def _numbers_equal(a: Fraction | float, b: Fraction | float, tolerance: float) -> bool:
    if isinstance(a, Fraction) and isinstance(b, Fraction) and a == b:
        return True
    return math.isclose(float(a), float(b), rel_tol=tolerance, abs_tol=tolerance)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison: ``got`` is ``None`` when the candidate states no answer of
    the reference's kind.
    """

    matched: bool
    got: Reading | None
    expected: Reading


def check_answer(candidate: str, reference: str, tolerance: float = 1e-6) -> Verdict:
    """Whether ``candidate`` states the same final answer as ``reference``."""
    expected = read_reference(reference)
    got = read_candidate(candidate, expected)
    if got is None:
        return Verdict(False, None, expected)
    if expected.kind == "number":
        assert isinstance(got.value, (Fraction, float)) and isinstance(expected.value, Fraction)
        values = [got.value]
        if got.percent != expected.percent:
            # "75%" against 0.75 (or 0.75 against "75%"): the percentage's hundredth counts too.
            values.append(got.value / 100 if got.percent else got.value * 100)
        matched = any(_numbers_equal(v, expected.value, tolerance) for v in values)
        return Verdict(matched, got, expected)
    return Verdict(got.value == expected.value, got, expected)
