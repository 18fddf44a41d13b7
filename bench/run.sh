#!/usr/bin/env bash
# Runs every benchmark workload (W1–W6, C1) against Flux and its baseline in one sitting,
# prints a table (workload | Flux | baseline | ratio, medians with min–max over the
# repetitions) and writes the same as JSON to build/bench/results.json.
#
#   ./bench/run.sh                      # 5 repetitions of everything
#   FLUX_BENCH_REPS=9 ./bench/run.sh    # more repetitions
#   ./bench/run.sh W1 W3                # only some workloads
#
# Builds in Release in build/bench (its own build directory, -j2), starts a private
# redis-server on a free loopback port in a temporary directory for W4 and stops it
# on exit. Extra options for one program: FLUX_BENCH_W1_ARGS="--runs 500" etc.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=${FLUX_BENCH_REPS:-5}
build=build/bench
out_jsonl=$build/results.jsonl
out_json=$build/results.json
workloads=()
for w in "$@"; do
  w=${w^^}
  case $w in
    W1 | W2 | W3 | W4 | W5 | W6 | C1) workloads+=("$w") ;;
    *) echo "usage: bench/run.sh [W1 W2 W3 W4 W5 W6 C1]... (unknown workload '$w')" >&2; exit 2 ;;
  esac
done
((${#workloads[@]})) || workloads=(W1 W2 W3 W4 W5 W6 C1)
wants() { local w; for w in "${workloads[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

./tools/install-deps.sh --test  # idempotent: installs only what is missing (redis-server, redis-tools)

echo "== building (Release) in $build" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLUX_BUILD_TESTS=OFF -DFLUX_BUILD_EXAMPLES=OFF \
  -DFLUX_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target flux_bench >/dev/null
bin=$build/bench

# ---- private redis-server (W4) ----------------------------------------------------------
redis_pid=""
redis_dir=""
cleanup() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  # An `if`, not `[[ ]] &&`: as the trap's last command, a false test would be the exit status.
  if [[ -n $redis_dir ]]; then rm -rf "$redis_dir"; fi
}
trap cleanup EXIT

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_redis() {
  redis_dir=$(mktemp -d /tmp/flux-bench-redis-XXXXXX)
  local port
  for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    redis-server --port "$port" --bind 127.0.0.1 --dir "$redis_dir" --save "" --appendonly no \
      --logfile "$redis_dir/redis.log" &
    redis_pid=$!
    for _ in $(seq 1 100); do
      if [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; then
        redis_port=$port
        echo "== redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$port (pid $redis_pid)" >&2
        return 0
      fi
      kill -0 "$redis_pid" 2>/dev/null || break  # it exited: port taken meanwhile, try another
      sleep 0.05
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  echo "bench: could not start redis-server (see $redis_dir/redis.log)" >&2
  return 1
}

# ---- run ----------------------------------------------------------------------------------
: >"$out_jsonl"
{
  printf '{"meta":"sitting","date":"%s","host":"%s","nproc":%s,"loadavg":"%s","git":"%s","dirty_files":%s,"reps":%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(uname -n)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    "$(git status --porcelain 2>/dev/null | wc -l)" "$reps"
} >>"$out_jsonl"

failed=()
run() {  # run NAME PROGRAM ARGS...: its JSON lines go to the results file, progress to stderr
  local name=$1
  shift
  echo "== $name" >&2
  if ! "$@" >>"$out_jsonl"; then
    echo "bench: $name failed; its figures are missing from the table" >&2
    failed+=("$name")
  fi
}
ensure_redis() { [[ -n $redis_pid ]] || start_redis; }

# shellcheck disable=SC2086  # the *_ARGS variables are word lists on purpose
{
  wants W1 && run W1 "$bin/bench_w1_chain" --reps "$reps" ${FLUX_BENCH_W1_ARGS:-}
  wants W2 && run W2 "$bin/bench_w2_fanout" --reps "$reps" ${FLUX_BENCH_W2_ARGS:-}
  wants W3 && run W3 "$bin/bench_w3_throughput" --reps "$reps" ${FLUX_BENCH_W3_ARGS:-}
  # Beside the default durability (slow_steps), the strict mode: every record acknowledged
  # by the store before its branch goes on (rows marked " (strict durability)").
  wants W1 && run "W1 strict" "$bin/bench_w1_chain" --reps "$reps" --no-single \
    --durability strict ${FLUX_BENCH_W1_ARGS:-}
  wants W3 && run "W3 strict" "$bin/bench_w3_throughput" --reps "$reps" --no-mem \
    --durability strict ${FLUX_BENCH_W3_ARGS:-}
  if wants W4; then
    ensure_redis
    run W4 "$bin/bench_w4_redis" --reps "$reps" --port "$redis_port" ${FLUX_BENCH_W4_ARGS:-}
    run "W4 strict" "$bin/bench_w4_redis" --reps "$reps" --port "$redis_port" \
      --durability strict ${FLUX_BENCH_W4_ARGS:-}
    # Redis's append-only file on, fsync every second (CONFIG SET, off again after).
    run "W4 AOF" "$bin/bench_w4_redis" --reps "$reps" --port "$redis_port" --aof everysec \
      ${FLUX_BENCH_W4_ARGS:-}
  fi
  if wants W5; then
    ensure_redis
    run W5 "$bin/bench_w5_resume" --reps "$reps" --port "$redis_port" ${FLUX_BENCH_W5_ARGS:-}
  fi
  # W6 starts (and always stops) its own worker processes on loopback; Flux's find each other
  # and keep history in the private redis-server.
  if wants W6; then
    ensure_redis
    run W6 "$bin/bench_w6_cluster" --reps "$reps" --port "$redis_port" ${FLUX_BENCH_W6_ARGS:-}
  fi
  wants C1 && run C1 "$bin/bench_compose" --reps "$reps" ${FLUX_BENCH_C1_ARGS:-}
  true
}

echo >&2
"$bin/bench_report" "$out_jsonl" "$out_json"
echo >&2
echo "== raw results: $out_jsonl; summary: $out_json" >&2
if ((${#failed[@]})); then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
