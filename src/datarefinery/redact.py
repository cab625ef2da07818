"""Keeping secrets out of what is stored or printed.

A model server's URL may carry credentials (``http://user:KEY@host/v1?key=KEY``), and the HTTP
client logs every URL it requests. The request needs them; nothing else does. ``redact_url`` is
the form every stored or printed copy uses (model identity, manifest, provenance, errors), and
``install_log_redaction`` scrubs known secret values and URL credentials from the log records of
the HTTP client in the process that sends the requests.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"

# Prefixes that API keys and access tokens of common services start with.
_TOKEN_PREFIX = re.compile(
    r"^(?:sk|pk|rk|hf|ghp|gho|ghs|ghu|github_pat|glpat|xox[abpsr]|AKIA|ASIA|AIza|Bearer)[-_]?",
)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-~+/=]+")
# In free text: strings that carry a well-known key prefix, and the credentials part of a URL.
_PREFIXED_TOKEN = re.compile(
    r"\b(?:sk|pk|rk|hf|ghp|gho|ghs|ghu|github_pat|glpat|xox[abpsr])[-_][A-Za-z0-9_\-]{8,}"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9_\-.~+/=]{8,}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#\"']+@")
_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s?#\"']*)\?[^\s#\"']*")


def _char_class(char: str) -> int:
    if char.isdigit():
        return 0
    if char.islower():
        return 1
    if char.isupper():
        return 2
    return 3


def looks_like_token(value: str) -> bool:
    """True for strings shaped like a key or access token: a known key prefix, or at least 16
    characters of a token alphabet that switch often between digits, lower and upper case (random
    strings do; words, version numbers and slugs like ``my-deployment-2024`` do not).
    """
    if len(value) < 16 or not _TOKEN_CHARS.fullmatch(value):
        return False
    if _TOKEN_PREFIX.match(value):
        return True
    switches = sum(1 for a, b in itertools.pairwise(value) if _char_class(a) != _char_class(b))
    if switches / (len(value) - 1) < 0.3:
        return False
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return entropy >= 3.0


def redact_url(url: str) -> str:
    """``url`` without userinfo, query string and fragment, and with every path segment that looks
    like a token masked: the form every stored or printed copy of a server URL uses.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    path = "/".join(MASK if looks_like_token(s) else s for s in parts.path.split("/"))
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that may be credentials: the password (the user name when there is
    none), every query value and every path segment that looks like a token.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [parts.password or parts.username or ""]
    found += [value for _name, value in parse_qsl(parts.query, keep_blank_values=True)]
    found += [s for s in parts.path.split("/") if looks_like_token(s)]
    if parts.fragment:
        found.append(parts.fragment)
    return [value for value in found if value]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` masked, then URL credentials and query strings and
    strings that carry a well-known key prefix. Secrets shorter than 4 characters are left (they
    would mask ordinary text and protect nothing).
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_USERINFO.sub(r"\1", text)
    text = _URL_QUERY.sub(rf"\1?{MASK}", text)
    text = _BEARER.sub(rf"\1 {MASK}", text)
    return _PREFIXED_TOKEN.sub(MASK, text)


class _RedactingFilter(logging.Filter):
    """Rewrites a log record's message with ``redact_text`` before any handler sees it."""

    def __init__(self) -> None:
        super().__init__("datarefinery.redact")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: let logging report it as usual
            return True
        record.msg = redact_text(message, self.secrets)
        record.args = ()
        return True


# Loggers that print request URLs or connection details. A filter on a logger sees only the
# records of that logger (not of its children), so each one is named.
_HTTP_LOGGERS = (
    "datarefinery.llm.http11",
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
# Logging filters are per process, so the scrubbing state is too: one filter shared by the
# HTTP loggers, holding every secret value a backend in this process has registered.
_FILTER = _RedactingFilter()
_LOCK = threading.Lock()


def install_log_redaction(secrets: Iterable[str] = ()) -> None:
    """Scrub ``secrets`` (and URL credentials) from the HTTP client's log records in this
    process. Call it in the process that sends requests, before the first one.
    """
    with _LOCK:
        _FILTER.secrets.update(s for s in secrets if s)
        for name in _HTTP_LOGGERS:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)


def public_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A dumped spec (``model_dump(mode="json")``) fit to store: the model server's URL
    redacted. Runs read their spec from the file, never from this copy.
    """
    llm = data.get("llm")
    if isinstance(llm, dict) and isinstance(llm.get("base_url"), str):
        data = {**data, "llm": {**llm, "base_url": redact_url(llm["base_url"])}}
    return data
