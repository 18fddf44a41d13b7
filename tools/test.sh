#!/usr/bin/env bash
# Installs what the tests need, builds everything and runs the whole suite with CTest,
# then rebuilds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again.
# Tests that need Redis start their own private redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/install-deps.sh --test

run_suite() {  # build dir, ctest label to exclude ("" for none), extra cmake args...
  local build=$1 exclude=$2
  shift 2
  cmake -S . -B "$build" -DFLUX_WERROR=ON "$@" >/dev/null
  cmake --build "$build" -j2
  (cd "$build" && ctest --output-on-failure --timeout 300 -j2 ${exclude:+-LE "$exclude"})
}

run_suite build/test "" -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== again under AddressSanitizer and UndefinedBehaviorSanitizer"
# Not again: the docker-compose cluster (label docker: it builds its own images), and the
# tests that only compile (compile_fail: the compiler's messages; consumer: Flux built as a
# dependency of another project) — sanitizers change nothing there, and they take minutes.
run_suite build/asan 'docker|compile_fail|consumer' -DCMAKE_BUILD_TYPE=Debug \
  -DFLUX_SANITIZE=address,undefined -DFLUX_BUILD_BENCH=OFF
