from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import datarefinery
from datarefinery.io.read import read_records
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend

TEXT = "Hi, I am Anna Kowalski, write to anna.k@example.org or call 555-123-4567."
ORIGINALS = ("Anna Kowalski", "anna.k@example.org", "555-123-4567")


def _input(tmp_path: Path, *texts: str) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    return path


def _substitutes(request: Request) -> dict[str, str]:
    """The replacements the prompt (and any re-ask) asks for: "orig" (TYPE) -> "fake"."""
    found = {}
    for message in request.messages:
        if message.role == "user":
            found.update(dict(re.findall(r'"([^"]+)" \(\w+\) -> "([^"]+)"', message.content)))
    return found


def _run(tmp_path: Path, reply, options=None, texts=(TEXT,)):  # type: ignore[no-untyped-def]
    spec = {
        "seed": 5,
        "input": str(_input(tmp_path, *texts)),
        "steps": [{"pii_rewrite": {"detector": {"kind": "regex"}, **(options or {})}}],
    }
    backend = ScriptedBackend(reply)
    result = datarefinery.run(spec, tmp_path / "out", backend=backend)
    return result, list(read_records(result.dataset_path)), backend


def test_a_leaking_rewrite_is_caught_reasked_and_fixed(tmp_path: Path) -> None:
    first = {"done": False}

    def reply(request: Request) -> str:
        if not first["done"]:  # the first rewrite keeps the e-mail address
            first["done"] = True
            return json.dumps({"text": TEXT.replace("555-123-4567", "555-000-1111")})
        subs = _substitutes(request)
        text = TEXT
        for original, fake in subs.items():
            text = text.replace(original, fake)
        return json.dumps({"text": text})

    _result, (record,), backend = _run(tmp_path, reply, {"detector": {"kind": "both"}})
    assert len(backend.requests) == 2
    reask = backend.requests[1].messages[-1].content
    assert "anna.k@example.org" in reask and "still contains" in reask
    text = record.fields["text"]
    assert not any(value.lower() in text.lower() for value in ORIGINALS)
    assert record.scores["attempts"] == 2 and record.scores["verified"] is True
    assert record.provenance.conditioning["fallback"] == ""
    assert "EMAIL_ADDRESS" in record.provenance.conditioning["leaks_caught"]
    assert record.scores["token_f1_outside_pii"] >= 0.7


def test_a_model_that_keeps_leaking_falls_back_and_never_emits_a_leak(tmp_path: Path) -> None:
    _result, (record,), backend = _run(tmp_path, lambda r: json.dumps({"text": TEXT}))
    assert len(backend.requests) == 2  # one re-ask, then the fallback
    text = record.fields["text"]
    for value in ("anna.k@example.org", "555-123-4567"):
        assert value not in text
    assert record.provenance.conditioning["fallback"].startswith("patched:")


def test_a_rewrite_that_changes_too_much_is_replaced_by_surrogates(tmp_path: Path) -> None:
    _result, (record,), _ = _run(tmp_path, lambda r: json.dumps({"text": "Something else."}))
    assert record.provenance.conditioning["fallback"] == "surrogate:changed_too_much"
    assert record.fields["text"].startswith("Hi, I am Anna Kowalski, write to ")  # regex: no names
    assert "anna.k@example.org" not in record.fields["text"]


def test_invalid_replies_clean_records_and_bad_inputs(tmp_path: Path) -> None:
    texts = (TEXT, "nothing private in here", "   ", "x" * 200_001)
    result, records, backend = _run(tmp_path, lambda r: "not json at all", texts=texts)
    by_id = {r.id: r for r in records}
    assert by_id["r0"].provenance.conditioning["fallback"] == "surrogate:invalid_json"
    assert "anna.k@example.org" not in by_id["r0"].fields["text"]
    assert by_id["r1"].fields["text"] == "nothing private in here"
    assert by_id["r1"].scores["attempts"] == 0  # no PII found: the model is not asked
    rejected = {
        json.loads(line)["record"]["id"]: json.loads(line)["reason"]
        for line in result.rejected_path.read_text().splitlines()
    }
    assert rejected == {"r2": "empty", "r3": "too_long"}
    assert len(backend.requests) == 2  # only r0 went to the model (and its engine re-ask)


@pytest.mark.slow
def test_embedded_model_with_real_presidio_emits_no_original_value(tmp_path: Path) -> None:
    texts = (
        "My name is Anna Kowalski and my e-mail is anna.k@example.org.",
        "Please call Piotr Nowak at 555-123-4567 tomorrow.",
    )
    spec = {
        "seed": 1,
        "llm": {"n_ctx": 2048, "temperature": 0.2},
        "input": str(_input(tmp_path, *texts)),
        "steps": [{"pii_rewrite": {"consistency": "dataset"}}],
    }
    result = datarefinery.run(spec, tmp_path / "out")
    assert result.status == "complete"
    records = list(read_records(result.dataset_path))
    assert len(records) == 2
    for record in records:
        text = record.fields["text"]
        for value in ("Anna Kowalski", "anna.k@example.org", "Piotr Nowak", "555-123-4567"):
            assert value.lower() not in text.lower(), (value, text)
        assert record.scores["verified"] is True and record.scores["attempts"] >= 1
