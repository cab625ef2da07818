"""``export``: every format written and read back, the format table, and the errors."""

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import datarefinery
from datarefinery.errors import InputFileError, UsageError
from datarefinery.io.export import EXPORT_FORMATS
from datarefinery.records import Record

CHAT = [
    {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris."},
]


def instructions() -> list[Record]:
    return [
        Record(
            id=f"i{n}",
            fields={"instruction": f"Task {n}.", "input": "x" * n, "output": f"Done {n}."},
        )
        for n in range(3)
    ]


def pairs() -> list[Record]:
    return [
        Record(
            id=f"p{n}",
            fields={"prompt": f"{n}+{n}?", "chosen": str(2 * n), "rejected": "7", "margin": 1.5},
        )
        for n in range(3)
    ]


def read_back(path: Path) -> list[dict[str, Any]]:
    """The rows as a trainer's loader sees them: JSON lines, a JSON array, Parquet, CSV or HF."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".json":
        rows: list[dict[str, Any]] = json.loads(path.read_text())
        return rows
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]
    if path.suffix == ".csv":
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    datasets = pytest.importorskip("datasets")
    return list(datasets.load_from_disk(str(path)))


EXPECTED = {
    "sft-messages": (
        instructions,
        {
            "messages": [
                {"role": "user", "content": "Task 1.\n\nx"},
                {"role": "assistant", "content": "Done 1."},
            ]
        },
    ),
    "sharegpt": (
        instructions,
        {
            "conversations": [
                {"from": "human", "value": "Task 1.\n\nx"},
                {"from": "gpt", "value": "Done 1."},
            ]
        },
    ),
    "alpaca": (instructions, {"instruction": "Task 1.", "input": "x", "output": "Done 1."}),
    "dpo": (pairs, {"prompt": "1+1?", "chosen": "2", "rejected": "7"}),
    "dpo-messages": (
        pairs,
        {
            "prompt": [{"role": "user", "content": "1+1?"}],
            "chosen": [{"role": "assistant", "content": "2"}],
            "rejected": [{"role": "assistant", "content": "7"}],
        },
    ),
}


@pytest.mark.parametrize("container", ["out.jsonl", "out.json", "out.parquet", "out_hf"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_training_formats_round_trip(tmp_path: Path, name: str, container: str) -> None:
    if container == "out_hf":
        pytest.importorskip("datasets")
    make, second_row = EXPECTED[name]
    path = tmp_path / container
    assert datarefinery.export(make(), path, format=name) == 3
    rows = read_back(path)
    assert len(rows) == 3
    assert rows[1] == second_row


@pytest.mark.parametrize("name", ["alpaca", "dpo"])
def test_flat_training_formats_go_to_csv(tmp_path: Path, name: str) -> None:
    make, second_row = EXPECTED[name]
    assert datarefinery.export(make(), tmp_path / "out.csv", format=name) == 3
    assert read_back(tmp_path / "out.csv")[1] == second_row


def test_nested_rows_are_refused_for_csv(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="rows hold lists in 'messages', which CSV cannot"):
        datarefinery.export(instructions(), tmp_path / "out.csv", format="sft-messages")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.parquet", "out_hf"])
def test_record_formats_still_follow_the_suffix(tmp_path: Path, name: str) -> None:
    if name == "out_hf":
        pytest.importorskip("datasets")
    path = tmp_path / name
    assert datarefinery.export(pairs(), path) == 3
    back = list(datarefinery.read_records(path))
    assert [r.id for r in back] == ["p0", "p1", "p2"]
    assert back[0].fields["chosen"] == "0"


def test_record_format_by_name_ignores_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "records.txt"
    datarefinery.export(pairs(), path, format="jsonl")
    assert json.loads(path.read_text().splitlines()[0])["id"] == "p0"


def test_mapping_and_keep(tmp_path: Path) -> None:
    records = [Record(id="q1", fields={"q": "Why?", "a": "Because.", "topic": "life"})]
    path = tmp_path / "out.jsonl"
    datarefinery.export(
        records,
        path,
        format="alpaca",
        mapping={"prompt": "q", "response": "a", "keep": ["id", "topic"]},
    )
    assert read_back(path) == [
        {"instruction": "Why?", "input": "", "output": "Because.", "id": "q1", "topic": "life"}
    ]


def test_rows_get_every_column(tmp_path: Path) -> None:
    # pyarrow and datasets take the columns from the first row: a later row's extra key
    # (alpaca's system) must be in every row, null where absent.
    records = [
        Record(id="a", fields={"messages": CHAT}),
        Record(id="b", fields={"messages": [{"role": "system", "content": "Be brief."}, *CHAT]}),
    ]
    path = tmp_path / "out.parquet"
    datarefinery.export(records, path, format="alpaca")
    assert [row["system"] for row in read_back(path)] == [None, "Be brief."]


def test_a_run_directory_or_a_records_file_is_a_source(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    datarefinery.write_records(run / "dataset.jsonl", pairs())
    datarefinery.export(run, tmp_path / "a.jsonl", format="dpo")
    datarefinery.write_records(tmp_path / "pairs.parquet", pairs())
    datarefinery.export(tmp_path / "pairs.parquet", tmp_path / "b.jsonl", format="dpo")
    assert read_back(tmp_path / "a.jsonl") == read_back(tmp_path / "b.jsonl")


def test_a_record_missing_a_field_names_file_line_record_and_option(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"id": "ok", "prompt": "p", "response": "r"}\n{"id": "bad", "prompt": "p"}\n')
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputFileError) as caught:
        datarefinery.export(data, out, format="sft-messages")
    assert str(caught.value).startswith(
        f"{data}, line 2, field 'response': record bad: no response field"
    )
    assert "set --response-field" in str(caught.value)
    assert not out.exists()
    with pytest.raises(UsageError, match="field 'rejected': record p0: no field 'rejected'"):
        datarefinery.export(
            [Record(id="p0", fields={"prompt": "p", "chosen": "c"})],
            out,
            format="dpo",
            mapping={"rejected": "rejected"},
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "xml"}, "unknown export format 'xml': use one of jsonl, csv"),
        ({"mapping": {"prompt": "q"}}, "field mapping options apply to the training formats"),
        ({"format": "csv", "mapping": {"prompt": "q"}}, "--format csv writes whole records"),
        ({"format": "dpo", "path": "out.xlsx"}, "cannot tell the container"),
    ],
)
def test_usage_errors(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    path = tmp_path / kwargs.pop("path", "out.jsonl")
    with pytest.raises(UsageError, match=message):
        datarefinery.export(pairs(), path, **kwargs)


def test_the_format_table_names_every_shape() -> None:
    assert set(EXPORT_FORMATS) == {
        "jsonl",
        "csv",
        "parquet",
        "hf",
        "sft-messages",
        "sharegpt",
        "alpaca",
        "dpo",
        "dpo-messages",
        "argilla",
        "labelstudio",
    }


@pytest.mark.slow
def test_a_real_run_exports_for_every_chat_trainer(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    from tests.support.examples import run_example

    result = run_example(
        "evol_instruct",
        tmp_path / "run",
        {"rounds": 1},
        max_chars={"instruction": 150, "output": 150},
        n_threads=1,
    )
    assert result.status == "complete"
    kept = list(datarefinery.read_records(result.dataset_path))
    for name in ("sft-messages", "sharegpt", "alpaca"):
        out = tmp_path / f"{name}.jsonl"
        assert datarefinery.export(
            tmp_path / "run", out, format=name, mapping={"keep": ["id"]}
        ) == len(kept)
        if kept:
            rows = datasets.load_dataset("json", data_files=str(out), split="train")
            assert rows["id"] == [r.id for r in kept]
    saved = tmp_path / "sft_hf"
    datarefinery.export(tmp_path / "run", saved, format="sft-messages")
    for row, record in zip(datasets.load_from_disk(str(saved)), kept, strict=True):
        assert row["messages"][-1] == {"role": "assistant", "content": record.fields["output"]}
