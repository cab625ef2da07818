import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datarefinery
from datarefinery.errors import ConfigError, InputFileError
from datarefinery.records import Record
from datarefinery.steps.curate.decontaminate import Decontaminate, DecontaminateConfig
from tests.steps.curate.helpers import SENTIMENT, kept, records, rejected, run_step
from tests.support.examples import EXAMPLES
from tests.support.fake import read_jsonl

QUESTION = (
    "A baker sells thirty loaves on Monday and twice as many on Tuesday, then half of Tuesday's "
    "number on Wednesday. How many loaves does the baker sell over the three days?"
)
ANSWER = "The baker sells 120 loaves."


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def benchmark(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "bench.jsonl",
        [
            {"id": "q1", "question": QUESTION, "answer": ANSWER, "level": 2},
            {"question": "Who wrote the play Hamlet?", "answer": "Shakespeare"},
        ],
    )


def step(**options: Any) -> Decontaminate:
    return Decontaminate(DecontaminateConfig.model_validate(options))


def test_planted_overlaps_are_caught_with_the_benchmark_record_named(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    batch = records(
        # 13 words of the question inside a long record, in another case and punctuation
        "Here is a puzzle for you: a BAKER sells thirty loaves on Monday -- and twice as many "
        "on Tuesday. Enjoy!",
        "Any ideas? The baker sells 120 loaves, I think.",  # the whole short answer
        "who wrote the play 'Hamlet'???",  # the whole short question, no id in the file
        "A baker sells thirty loaves on Monday and twice as many on Friday instead.",  # 12 words
        "Shakespeare wrote many plays and poems that people still read today.",  # 1-word item
        "A quiet review of a film about bread, loaves and Monday mornings.",
    )
    outputs = run_step(step(benchmarks=[str(path)]), batch)
    assert [r.id for r in kept(outputs)] == ["r3", "r4", "r5"]
    why = {r.record.id: r for r in rejected(outputs)}
    assert {r.reason for r in why.values()} == {"contaminated"}
    assert why["r0"].detail == (
        f"field 'text' shares 13 words with benchmark {path} record 'q1', field 'question': "
        "'a baker sells thirty loaves on monday and twice as many on tuesday'"
    )
    assert "record 'q1', field 'answer'" in why["r1"].detail
    assert "all 5 words of" in why["r1"].detail
    assert f"benchmark {path} line 2, field 'question'" in why["r2"].detail


def test_defaults_check_the_task_text_fields_and_all_benchmark_text(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    outputs = run_step(step(benchmarks=str(path)), records("Who wrote the play Hamlet?"))
    assert rejected(outputs)[0].detail.startswith("field 'text' shares all 5 words of")
    index = step(benchmarks=str(path))
    run_step(index, [])
    # question and answer of both rows; the number and the one-word answer are not indexed
    assert [s[2] for s in index.sources] == ["question", "answer", "question"]


def test_min_words_and_n_are_options(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    text = "Shakespeare wrote many plays"
    assert rejected(run_step(step(benchmarks=[str(path)], min_words=1), records(text)))
    twelve = "A baker sells thirty loaves on Monday and twice as many on Friday."
    assert rejected(run_step(step(benchmarks=[str(path)], n=8), records(twelve)))
    assert kept(run_step(step(benchmarks=[str(path)]), records(twelve)))


def test_chat_fields_and_chosen_fields_are_checked(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    chat = [{"role": "user", "content": "who wrote the play hamlet"}]
    record = Record(id="c1", fields={"messages": chat, "text": "fine"})
    outputs = run_step(step(benchmarks=[str(path)], check_fields=["messages"]), [record])
    assert rejected(outputs)[0].detail.startswith("field 'messages' shares")
    outputs = run_step(step(benchmarks=[str(path)], check_fields=["nope"]), [record])
    assert rejected(outputs)[0].reason == "missing_field"


def test_csv_and_parquet_benchmarks_name_lines_and_rows(tmp_path: Path) -> None:
    with (tmp_path / "b.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt"])
        writer.writerow(["first benchmark prompt here"])
        writer.writerow(["second benchmark prompt here"])
    pq.write_table(
        pa.table({"prompt": ["third benchmark prompt here", "fourth one right here"]}),
        tmp_path / "b.parquet",
    )
    config = {"benchmarks": [str(tmp_path / "b.csv"), str(tmp_path / "b.parquet")]}
    outputs = run_step(
        step(**config), records("the second benchmark prompt here", "fourth one right here")
    )
    details = [r.detail for r in rejected(outputs)]
    assert f"benchmark {tmp_path / 'b.csv'} line 3, field 'prompt'" in details[0]
    assert f"benchmark {tmp_path / 'b.parquet'} row 2, field 'prompt'" in details[1]


def test_a_missing_benchmark_file_says_which_option_and_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        run_step(step(benchmarks=["bench.jsonl", "nowhere.jsonl"]), [], task=SENTIMENT)
    message = str(caught.value)
    assert "option benchmarks[0]" in message and "'bench.jsonl' not found" in message
    assert "relative to the spec's folder" in message


def test_a_missing_benchmark_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    with pytest.raises(InputFileError) as caught:
        run_step(step(benchmarks=[str(path)], fields=["question", "solution"]), [])
    assert str(caught.value).startswith(
        f"{path}, line 1, field 'solution': missing (the row has: answer, level, question)"
    )


def test_a_benchmark_with_nothing_to_index_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "labels.jsonl", [{"label": "yes"}, {"label": "no"}])
    with pytest.raises(InputFileError, match=r"nothing to index.*2 shorter texts"):
        run_step(step(benchmarks=[str(path)]), [])


def test_a_run_resumes_and_finishes_with_the_same_outputs(tmp_path: Path) -> None:
    path = benchmark(tmp_path)
    rows = [
        {"id": f"s{i}", "text": QUESTION if i % 3 == 0 else f"clean record number {i} here"}
        for i in range(10)
    ]
    spec = {
        "seed": 1,
        "task": {"description": "texts", "fields": {"text": {}}},
        "input": str(write_jsonl(tmp_path / "in.jsonl", rows)),
        "shard_size": 3,
        "steps": [{"decontaminate": {"benchmarks": [str(path)]}}],
    }
    out = tmp_path / "out"
    first = datarefinery.run(spec, out, diversity=False)
    dataset, rejects = first.dataset_path.read_text(), first.rejected_path.read_text()
    assert len(read_jsonl(first.dataset_path)) == 6 and len(read_jsonl(first.rejected_path)) == 4
    # As if the run had been killed before its last shard and the end of the run.
    (step_dir,) = (out / "steps").iterdir()
    for name in ("_COMPLETE", "shard-00003.done"):
        (step_dir / name).unlink()
    first.dataset_path.unlink()
    first.rejected_path.unlink()
    again = datarefinery.run(spec, out, diversity=False)
    assert again.status == "complete"
    assert again.dataset_path.read_text() == dataset
    assert again.rejected_path.read_text() == rejects
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["sessions"]) == 2


def test_the_example_spec_end_to_end(tmp_path: Path) -> None:
    result = datarefinery.run(EXAMPLES / "decontaminate.yaml", tmp_path / "out", diversity=False)
    assert result.status == "complete", result.message
    assert [r["id"] for r in read_jsonl(result.dataset_path)] == ["i1", "i3", "i4", "i6"]
    why = {r["record"]["id"]: r["detail"] for r in read_jsonl(result.rejected_path)}
    assert "benchmark data/benchmark_qa.jsonl record 'bq1', field 'question'" in why["i2"]
    assert "all 11 words of benchmark data/benchmark_qa.jsonl record 'bq3'" in why["i5"]
    assert "benchmark data/benchmark_qa.jsonl line 4, field 'answer'" in why["i7"]
