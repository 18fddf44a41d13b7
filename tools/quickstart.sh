#!/usr/bin/env bash
# Builds and runs the quickstart example on the embedded in-memory store.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DFLUX_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j2 --target quickstart
./build/release/examples/quickstart
