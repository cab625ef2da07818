"""Pattern-based PII detection: fast, no model, high precision on structured identifiers.

Catches what has a shape -- e-mail addresses, phone numbers, credit-card numbers (Luhn-checked),
IBANs (mod-97-checked), US SSNs, IPv4/IPv6 addresses, URLs and domain names. It does not find
names, places or free-form street addresses; that needs a model (Presidio + spaCy).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from datarefinery.detect.base import Span, resolve_overlaps


def luhn_ok(digits: str) -> bool:
    numbers = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(numbers) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(numbers)):
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    compact = re.sub(r"\s", "", value).upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ssn_ok(value: str) -> bool:
    area, group, serial = (
        re.split(r"[- ]", value)
        if re.search(r"[- ]", value)
        else (value[:3], value[3:5], value[5:])
    )
    return (
        area not in {"000", "666"}
        and not area.startswith("9")
        and group != "00"
        and serial != "0000"
    )


_TLDS = [
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "io",
    "ai",
    "co",
    "uk",
    "de",
    "fr",
    "info",
    "biz",
    "us",
    "ca",
    "au",
    "eu",
    "me",
    "app",
    "dev",
    "ly",
    "tv",
    "nl",
    "jp",
    "in",
    "ru",
    "br",
    "es",
    "it",
    "ch",
    "se",
    "no",
    "fi",
    "dk",
    "pl",
    "be",
    "at",
    "nz",
    "za",
    "mx",
    "kr",
    "cn",
]
_TLD = "(?:" + "|".join(_TLDS) + ")"

_PATTERNS: list[tuple[str, re.Pattern[str], Callable[[str], bool] | None, float]] = [
    ("EMAIL_ADDRESS", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"), None, 1.0),
    ("URL", re.compile(r"\bhttps?://[^\s<>\"')\]]+"), None, 0.9),
    ("CREDIT_CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), luhn_ok, 1.0),
    (
        "IBAN_CODE",
        re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
        iban_ok,
        1.0,
    ),
    ("US_SSN", re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b"), ssn_ok, 0.85),
    # Not four numbers out of a longer dotted run ("4.25.2017.1.73.2.3"): a version or a list.
    ("IP_ADDRESS", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"), ip_ok, 0.95),
    ("IP_ADDRESS", re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b"), ip_ok, 0.9),
    (
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w.])(?:\+?\d{1,3}[ .-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .-]?\d{3,4}[ .-]?\d{3,4}"
            r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w|\.\d)"
        ),
        None,
        0.7,
    ),
    # Pairs of digits with one separator throughout ("71-33-52-22", "+45 71 33 52 22").
    (
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?\d{2}([ .-])\d{2}(?:\1\d{2}){2,3}(?![\w-]|\.\d)"
        ),
        None,
        0.6,
    ),
    # Any number of 6 to 15 digits shortly after a word that announces a phone number
    # ("ring me on 284 9917", "not answering at 0176 123"): the value is the group. The words are
    # Presidio's PhoneRecognizer context (phone, number, telephone, cell, mobile, call), their
    # abbreviation "tel", "answering" of the validation split, and verbs of messaging.
    (
        "PHONE_NUMBER",
        re.compile(
            r"(?i:\b(?:call(?:ing)?|phone|tel|telephone|mobile|cell(?:phone)?|text|sms|whatsapp|dial|"
            r"answering|ring|reach\s+(?:me|us|him|her|them)|contact|number))"
            r"[^\n\d]{0,20}?(?<![\w.])(?P<value>\+?\(?\d(?:[ ().-]{0,2}\d){5,14})(?![\w-]|\.\d)"
        ),
        lambda value: 6 <= sum(c.isdigit() for c in value) <= 15,
        0.6,
    ),
    ("DOMAIN_NAME", re.compile(rf"\b(?:[a-z0-9-]+\.)+{_TLD}\b", re.IGNORECASE), None, 0.6),
]


class RegexPIIDetector:
    """Finds structured PII by pattern; ``entities`` limits which types are reported."""

    name = "regex"

    def __init__(self, entities: set[str] | None = None) -> None:
        self.entities = entities

    def detect(self, text: str) -> list[Span]:
        spans: list[Span] = []
        for entity, pattern, check, score in _PATTERNS:
            if self.entities is not None and entity not in self.entities:
                continue
            group = "value" if "value" in pattern.groupindex else 0
            for match in pattern.finditer(text):
                value = match.group(group)
                if check is None or check(value):
                    start, end = match.span(group)
                    spans.append(Span(entity, start, end, value, score, self.name))
        return resolve_overlaps(spans)
