from __future__ import annotations

import json
from pathlib import Path

import pytest

from datarefinery.cli.refine import print_outcomes
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.refine_eval import (
    PII_METHODS,
    _outcomes,
    run_method,
    sample_ids,
    with_options,
)


def test_sample_is_seeded_and_complete_without_limit() -> None:
    ids = [str(i) for i in range(100)]
    assert sample_ids(ids, None, 0) == set(ids)
    assert sample_ids(ids, 10, 1) == sample_ids(ids, 10, 1) != sample_ids(ids, 10, 2)
    assert len(sample_ids(ids, 10, 1)) == 10


def test_outcomes_of_a_gdr_run_are_counted_and_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    texts = ["Write to anna.k@example.org today.", "Nothing personal here."]
    source.write_text(
        "".join(json.dumps({"id": f"r{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )

    def reply(request: Request) -> str:
        if "values" in (request.json_schema or {}).get("properties", {}):
            return json.dumps({"values": []})
        return json.dumps({"text": "Something else entirely."})  # changes too much: replaced

    step = with_options(PII_METHODS["pii_rewrite"], {"detector": {"kind": "regex"}})
    result, outputs = run_method(
        step, source, tmp_path / "gdr", llm={}, seed=0, backend=ScriptedBackend(reply)
    )
    assert "anna.k@example.org" not in outputs["r0"]
    figures = _outcomes(result)
    assert figures["outcomes"] == {
        "rewritten": 0,
        "rewritten_patched": 0,
        "replaced": 1,
        "unchanged": 1,
    }
    assert figures["fallbacks"] == {"changed_too_much": 1}
    print_outcomes({"methods": {"dirs": {}, "pii_rewrite": figures}})
    shown = capsys.readouterr().out
    assert "replaced" in shown and "rewritten_patched" in shown and "dirs" not in shown
