#!/usr/bin/env bash
# Where the time goes: runs W3 (Flux side only, memory store) under callgrind twice —
# with 0 and with N measured runs after the same warm-up — and prints the inclusive
# instruction counts per run of the costliest functions (difference of the two
# profiles / N, so start-up and warm-up cancel out). Uses the Release binaries of
# bench/run.sh (build/bench); symbols are enough for function-level costs.
#
#   ./bench/profile.sh            # W3, N = 2000
#   ./bench/profile.sh w1 100     # W1: per run of the 100-node chain (divide by 100 per node)
#
# Caveats: callgrind counts instructions (Ir), not time; it runs threads one at a time,
# so lock contention, wake-up latency and cache misses do not show, and idle CAF workers
# polling for work add instructions (most visible in the one-at-a-time W1).
# Output: build/bench/profile/<w>_{0,N}.callgrind (open with kcachegrind or callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-w3}
n=${2:-}
build=build/bench
out=$build/profile
mkdir -p "$out"
command -v valgrind >/dev/null || { echo "profile: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[[ -x $build/bench/bench_report ]] || { echo "profile: run ./bench/run.sh first (it builds $build)" >&2; exit 1; }

case $workload in
  w1) prog=bench_w1_chain; n=${n:-100}; args=(--only flux --reps 1 --warmup 10 --runs) ;;
  w3) prog=bench_w3_throughput; n=${n:-2000}; args=(--only flux --reps 1 --no-mem --warmup 200 --runs) ;;
  *) echo "profile: workload is w1 or w3" >&2; exit 2 ;;
esac

for runs in 0 "$n"; do
  echo "== callgrind: $prog ${args[*]} $runs" >&2
  valgrind --tool=callgrind --callgrind-out-file="$out/${workload}_$runs.callgrind" \
    "$build/bench/$prog" "${args[@]}" "$runs" >/dev/null 2>"$out/${workload}_$runs.log"
done

inclusive() {
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk '/^ *[0-9,]+ \( *[0-9.]+%\)  / { c = $1; gsub(",", "", c); sub(/^ *[0-9,]+ \( *[0-9.]+%\) +/, ""); print c "\t" $0 }'
}
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t { gsub(",", "", $1); t = $1 } END { print t }'; }

t0=$(total "$out/${workload}_0.callgrind")
t1=$(total "$out/${workload}_$n.callgrind")
echo
echo "Instructions per run: $(( (t1 - t0) / n )) (whole process, all threads)"
echo
echo "Inclusive instructions per run, top functions (Flux code, allocation, CAF per-resume overhead):"
join -t $'\t' -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 \
  <(inclusive "$out/${workload}_0.callgrind" | sort -t $'\t' -k2,2) \
  <(inclusive "$out/${workload}_$n.callgrind" | sort -t $'\t' -k2,2) |
  awk -F '\t' -v n="$n" '{ d = ($3 - $2) / n; if (d > 0) printf "%10.0f\t%s\n", d, $1 }' |
  sort -rn |
  grep -E 'flux::|operator new|operator delete|malloc\.c:(malloc|free)|__dynamic_cast|thread_local_aid|start_thread' |
  sed -e 's/std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >/std::string/g' |
  cut -c1-200 | head -40
