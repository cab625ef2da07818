"""Write the labelled code-anonymisation set (``set.jsonl``) from templates, deterministically.

Each snippet is short realistic code (a config module, an HTTP client, a CLI, a test, a
migration; a few in JavaScript) assembled from the blocks below. Some lines carry a planted
value (a vendor-shaped key or token, a password in a config string or URL, an e-mail address, an
IP address, a person's name or a phone number in a comment or a string); others look risky but
are not (``localhost``, ``127.0.0.1``, ``0.0.0.0``, version strings, placeholders, hashes of test
fixtures). Every value is made up here from a seeded generator: none is real. A line is labelled
positive when it holds a planted value; ``split`` is ``dev`` or ``test`` by a hash of the id.

    .venv/bin/python bench/code_anon/make_set.py   # rewrites bench/code_anon/set.jsonl
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_PYTHON, N_JS, SEED = 40, 8, 12

FIRST = ["Marta", "Jonas", "Priya", "Tomasz", "Aiko", "Lucas", "Fatima", "Dmitri", "Elena", "Kofi"]
LAST = ["Lindqvist", "Okafor", "Ramanathan", "Wierzbicki", "Tanaka", "Moreau", "Haddad", "Novak"]
DOMAINS = ["northwind-labs.io", "acmepay.com", "brightfield.org", "quillworks.dev"]

Planted = Callable[[random.Random], tuple[str, str]]  # (line, value)


def _chars(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@{rng.choice(DOMAINS)}"


def _ip(rng: random.Random) -> str:
    parts = [rng.choice([10, 172, 192, 34, 52]), *(rng.randint(1, 254) for _ in range(3))]
    return ".".join(map(str, parts))


def _password(rng: random.Random) -> str:
    return _chars(rng, 4, string.ascii_letters) + _chars(rng, 3, "!#%&*") + _chars(rng, 4)


def _secret_lines() -> list[Planted]:
    """Value makers and the lines they sit in; {v} is the planted value."""
    upper = string.ascii_uppercase + string.digits
    makers: list[tuple[str, Callable[[random.Random], str]]] = [
        ('AWS_ACCESS_KEY_ID = "{v}"', lambda r: "AKIA" + _chars(r, 16, upper)),
        ('GITHUB_TOKEN = "{v}"', lambda r: "ghp_" + _chars(r, 36)),
        (
            'SLACK_WEBHOOK_TOKEN = "{v}"',
            lambda r: "xoxb-" + _chars(r, 12, string.digits) + "-" + _chars(r, 24),
        ),
        ('stripe.api_key = "{v}"', lambda r: "sk_live_" + _chars(r, 24)),
        ('client = OpenAI(api_key="{v}")', lambda r: "sk-proj-" + _chars(r, 32)),
        ('MAPS_KEY = "{v}"', lambda r: "AIza" + _chars(r, 35)),
        ('DB_PASSWORD = "{v}"', _password),
        ('conn = connect("postgresql://app:{v}@db.internal:5432/orders")', _password),
        ('settings = {{"user": "svc", "passwd": "{v}"}}', _password),
        ('headers = {{"Authorization": "Bearer {v}"}}', lambda r: _chars(r, 40)),
        (
            'SENTRY_DSN = "https://{v}@o1.ingest.sentry.io/42"',
            lambda r: _chars(r, 32, "0123456789abcdef"),
        ),
        ("# deploy key for staging: {v}", lambda r: _chars(r, 28)),
        ("# Owner: {v}", _name),
        ("# Contact {v} before changing the retry policy", _email),
        ('SUPPORT_EMAIL = "{v}"', _email),
        ('PRIMARY_DB_HOST = "{v}"', _ip),
        ("# Reviewed by {v}; call 555-{p} if it breaks", _name),
        ('log.info("paging on-call %s", "{v}")', _email),
        ('ALLOWED_PEERS = ["{v}"]', _ip),
        ('"""Author: {v}."""', _name),
    ]

    def planted(line: str, make: Callable[[random.Random], str]) -> Planted:
        def one(rng: random.Random) -> tuple[str, str]:
            value = make(rng)
            return line.format(
                v=value, p=f"{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
            ), value

        return one

    return [planted(line, make) for line, make in makers]


DECOYS = [
    'HOST = "localhost"',
    'BIND = "0.0.0.0"',
    'HEALTH_URL = "http://127.0.0.1:8080/health"',
    '__version__ = "3.11.2"',
    'API_KEY = os.environ["API_KEY"]  # never hard-code it',
    'PASSWORD_PLACEHOLDER = "<your-password>"',
    'FIXTURE_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
    "# See RFC 7231, section 6.5.1",
    'DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"',
    "TIMEOUT_S = 30  # seconds, tuned in 2023",
    'DEFAULT_REGION = "eu-west-1"',
    'token = get_token(scope="read:orders")',
    "# TODO: move the retry constants to settings",
    'EXAMPLE_EMAIL = "user@example.com"  # shown in the docs',
]

PY_BODIES = [
    [
        "",
        "",
        "def fetch(order_id: int) -> dict:",
        '    """Fetch one order."""',
        '    url = f"{BASE_URL}/orders/{order_id}"',
        "    return requests.get(url, timeout=TIMEOUT).json()",
    ],
    [
        "",
        "",
        "class Retry:",
        "    def __init__(self, tries: int = 3) -> None:",
        "        self.tries = tries  # at least one",
        "",
        "    def __call__(self, fn):",
        "        return fn",
    ],
    [
        "",
        "",
        "def main() -> None:",
        '    parser = argparse.ArgumentParser(description="Sync orders")',
        '    parser.add_argument("--dry-run", action="store_true")',
        "    args = parser.parse_args()",
        '    print("dry run" if args.dry_run else "syncing")',
    ],
    [
        "",
        "",
        "def test_total() -> None:",
        "    assert total([1, 2, 3]) == 6",
        '    assert total([]) == 0, "empty"',
    ],
    [
        "",
        "",
        "def upgrade(op) -> None:",
        '    op.add_column("orders", "status")',
        '    op.create_index("ix_status", "orders")',
    ],
]
PY_HEADS = [
    ["import os", "import requests", ""],
    ["import argparse", "import logging", "", 'log = logging.getLogger("sync")'],
    ["from dataclasses import dataclass", ""],
    ["import json", ""],
]
JS_BODIES = [
    [
        "",
        "async function load(id) {",
        "  const res = await fetch(`/api/items/${id}`);",
        "  return res.json();",
        "}",
    ],
    ["", "module.exports = { load, retries: 3 };"],
]


def _js_line(line: str) -> str:
    """A Python template line in JavaScript dress (comments, constants)."""
    if line.startswith("#"):
        return "//" + line[1:]
    if line.startswith('"""'):
        return "/** " + line.strip('"').strip() + " */"
    if " = " in line and not line.startswith(
        ("stripe", "client", "conn", "headers", "settings", "token")
    ):
        return "const " + line.split("  #")[0].replace("os.environ[", "process.env[") + ";"
    return (
        "const " + line.split(" = ", 1)[0].split(".")[-1] + " = " + line.split(" = ", 1)[-1] + ";"
    )


