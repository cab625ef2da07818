"""The QA loop and ``experiment s3 --data .../adversarial_qa`` on a scripted model, with a stub
span model (the real one is tested in tests/models/test_qa_model.py and on the embedded model in
tests/loop/test_qa_experiment.py): errors, what each round extrapolates from, the table.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from datarefinery.errors import ConfigError, UsageError
from datarefinery.llm.base import Request
from datarefinery.llm.scripted import ScriptedBackend
from datarefinery.loop import qa, qa_experiment
from datarefinery.loop.experiment import ExperimentConfig, run_experiment
from datarefinery.loop.qa import QALoopSpec, load_qa, measure, run_qa_s3
from datarefinery.records import Record
from tests.support.qa import CONTEXTS, qa_folder, qa_rows, qa_script


class YearModel:
    """Answers every question with the context's first year: right on most "when" questions,
    wrong on "who".
    """

    def fit(self, records: Sequence[Record]) -> YearModel:
        self.trained = len(records)
        return self

    def predict(self, records: Sequence[Record]) -> list[str]:
        return [re.findall(r"\b1\d{3}\b", str(r.fields["context"]))[0] for r in records]


@pytest.fixture
def year_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qa, "make_qa_model", lambda options, seed: YearModel())
    monkeypatch.setattr(qa_experiment, "make_qa_model", lambda options, seed: YearModel())


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_errors_are_the_questions_without_an_exact_match(tmp_path: Path) -> None:
    records = load_qa(qa_folder(tmp_path) / "validation.jsonl")
    assert records[1].fields["answer"] == "Gordon Graham" and records[1].fields["answer_start"] > 0
    scores, errors = measure(YearModel(), records)  # type: ignore[arg-type]
    # "1968" for "December 1968" is no exact match but half right: F1 2/3
    assert scores == pytest.approx({"em": 2 / 6, "f1": (1 + 0 + 2 / 3 + 0 + 1 + 0) / 6})
    assert [e.id for e in errors] == ["q1", "q2", "q3", "q5"]
    assert errors[0].scores == {"predicted": "1976", "f1": 0.0}
    assert errors[1].scores == {"predicted": "1968", "f1": 0.6667}
    assert errors[0].fields == records[1].fields


def test_experiment_on_qa_rows_rounds_and_table(tmp_path: Path, year_model: None) -> None:
    out = tmp_path / "out"
    config = ExperimentConfig(
        data=qa_folder(tmp_path),
        budget=8,
        out=out,
        llm={"max_tokens": 64},
        repeats=2,
        methods=["gold", "zerogen", "goldgen", "s3", "s3_no_rationale"],
    )
    table = run_experiment(config, backend=ScriptedBackend(qa_script))
    rows = {row["method"]: row for row in table["rows"]}
    assert list(rows) == ["gold", "ZeroGen", "GoldGen", "S3", "S3 without rationales"]
    assert rows["gold"]["runs"] == 2 and rows["gold"]["accuracy"] == 0.4444
    assert rows["gold"]["em"] == 0.3333 and rows["gold"]["records"] == 6
    assert "does not apply" in rows["S3 without rationales"]["note"]
    for method in ("ZeroGen", "GoldGen", "S3"):
        assert rows[method]["runs"] == 2
        assert 0 < rows[method]["records"] <= 8
        assert rows[method]["accuracy"] == 0.4444  # the stub's F1 whatever it trains on
        assert rows[method]["accuracy_sd"] == 0.0
    # S3 extrapolates from round 0's errors, GoldGen from any question
    for seed in (0, 1):
        s3 = out / "s3" / f"seed-{seed}" / "rounds"
        errors = read(s3 / "00" / "errors.jsonl")
        assert [e["id"] for e in errors] == ["q1", "q2", "q3", "q5"]
        assert all(e["scores"]["predicted"] for e in errors)
        examples = read(s3 / "01" / "examples.jsonl")
        assert examples and {e["id"] for e in examples} <= {"q1", "q2", "q3", "q5"}
        made = read(s3 / "01" / "run" / "dataset.jsonl")
        contexts = {e["id"]: e["fields"]["context"] for e in examples}
        for record in made:
            assert record["fields"]["context"] == contexts[record["provenance"]["parent_ids"][0]]
        # nothing dropped silently: every call is a record or a rejection with its reason
        rejected = read(s3 / "00" / "run" / "rejected.jsonl")
        assert rejected and {r["reason"] for r in rejected} <= {
            "not_in_context",
            "answer_not_in_context",
        }
        seeds = [
            (out / m / f"seed-{seed}" / "rounds" / "00" / "train.jsonl").read_text()
            for m in ("goldgen", "s3")
        ]
        assert seeds[0] == seeds[1]
    assert len(read(out / "contexts.jsonl")) == 3
    markdown = (out / "table.md").read_text()
    assert "| F1 (test, n=6) | EM (test) | val F1 |" in markdown
    assert "| S3 | 2 |" in markdown and "mean test F1" in markdown
    summary = (out / "s3" / "seed-0" / "summary.md").read_text()
    assert "errors: exact match 0" in summary
    # a rerun resumes: no model call, the same table
    again = ScriptedBackend(qa_script)
    assert run_experiment(config, backend=again)["rows"] == table["rows"]
    assert again.requests == []


def test_a_round_with_no_surviving_question_scores_zero_and_goes_on(
    tmp_path: Path, year_model: None
) -> None:
    def paraphrases(request: Request) -> str:
        return json.dumps({"question": f"Which year, {request.seed}?", "answer": "some year"})

    config = ExperimentConfig(
        data=qa_folder(tmp_path), budget=8, out=tmp_path / "out", llm={}, methods=["s3"]
    )
    table = run_experiment(config, backend=ScriptedBackend(paraphrases))
    (row,) = table["rows"]
    assert row["records"] == 0 and row["accuracy"] == 0.0 and row["em"] == 0.0
    rounds = tmp_path / "out" / "s3" / "seed-0" / "rounds"
    assert len(read(rounds / "00" / "errors.jsonl")) == 6  # no model: every question is wrong
    assert read(rounds / "01" / "examples.jsonl")  # ... and extrapolated from
    assert {r["reason"] for r in read(rounds / "00" / "run" / "rejected.jsonl")} == {
        "not_in_context"
    }


def test_qa_takes_only_the_span_model(tmp_path: Path) -> None:
    config = ExperimentConfig(
        data=qa_folder(tmp_path), budget=8, out=tmp_path / "out", llm={}, small_model="tfidf-lr"
    )
    with pytest.raises(UsageError, match="span model"):
        run_experiment(config)


def test_the_token_budget_spans_the_rounds(tmp_path: Path, year_model: None) -> None:
    folder = qa_folder(tmp_path)
    pool = tmp_path / "contexts.jsonl"
    pool.write_text(
        "".join(json.dumps({"id": f"c{i}", "context": c}) + "\n" for i, c in enumerate(CONTEXTS))
    )
    spec = QALoopSpec.model_validate(
        {
            "llm": {"max_tokens": 64, "budget": {"max_tokens": 20000}},
            "synthesis": [
                {"conditioned": {"pool": str(pool), "given": ["context"], "count_per_label": 4}},
                {"qa_span": {}},
            ],
            "validation": str(folder / "validation.jsonl"),
            "test": str(folder / "test.jsonl"),
            "rounds": 1,
            "examples_per_round": 2,
        }
    )
    result = run_qa_s3(spec, tmp_path / "out", backend=ScriptedBackend(qa_script))
    assert result.status == "complete" and len(result.rounds) == 2, result.message
    manifest = json.loads(
        (tmp_path / "out" / "rounds" / "01" / "run" / "manifest.json").read_text()
    )
    assert manifest["spec"]["llm"]["budget"]["max_tokens"] == 20000 - result.rounds[0].tokens


def test_a_qa_spec_with_other_column_names(tmp_path: Path, year_model: None) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # other names, a flat answer column, CSV for the test split
    rows = [
        {
            "pid": r["id"],
            "passage": r["context"],
            "query": r["question"],
            "gold": r["answers"]["text"][0],
        }
        for r in qa_rows()
    ]
    (data / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with (data / "test.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    spec = tmp_path / "qa.yaml"
    spec.write_text(
        "task_type: qa\n"
        "name: my-qa\n"
        "seed: 4\n"
        "llm: {max_tokens: 64}\n"
        "data:\n"
        "  validation: data/dev.jsonl\n"
        "  test: data/test.csv\n"
        "  columns: {context: passage, question: query, answer: gold}\n"
        "loop:\n"
        "  small_model: {kind: transformer, epochs: 1, max_length: 64}\n"
        "  rounds: 1\n"
        "  k: 1\n"
    )
    config = ExperimentConfig(spec=spec, budget=8, out=tmp_path / "out", methods=["gold", "s3"])
    table = run_experiment(config, backend=ScriptedBackend(qa_script))
    assert [row["method"] for row in table["rows"]] == ["gold", "S3"]
    assert table["seeds"] == [4] and table["rounds"] == 1 and table["k"] == 1
    assert table["small_model"]["span_qa"]["max_length"] == 64
    assert table["rows"][0]["accuracy"] == 0.4444  # the same six questions, read by other names
    summary = json.loads((tmp_path / "out" / "s3" / "seed-4" / "summary.json").read_text())
    assert summary["name"] == "my-qa-s3" and len(summary["rounds"]) == 2


def test_a_qa_spec_error_names_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "qa.yaml"
    spec.write_text("task_type: qa\ndata:\n  validation: v.jsonl\n  test: t.jsonl\nloop:\n  k: 0\n")
    config = ExperimentConfig(spec=spec, budget=8, out=tmp_path / "out")
    with pytest.raises(ConfigError, match=r"line 6.*loop\.k|loop\.k.*line 6"):
        run_experiment(config)
