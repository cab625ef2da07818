#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` (a continuous-batching OpenAI-compatible server) for the
# benchmarks, from the llama.cpp source vendored in the llama-cpp-python sdist this project pins.
# A bench helper only: not part of set-up or CI. Idempotent: a finished build is reused.
#   bash bench/llama_server/build.sh          prints the binary's path on its last line
# Environment: CACHE (default ~/.cache/datarefinery-bench/llama-server), JOBS (default 2),
# PYTHON (a Python with pip; default the project's .venv, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# The version is the one pyproject pins for the embedded extra, so the server runs the same
# llama.cpp as our embedded backend.
VERSION=$(grep -o 'llama-cpp-python==[0-9.]*' "$ROOT/pyproject.toml" | head -1 | cut -d= -f3)
[ -n "$VERSION" ] || { echo "no llama-cpp-python pin in $ROOT/pyproject.toml" >&2; exit 1; }
CACHE=${CACHE:-$HOME/.cache/datarefinery-bench/llama-server}
DEST="$CACHE/$VERSION"
BIN="$DEST/bin/llama-server"
JOBS=${JOBS:-2}
if [ -x "$BIN" ]; then
  echo "$BIN"
  exit 0
fi
PYTHON=${PYTHON:-}
if [ -z "$PYTHON" ]; then
  for p in "$ROOT/.venv/bin/python" "$ROOT/../main/.venv/bin/python" "$(command -v python3)"; do
    if [ -x "$p" ]; then PYTHON=$p; break; fi
  done
fi
command -v c++ >/dev/null || { echo "no C++ compiler (c++) on PATH: install g++ or clang" >&2; exit 1; }
CMAKE=$(command -v cmake || true)
if [ -z "$CMAKE" ]; then
  # pip's cmake and ninja wheels, in a venv of their own, when the system has no cmake.
  "$PYTHON" -m venv "$CACHE/tools"
  "$CACHE/tools/bin/pip" install -q cmake ninja
  CMAKE="$CACHE/tools/bin/cmake"
  export PATH="$CACHE/tools/bin:$PATH"
fi
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)

SRC="$CACHE/src-$VERSION"
if [ ! -d "$SRC" ]; then
  mkdir -p "$CACHE/sdist"
  # The sdist of this one package (its build requirements, which pip reads the metadata with, may
  # come as wheels: `--no-binary :all:` would compile every one of them from source first).
  "$PYTHON" -m pip download -q --no-deps --no-binary llama-cpp-python -d "$CACHE/sdist" \
    "llama-cpp-python==$VERSION"
  tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
  tar -xzf "$CACHE/sdist/llama_cpp_python-$VERSION.tar.gz" -C "$tmp"
  mv "$tmp/llama_cpp_python-$VERSION" "$SRC"
  rmdir "$tmp"
fi
LLAMA="$SRC/vendor/llama.cpp"
[ -f "$LLAMA/CMakeLists.txt" ] || { echo "no vendored llama.cpp in $SRC" >&2; exit 1; }

BUILD="$CACHE/build-$VERSION"
# Release, native CPU (the server runs on this machine only), no libcurl (models are local files),
# static libraries so the binary does not depend on the build folder.
"$CMAKE" -S "$LLAMA" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF
"$CMAKE" --build "$BUILD" --target llama-server -j "$JOBS"
# Install by rename so that an interrupted copy never looks like a finished build.
mkdir -p "$DEST"
cp "$BUILD/bin/llama-server" "$DEST/llama-server.tmp"
mkdir -p "$DEST/bin"
mv "$DEST/llama-server.tmp" "$BIN"
echo "$BIN"
