"""Where the surrogate key comes from, who can read it, and what a resumed run checks."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from datarefinery.config import SurrogateKeyConfig, spec_from_dict
from datarefinery.errors import ConfigError, RunDirError, UsageError
from datarefinery.surrogate_key import (
    CHECK_FILE,
    KEY_FILE,
    SECRETS_DIR,
    SurrogateKey,
    open_surrogate_key,
)

USER_KEY = "7c1e0b9a4f3d2c6e8a5b1f0d9c7e3a2b4d6f8e0a1c3b5d7f9e2a4c6b8d0f1e3a"


def key_file(path: Path, text: str = USER_KEY, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def test_the_default_key_is_random_per_run_and_readable_by_its_owner_alone(
    tmp_path: Path,
) -> None:
    one = open_surrogate_key(SurrogateKeyConfig(), base_dir=tmp_path, run_dir=tmp_path / "a")
    two = open_surrogate_key(SurrogateKeyConfig(), base_dir=tmp_path, run_dir=tmp_path / "b")
    assert one.read() != two.read() and len(one.read()) >= 32
    assert one.path == (tmp_path / "a" / SECRETS_DIR / KEY_FILE).resolve()
    assert stat.S_IMODE(one.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(one.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((one.path.parent / CHECK_FILE).stat().st_mode) == 0o600
    # A resumed run reads the same key; the handle that travels to workers holds none of it.
    again = open_surrogate_key(SurrogateKeyConfig(), base_dir=tmp_path, run_dir=tmp_path / "a")
    assert again.read() == one.read()
    assert one.read() not in pickle.dumps(one)


def test_a_user_key_file_is_shared_by_runs_and_never_copied(tmp_path: Path) -> None:
    path = key_file(tmp_path / "pii.key")
    config = SurrogateKeyConfig(file="pii.key")
    one = open_surrogate_key(config, base_dir=tmp_path, run_dir=tmp_path / "train")
    two = open_surrogate_key(config, base_dir=tmp_path, run_dir=tmp_path / "test")
    assert one.read() == two.read() == USER_KEY.encode()
    assert one.path == path.resolve()
    for run in ("train", "test"):
        assert not (tmp_path / run / SECRETS_DIR / KEY_FILE).exists()
        for copy in (tmp_path / run).rglob("*"):
            assert copy.is_dir() or USER_KEY.encode() not in copy.read_bytes()


def test_a_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_KEY", USER_KEY)
    handle = open_surrogate_key(
        SurrogateKeyConfig(env="PII_KEY"), base_dir=tmp_path, run_dir=tmp_path
    )
    assert handle == SurrogateKey(env="PII_KEY") and handle.read() == USER_KEY.encode()
    monkeypatch.delenv("PII_KEY")
    with pytest.raises(UsageError, match=r"PII_KEY.*not set.*every node"):
        handle.read()


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        ("short", 0o600, "at least 32"),
        (USER_KEY, 0o644, "chmod 600"),
    ],
)
def test_weak_or_exposed_key_files_are_refused(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    key_file(tmp_path / "k", text, mode)
    with pytest.raises(UsageError, match=message):
        open_surrogate_key(SurrogateKeyConfig(file="k"), base_dir=tmp_path, run_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written before the key was accepted


def test_a_missing_key_file_says_where_it_must_be(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"does not exist.*every node"):
        open_surrogate_key(SurrogateKeyConfig(file="nope"), base_dir=tmp_path, run_dir=tmp_path)


def test_a_resumed_run_refuses_another_key(tmp_path: Path) -> None:
    run = tmp_path / "run"
    open_surrogate_key(SurrogateKeyConfig(), base_dir=tmp_path, run_dir=run)
    key_file(tmp_path / "k")
    with pytest.raises(RunDirError, match="another surrogate key"):
        open_surrogate_key(SurrogateKeyConfig(file="k"), base_dir=tmp_path, run_dir=run)


def test_the_config_is_validated_and_stays_out_of_the_spec_hash() -> None:
    base = {"steps": [{"dirs": {}}]}
    with pytest.raises(ConfigError, match="not both"):
        spec_from_dict({**base, "surrogate_key": {"file": "k", "env": "K"}})
    with pytest.raises(ConfigError, match="environment variable name"):
        spec_from_dict({**base, "surrogate_key": {"env": "not a name"}})
    moved = spec_from_dict({**base, "surrogate_key": {"file": "/elsewhere/k"}})
    assert moved.spec.spec_hash() == spec_from_dict(base).spec.spec_hash()
