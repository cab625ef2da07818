"""Replacement values for detected PII: placeholders (``<PERSON>``) or realistic fakes from Faker.

Surrogates are a keyed function of (entity type, original value): an HMAC under the run's secret
surrogate key (``datarefinery.surrogate_key``) seeds Faker, with no counter and no processing order.
Without the key, a list of candidate originals cannot be turned into the fakes they would get, so
the fakes cannot be mapped back. With the same key the same original maps to the same fake in
every record of a dataset ("dataset" consistency), even though shards run concurrently and runs
resume; adding the record id to the HMAC makes the mapping consistent only within a record
("record" consistency, harder to link across records). Within one record two different originals
never share a fake, and a first name alone follows the full name it belongs to ("Aantje Mourik ...
calls me Aantje").
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from datarefinery.detect.base import Span
from datarefinery.errors import MissingDependencyError
from datarefinery.text import casefold_spaces

Mode = Literal["placeholder", "surrogate"]
Consistency = Literal["record", "dataset"]


def _faker() -> Any:
    try:
        from faker import Faker
    except ImportError as exc:
        raise MissingDependencyError("surrogate values", "refine") from exc
    return Faker("en_US")


def _shape(value: str, fake: Any) -> str:
    """A random string with the value's shape: digits stay digits, letters letters."""
    pattern = re.sub(r"[A-Za-z]", "?", re.sub(r"\d", "#", value))
    return str(fake.bothify(pattern, letters="ABCDEFGHJKLMNPQRSTUVWXYZ"))


def _address(value: str, fake: Any) -> str:
    if "\n" in value:
        return str(fake.address())
    if "," in value:
        return f"{fake.street_address()}, {fake.city()}"
    return str(fake.street_address())


def _person(value: str, fake: Any) -> str:
    words = value.split()
    if len(words) == 1:
        return str(fake.first_name())
    if len(words) == 2:
        return f"{fake.first_name()} {fake.last_name()}"
    return str(fake.name())


def _ip(value: str, fake: Any) -> str:
    return str(fake.ipv6() if ":" in value else fake.ipv4_public())


_GENERATORS: dict[str, Callable[[str, Any], str]] = {
    "PERSON": _person,
    "STREET_ADDRESS": _address,
    "PHONE_NUMBER": lambda v, f: _shape(v, f),
    "EMAIL_ADDRESS": lambda v, f: str(f.email()),
    "CREDIT_CARD": lambda v, f: str(f.credit_card_number()),
    "IBAN_CODE": lambda v, f: str(f.iban()),
    "US_SSN": lambda v, f: str(f.ssn()),
    "IP_ADDRESS": _ip,
    "URL": lambda v, f: str(f.url()).rstrip("/"),
    "DOMAIN_NAME": lambda v, f: str(f.domain_name()),
    "LOCATION": lambda v, f: str(f.city()),
    "GPE": lambda v, f: str(f.city()),
    "ORGANIZATION": lambda v, f: str(f.company()),
    "DATE_TIME": lambda v, f: str(f.date()),
    "NRP": lambda v, f: str(f.country()),
}


def _match_case(fake_value: str, original: str) -> str:
    letters = [c for c in original if c.isalpha()]
    if letters and all(c.islower() for c in letters):
        return fake_value.lower()
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return fake_value.upper()
    return fake_value


# The key a value is looked up by. The ground-floor helper is the same function as the former
# " ".join(value.split()).casefold() (same whitespace set, and case folding never makes or
# removes whitespace: both checked over every code point).
normalize_value = casefold_spaces


@dataclass(frozen=True)
class Replacement:
    """One span of the input and what replaced it. Carries the original value for verification;
    ``to_public`` leaves it out (it must not reach the output dataset).
    """

    entity_type: str
    start: int
    end: int
    original: str
    replacement: str
    detector: str = ""

    def to_public(self) -> dict[str, Any]:
        return {
            "entity_type": self.entity_type,
            "start": self.start,
            "end": self.end,
            "replacement": self.replacement,
            "detector": self.detector,
        }


class SurrogatePlanner:
    """Decides the replacement of every span of one record. ``key`` is the secret surrogate key
    (not needed for placeholders).
    """

    def __init__(self, mode: Mode, consistency: Consistency, key: bytes | None = None) -> None:
        if mode == "surrogate" and not key:
            raise ValueError("surrogate values need a secret key")
        self.mode = mode
        self.consistency = consistency
        self._key = key or b""
        self._fake: Any = None

    def __repr__(self) -> str:
        return f"SurrogatePlanner(mode={self.mode!r}, consistency={self.consistency!r})"

    def plan(self, record_id: str, spans: Sequence[Span]) -> list[Replacement]:
        chosen: dict[tuple[str, str], str] = {}
        used: set[str] = set()
        # Longest first, so a full name is mapped before the first name alone.
        for span in sorted(spans, key=lambda s: -(s.end - s.start)):
            key = (span.entity_type, normalize_value(span.value))
            if key in chosen:
                continue
            fake = self._partial_name(span, chosen) or self._new(record_id, span, used)
            chosen[key] = fake
            used.add(normalize_value(fake))
        return [
            Replacement(
                s.entity_type,
                s.start,
                s.end,
                s.value,
                chosen[(s.entity_type, normalize_value(s.value))],
                s.detector,
            )
            for s in spans
        ]

    def _partial_name(self, span: Span, chosen: dict[tuple[str, str], str]) -> str | None:
        if self.mode != "surrogate" or span.entity_type != "PERSON" or " " in span.value.strip():
            return None
        word = normalize_value(span.value)
        for (kind, original), fake in chosen.items():
            parts, fake_parts = original.split(), fake.split()
            if kind == "PERSON" and len(parts) == len(fake_parts) > 1 and word in parts:
                return _match_case(fake_parts[parts.index(word)], span.value)
        return None

    def _new(self, record_id: str, span: Span, used: set[str]) -> str:
        if self.mode == "placeholder":
            return f"<{span.entity_type}>"
        if self._fake is None:
            self._fake = _faker()
        scope = "dataset" if self.consistency == "dataset" else f"record\x1f{record_id}"
        generate = _GENERATORS.get(span.entity_type, _shape)
        original = normalize_value(span.value)
        for attempt in range(20):
            material = f"{scope}\x1f{span.entity_type}\x1f{original}\x1f{attempt}".encode()
            digest = hmac.new(self._key, material, hashlib.sha256).digest()
            self._fake.seed_instance(int.from_bytes(digest[:8], "big"))
            value = _match_case(generate(span.value, self._fake), span.value)
            norm = normalize_value(value)
            if norm != original and norm not in used and original not in norm:
                return value
        return f"<{span.entity_type}>"


def apply_replacements(text: str, replacements: Sequence[Replacement]) -> str:
    """``text`` with each replacement's span swapped for its value (spans must not overlap)."""
    parts: list[str] = []
    position = 0
    for item in sorted(replacements, key=lambda r: r.start):
        parts.append(text[position : item.start])
        parts.append(item.replacement)
        position = item.end
    parts.append(text[position:])
    return "".join(parts)
