"""What a stored or printed server URL keeps, and how log lines are scrubbed."""

from __future__ import annotations

import logging

import pytest

from datarefinery.redact import (
    MASK,
    install_log_redaction,
    looks_like_token,
    public_spec,
    redact_text,
    redact_url,
    url_secrets,
)

SECRET = "sk-XYZ0f3c9a7e5d1b4c2a"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"http://user:{SECRET}@127.0.0.1:8000/v1?key={SECRET}", "http://127.0.0.1:8000/v1"),
        ("https://api.example.com/v1", "https://api.example.com/v1"),
        ("http://[::1]:8080/v1#frag", "http://[::1]:8080/v1"),
        (
            "https://gw.example.com/v1/3f9a7e5d1b4c2a0f9e8d7c6b5a493827/openai",
            f"https://gw.example.com/v1/{MASK}/openai",
        ),
        (f"https://host/proxy/{SECRET}/v1", f"https://host/proxy/{MASK}/v1"),
        (
            "http://host/deployments/my-deployment-2024-production/v1",
            "http://host/deployments/my-deployment-2024-production/v1",
        ),
    ],
)
def test_redact_url_strips_credentials_and_token_like_segments(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "value",
    [SECRET, "3f9a7e5d1b4c2a0f9e8d7c6b5a493827", "AKIAIOSFODNN7EXAMPLE", "hf_abcdefghijklmnopqrst"],
)
def test_tokens_look_like_tokens(value: str) -> None:
    assert looks_like_token(value)


@pytest.mark.parametrize(
    "value",
    ["chat", "v1", "Qwen2.5-Coder-1.5B-Instruct", "my-deployment-2024-production", "openai"],
)
def test_words_versions_and_slugs_do_not(value: str) -> None:
    assert not looks_like_token(value)


def test_url_secrets_names_password_query_values_and_token_segments() -> None:
    found = url_secrets(f"http://user:pw-{SECRET}@h/x/{SECRET}/v1?key=abc123&api-version=2024")
    assert set(found) == {f"pw-{SECRET}", "abc123", "2024", SECRET}


def test_redact_text_masks_known_secrets_url_credentials_and_prefixed_keys() -> None:
    text = (
        f"GET http://u:p4ss@h:1/v1/models?key=zz9 failed; Authorization: Bearer abcdefgh12345678; "
        f"server said {SECRET}; the other key hunter2hunter2"
    )
    scrubbed = redact_text(text, ["hunter2hunter2"])
    for leaked in ("p4ss", "zz9", "abcdefgh12345678", SECRET, "hunter2hunter2"):
        assert leaked not in scrubbed
    assert "http://h:1/v1/models?***" in scrubbed


def test_log_records_of_the_http_client_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    install_log_redaction(["registered-secret-value"])
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "POST", f"http://h/v1/chat?key={SECRET}", "200 OK"
    )
    logging.getLogger("httpcore.http11").debug("headers %r", "registered-secret-value")
    assert SECRET not in caplog.text and "registered-secret-value" not in caplog.text
    assert "HTTP Request: POST http://h/v1/chat?***" in caplog.text


def test_public_spec_redacts_only_the_stored_copy() -> None:
    data = {"name": "x", "llm": {"base_url": f"http://u:{SECRET}@h/v1", "model": "m"}}
    public = public_spec(data)
    assert public["llm"]["base_url"] == "http://h/v1"
    assert data["llm"]["base_url"] == f"http://u:{SECRET}@h/v1"
    assert public_spec({"llm": {"base_url": None}}) == {"llm": {"base_url": None}}
