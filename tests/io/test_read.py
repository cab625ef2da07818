import json
from pathlib import Path

import pytest

from datarefinery.errors import InputFileError
from datarefinery.io import read_records


def test_jsonl_rows_become_records(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "a", "text": "good", "label": "positive"}\n\n{"text": "bad"}\n')
    records = list(read_records(path))
    assert next(r.id for r in records) == "a"
    assert records[0].fields == {"text": "good", "label": "positive"}
    assert records[0].provenance.source == "in.jsonl"
    assert records[1].fields == {"text": "bad"}
    assert records[1].id  # a stable id from file name and line


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "oops"\n')
    with pytest.raises(InputFileError) as info:
        list(read_records(path))
    assert info.value.line == 2
    assert f"{path}, line 2: not valid JSON" in str(info.value)


def test_non_object_line(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('["a", "b"]\n')
    with pytest.raises(InputFileError, match="line 1: expected a JSON object, got list"):
        list(read_records(path))


def test_non_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(InputFileError, match="line 2: not UTF-8"):
        list(read_records(path))


def test_missing_required_field_names_field(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n{"txt": "b"}\n')
    with pytest.raises(InputFileError) as info:
        list(read_records(path, required=["text"]))
    assert (info.value.line, info.value.field) == (2, "text")
    assert "field 'text': missing (the row has: txt)" in str(info.value)


def test_empty_required_field(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "  "}\n')
    with pytest.raises(InputFileError, match="field 'text': is empty"):
        list(read_records(path, required=["text"]))


def test_csv_ragged_row_names_line(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("text,label\nnice,positive\nbad,negative,extra\n")
    with pytest.raises(InputFileError, match="line 3: 3 cells for 2 columns"):
        list(read_records(path))


def test_csv_short_row_names_field(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("text,label\nnice\n")
    with pytest.raises(InputFileError) as info:
        list(read_records(path))
    assert (info.value.line, info.value.field) == (2, "label")


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputFileError, match=r"unknown file type '\.txt'"):
        list(read_records(tmp_path / "x.txt"))
    with pytest.raises(InputFileError, match="no such file"):
        list(read_records(tmp_path / "absent.jsonl"))


def test_parquet_garbage_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(InputFileError, match="not a readable Parquet file"):
        list(read_records(path))


def test_limit(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": str(i)}) + "\n" for i in range(10)))
    assert len(list(read_records(path, limit=3))) == 3
