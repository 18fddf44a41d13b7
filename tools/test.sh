#!/usr/bin/env bash
# Installs what the tests need, builds everything and runs the whole suite with CTest.
# Tests that need Redis start their own private redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh --test
build=build/test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLUX_WERROR=ON >/dev/null
cmake --build "$build" -j2
cd "$build"
ctest --output-on-failure --timeout 300 -j2 "$@"
