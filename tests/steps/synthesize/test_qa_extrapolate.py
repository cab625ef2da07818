"""``qa_extrapolate`` (then ``qa_span``): k new questions on each error's context; the conditioned
QA synthesis's answers checked as verbatim spans, the rest rejected with a reason.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import datarefinery
from datarefinery.errors import ConfigError
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop.qa import QA_TASK
from tests.support.qa import CONTEXTS, qa_script
from tests.support.specs import SENTIMENT_TASK


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_k_questions_on_the_errors_context(tmp_path: Path) -> None:
    errors = tmp_path / "errors.jsonl"
    rows = [
        {"id": "e0", "context": CONTEXTS[0], "question": "When?", "answer": "1976"},
        {"id": "e1", "context": CONTEXTS[1], "question": "Who?", "answer": "Frank Borman"},
    ]
    errors.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = {
        "seed": 1,
        "task": copy.deepcopy(QA_TASK),
        "llm": {"max_tokens": 64},
        "input": str(errors),
        "steps": [{"qa_extrapolate": {"k": 3}}, {"qa_span": {}}],
    }
    backend = ScriptedBackend(qa_script)
    result = datarefinery.run(spec, tmp_path / "run", backend=backend)
    assert result.status == "complete"
    kept = read(tmp_path / "run" / "dataset.jsonl")
    rejected = read(tmp_path / "run" / "rejected.jsonl")
    assert len(backend.requests) == 6 and len(kept) + len(rejected) == 6
    assert kept and rejected
    by_id = {r["id"]: r for r in rows}
    for record in kept:
        example = by_id[record["provenance"]["parent_ids"][0]]
        assert record["fields"]["context"] == example["context"]
        assert record["fields"]["answer"] in example["context"]
    assert {r["reason"] for r in rejected} == {"answer_not_in_context"}
    # the prompt shows the error: its question, gold answer and context
    assert "Frank Borman" in " ".join(m.content for r in backend.requests for m in r.messages)


def test_the_seed_synthesis_rejects_answers_that_are_not_spans(tmp_path: Path) -> None:
    pool = tmp_path / "contexts.jsonl"
    pool.write_text(
        "".join(json.dumps({"id": f"c{i}", "context": c}) + "\n" for i, c in enumerate(CONTEXTS))
    )
    spec = {
        "seed": 3,
        "task": copy.deepcopy(QA_TASK),
        "llm": {"max_tokens": 64},
        "steps": [
            {
                "conditioned": {
                    "pool": str(pool),
                    "given": ["context"],
                    "must_occur_in": {"answer": "context"},
                    "count_per_label": 8,
                }
            },
            {"qa_span": {}},
        ],
    }
    result = datarefinery.run(spec, tmp_path / "run", backend=ScriptedBackend(qa_script))
    kept = read(tmp_path / "run" / "dataset.jsonl")
    rejected = read(tmp_path / "run" / "rejected.jsonl")
    assert result.status == "complete" and len(kept) + len(rejected) == 8
    assert kept and all(r["fields"]["answer"] in r["fields"]["context"] for r in kept)
    # "the year 1976" is caught (by conditioned's looser check or by qa_span), never dropped
    assert rejected and {r["reason"] for r in rejected} <= {
        "not_in_context",
        "answer_not_in_context",
    }


def test_a_task_without_qa_fields_is_a_config_error(tmp_path: Path) -> None:
    errors = tmp_path / "errors.jsonl"
    errors.write_text(json.dumps({"id": "e", "text": "fine", "label": "positive"}) + "\n")
    spec = {
        "task": copy.deepcopy(SENTIMENT_TASK),
        "llm": {"max_tokens": 64},
        "input": str(errors),
        "steps": [{"qa_extrapolate": {}}],
    }
    with pytest.raises(ConfigError, match="context, question and answer"):
        datarefinery.run(spec, tmp_path / "run", backend=ScriptedBackend(qa_script))
