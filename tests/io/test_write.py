from pathlib import Path

import pytest

from datarefinery.errors import UsageError
from datarefinery.io import read_records, write_records
from datarefinery.records import Provenance, Record


def sample() -> list[Record]:
    return [
        Record(
            id=f"r{i}",
            fields={"text": f"review {i}", "label": "positive" if i % 2 else "negative"},
            provenance=Provenance(
                step="zero_shot", technique="zero_shot", conditioning={"label": "x"}
            ),
            scores={"judge": i},
        )
        for i in range(3)
    ]


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.parquet", "out_hf"])
def test_round_trip_every_format(tmp_path: Path, name: str) -> None:
    records = sample()
    path = tmp_path / name
    assert write_records(path, records) == 3
    back = list(read_records(path))
    assert [r.id for r in back] == ["r0", "r1", "r2"]
    assert [r.fields for r in back] == [r.fields for r in records]
    assert [r.provenance for r in back] == [r.provenance for r in records]
    if not name.endswith(".csv"):  # CSV has no types: scores come back as strings
        assert [r.scores for r in back] == [r.scores for r in records]


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot tell the format"):
        write_records(tmp_path / "out.xlsx", sample())
