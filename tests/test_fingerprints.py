from __future__ import annotations

import os
from pathlib import Path

import pytest

from datarefinery.errors import RunDirError
from datarefinery.fingerprints import check_unchanged, fingerprint, fingerprints, named_files


def _spec(tmp_path: Path) -> dict[str, object]:
    (tmp_path / "in.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "seeds.jsonl").write_text('{"text": "b"}\n')
    (tmp_path / "data").mkdir()
    return {
        "input": {"path": "in.jsonl"},
        "task": {"templates": {"zero_shot": str(tmp_path / "missing.jinja")}},
        "steps": [{"few_shot": {"seeds": "seeds.jsonl", "note": "data", "k": 2}}],
        "llm": {"model": "in.jsonl"},
    }


def test_named_files_are_the_existing_files_of_input_task_and_steps(tmp_path: Path) -> None:
    found = named_files(_spec(tmp_path), tmp_path)
    # The folder "data" named by a step option is not a file; the llm block is not looked at.
    assert found == [(tmp_path / "in.jsonl").resolve(), (tmp_path / "seeds.jsonl").resolve()]


def test_an_input_folder_counts(tmp_path: Path) -> None:
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "data.arrow").write_bytes(b"x")
    assert named_files({"input": {"path": "saved"}}, tmp_path) == [(tmp_path / "saved").resolve()]


def test_unchanged_size_and_mtime_skip_the_hash(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("one\n")
    first = fingerprint(path)
    assert fingerprint(path, {**first, "sha256": "kept"})["sha256"] == "kept"


def test_a_touch_is_not_a_change_but_new_content_is(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("one\n")
    before = fingerprints([path])
    os.utime(path, ns=(1, 1))
    touched = fingerprints([path], before)
    check_unchanged(before, touched, tmp_path)
    path.write_text("three\n")
    os.utime(path, ns=(1, 1))  # same mtime as the touched file, different size: hashed again
    with pytest.raises(RunDirError, match=r"in\.jsonl changed since the run"):
        check_unchanged(before, fingerprints([path], touched), tmp_path)


def test_same_size_same_mtime_other_bytes_in_folder_is_a_change(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "a").write_bytes(b"ab")
    (folder / "b").write_bytes(b"c")
    before = fingerprints([folder])
    (folder / "a").write_bytes(b"a")
    (folder / "b").write_bytes(b"bc")
    after = fingerprints([folder])  # no previous: hashed
    with pytest.raises(RunDirError, match="changed"):
        check_unchanged(before, after, tmp_path)


def test_added_and_removed_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("x\n")
    with pytest.raises(RunDirError, match="was not part of the run"):
        check_unchanged({}, fingerprints([path]), tmp_path)
    gone = fingerprints([path])
    path.unlink()
    with pytest.raises(RunDirError, match="is gone"):
        check_unchanged(gone, {}, tmp_path)
