"""Every example spec, run on a scripted model, gives byte for byte the outputs kept in
``tests/goldens`` (regenerate on purpose with ``.venv/bin/python -m tests.support.goldens``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.goldens import (
    GOLDENS,
    expected_status,
    golden_specs,
    kept_files,
    run_golden,
)


@pytest.mark.parametrize("name", sorted(golden_specs()))
def test_outputs_match_golden(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_golden(name, out)
    assert result.status == expected_status(name), result.message
    produced = sorted(str(p) for p in kept_files(out))
    golden_dir = GOLDENS / name
    expected = sorted(str(p.relative_to(golden_dir)) for p in golden_dir.rglob("*") if p.is_file())
    assert produced == expected
    for relative in produced:
        assert (out / relative).read_bytes() == (golden_dir / relative).read_bytes(), relative