def snippet(index: int, rng: random.Random, js: bool) -> dict[str, object]:
    planted = rng.sample(_secret_lines(), rng.randint(1, 3))
    decoys = rng.sample(DECOYS, rng.randint(1, 3))
    items = [(*p(rng), True) for p in planted] + [(d, "", False) for d in decoys]
    rng.shuffle(items)
    head = ["'use strict';", ""] if js else list(rng.choice(PY_HEADS))
    body = list(rng.choice(JS_BODIES if js else PY_BODIES))
    lines, labels, values = list(head), [], []
    for line, value, positive in items:
        lines.append(_js_line(line) if js else line)
        if positive:
            labels.append(len(lines))
            values.append(value)
    code = "\n".join(lines + body) + "\n"
    record_id = f"{'js' if js else 'py'}-{index:02d}"
    split = "dev" if hashlib.sha256(record_id.encode()).digest()[0] % 2 == 0 else "test"
    language = "other" if js else "python"
    return {
        "id": record_id,
        "language": language,
        "split": split,
        "text": code,
        "labels": labels,
        "values": values,
    }


def build() -> list[dict[str, object]]:
    rng = random.Random(SEED)
    rows = [snippet(i, rng, js=False) for i in range(N_PYTHON)]
    return rows + [snippet(i, rng, js=True) for i in range(N_JS)]


if __name__ == "__main__":
    rows = build()
    with (HERE / "set.jsonl").open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print({s: sum(r["split"] == s for r in rows) for s in ("dev", "test")})
