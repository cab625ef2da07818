"""The surrogate key: the secret that decides which fake value replaces which original.

Surrogates are an HMAC of the original value under this key, so whoever holds a list of candidate
originals but not the key cannot recompute the fakes and map them back. Where the key lives:

- by default, a random key made for the run in ``OUT/secrets/surrogate.key`` (mode 0600, folder
  0700), so a resumed run picks the same fakes;
- ``surrogate_key.file``: a key file of the user's (mode 0600), never copied into the run;
- ``surrogate_key.env``: an environment variable, read in each process that needs it.

Only the handle (``SurrogateKey``: a path or a variable name) travels with a step's context to Ray
workers; each worker reads the key itself, so the key is never pickled. A check value (an HMAC of
a fixed text under the key, next to it in ``OUT/secrets/``) makes a resumed run refuse a different
key instead of mixing two mappings in one dataset.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from datarefinery.config import SurrogateKeyConfig
from datarefinery.errors import RunDirError, UsageError

SECRETS_DIR = "secrets"
KEY_FILE = "surrogate.key"
CHECK_FILE = "surrogate.check"
MIN_KEY_BYTES = 32
_HOW_TO_MAKE = "make one with: openssl rand -hex 32"


@dataclass(frozen=True)
class SurrogateKey:
    """Where to read the key (a file or an environment variable); holds no key material."""

    path: Path | None = None
    env: str | None = None

    def read(self) -> bytes:
        """The key, read now in this process (a ``UsageError`` says what is missing and how to
        fix it).
        """
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise UsageError(
                    f"surrogate_key.env names the environment variable {self.env!r}, which is not "
                    "set in this process. Export it; on a Ray cluster, in the environment every "
                    f"node's workers start with ({_HOW_TO_MAKE})."
                )
            key, where = value.encode("utf-8"), f"the environment variable {self.env}"
        else:
            assert self.path is not None
            key, where = _read_key_file(self.path), str(self.path)
        if len(key) < MIN_KEY_BYTES:
            raise UsageError(
                f"the surrogate key in {where} is {len(key)} bytes long; it needs at least "
                f"{MIN_KEY_BYTES} random bytes ({_HOW_TO_MAKE})"
            )
        return key


def _read_key_file(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(
            f"the surrogate key file {path} does not exist here. On a Ray cluster it must be "
            "readable at the same path on every node (shared storage), or give the key through "
            "surrogate_key.env."
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read the surrogate key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise UsageError(
            f"the surrogate key file {path} is readable by other users (mode {mode & 0o777:o}); "
            f"make it the owner's alone: chmod 600 {path}"
        )
    return data.strip()


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read, atomically: a crash leaves either no
    file or the whole one.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_value(key: bytes) -> str:
    """A value that tells keys apart and reveals nothing of them (an HMAC of a fixed text)."""
    return hmac.new(key, b"datarefinery surrogate key check", hashlib.sha256).hexdigest()


def open_surrogate_key(
    config: SurrogateKeyConfig, *, base_dir: Path, run_dir: Path
) -> SurrogateKey:
    """The key handle of a run, prepared in the process that owns the run directory before any
    step runs: the run's own key is created if it has none, the key is read once (a missing or
    short key stops the run before any work), and a resumed run must use the key it started with.
    """
    folder = run_dir / SECRETS_DIR
    if config.env is not None:
        handle = SurrogateKey(env=config.env)
    elif config.file is not None:
        path = Path(config.file).expanduser()
        handle = SurrogateKey(path=(path if path.is_absolute() else base_dir / path).resolve())
    else:
        handle = SurrogateKey(path=(folder / KEY_FILE).resolve())
        if not (folder / KEY_FILE).exists():
            _write_private(folder / KEY_FILE, secrets.token_hex(MIN_KEY_BYTES) + "\n")
    key = handle.read()
    check = folder / CHECK_FILE
    if not check.exists():
        _write_private(check, check_value(key) + "\n")
    elif not hmac.compare_digest(check.read_bytes().strip(), check_value(key).encode()):
        raise RunDirError(
            f"{run_dir} was started with another surrogate key: resuming with this one would mix "
            "two mappings of originals to fakes in one dataset. Give the key the run started "
            "with, or use --fresh or another -o."
        )
    return handle
