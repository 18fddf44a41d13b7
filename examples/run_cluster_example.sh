#!/usr/bin/env bash
# Runs examples/cluster.cpp as a real cluster of separate processes (ctest: example.cluster):
# a private redis-server on a free loopback port, `cluster worker` in the background, three
# `cluster run wordcount --cluster --wait` whose outputs are checked, then a `cluster driver`
# that runs a run submitted with `cluster run --submit --wait`; finally the driver and the
# worker are stopped with SIGTERM and must exit 0 (the worker after draining). Every wait is bounded; whatever was started
# is stopped on any exit (trap).
#
# With the `flux` tool (second argument), each run's history is then read back with
# `flux runs show`: the steps placed on the worker, report on the process that drove the run.
#
#   run_cluster_example.sh PATH/TO/cluster [PATH/TO/flux]
set -euo pipefail

cluster=${1:?usage: run_cluster_example.sh PATH/TO/cluster [PATH/TO/flux]}
flux=${2:-}
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli is not installed" >&2; exit 1; }

dir=$(mktemp -d /tmp/flux-cluster-example-XXXXXX)
redis_pid=
worker_pid=
driver_pid=

cleanup() {
  local status=$?
  [[ -n $worker_pid ]] && kill -KILL "$worker_pid" 2>/dev/null || true
  [[ -n $driver_pid ]] && kill -KILL "$driver_pid" 2>/dev/null || true
  [[ -n $redis_pid ]] && kill -KILL "$redis_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  if ((status != 0)); then
    for log in worker.out worker.err run.err driver.out driver.err submit.err redis.log; do
      [[ -s $dir/$log ]] && { echo "--- $log (end)"; tail -n 30 "$dir/$log"; } >&2
    done
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Polls `condition` (a command) every 0.1 s for at most $1 seconds.
wait_until() {
  local seconds=$1
  shift
  local tries=$((seconds * 10))
  until "$@"; do
    ((--tries > 0)) || return 1
    sleep 0.1
  done
}

# A private redis-server. A port picked at random may be taken: then try another. The server
# that answers must be ours (its directory is $dir), not one that already held the port.
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --logfile "$dir/redis.log" &
  redis_pid=$!
  if wait_until 5 redis-cli -p "$port" ping >/dev/null 2>&1 &&
    kill -0 "$redis_pid" 2>/dev/null &&
    redis-cli -p "$port" config get dir | grep -qxF "$dir"; then
    break
  fi
  kill -KILL "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  redis_pid=
done
store="redis://127.0.0.1:$port"

# The worker, in its own process; it prints "worker <id> serving ..." once announced.
"$cluster" worker --store "$store" --id example-worker >"$dir/worker.out" 2>"$dir/worker.err" &
worker_pid=$!
worker_up() {
  grep -q '^worker example-worker serving' "$dir/worker.out" && return 0
  kill -0 "$worker_pid" 2>/dev/null || fail "the worker exited before it announced itself"
  return 1
}
wait_until 10 worker_up || fail "the worker did not announce itself within 10 s"

expected() {
  case $1 in
  "the quick brown fox") echo '"4 words, 16 letters: the quick brown fox"' ;;
  "jumps over the lazy dog") echo '"5 words, 19 letters: jumps over the lazy dog"' ;;
  "flux runs pipelines on a cluster") echo '"6 words, 27 letters: flux runs pipelines on a cluster"' ;;
  esac
}

# `run --cluster --wait`: this process drives the run, its steps go to the worker; it prints
# the run id, then the output as JSON. FLUX_STORE is how it finds the store here.
run_ids=()
for sentence in "the quick brown fox" "jumps over the lazy dog" "flux runs pipelines on a cluster"; do
  FLUX_STORE=$store timeout 60 "$cluster" run wordcount --cluster --wait \
    --input "\"$sentence\"" >"$dir/run.out" 2>"$dir/run.err" || fail "run '$sentence' failed (exit $?)"
  cat "$dir/run.out"
  mapfile -t out <"$dir/run.out"
  [[ ${#out[@]} == 2 ]] || fail "run printed ${#out[@]} lines, not the run id and the output"
  [[ ${out[1]} == "$(expected "$sentence")" ]] || fail "run printed '${out[1]}' for '$sentence'"
  run_ids+=("${out[0]}")
done

# A driver adopts a run submitted through the store (`run --submit`) and runs it on the worker.
FLUX_STORE=$store "$cluster" driver >"$dir/driver.out" 2>"$dir/driver.err" &
driver_pid=$!
driver_up() { grep -q '^driver .* adopting wordcount (node steps on workers)$' "$dir/driver.out"; }
wait_until 10 driver_up || fail "the driver did not start within 10 s"
FLUX_STORE=$store timeout 60 "$cluster" run wordcount --submit --wait --timeout 50 \
  --input '"the quick brown fox"' >"$dir/submit.out" 2>"$dir/submit.err" ||
  fail "the submitted run failed (exit $?)"
cat "$dir/submit.out"
mapfile -t out <"$dir/submit.out"
[[ ${out[1]:-} == "$(expected "the quick brown fox")" ]] || fail "the submitted run printed '${out[1]:-}'"
run_ids+=("${out[0]}")
kill -TERM "$driver_pid"
status=0
wait "$driver_pid" || status=$?
driver_pid=
((status == 0)) || fail "the driver exited with $status after SIGTERM"

# Where each step ran, as `flux runs show` reads it from the store: SEQ STEP NODE ATTEMPT WORKER.
if [[ -n $flux ]]; then
  for id in "${run_ids[@]}"; do
    FLUX_STORE=$store "$flux" runs show "$id" >"$dir/show.out" 2>"$dir/show.err" ||
      fail "flux runs show $id failed (exit $?)"
    grep -q '^status    completed$' "$dir/show.out" || fail "flux runs show $id: not completed"
    for node in tokenize count_words count_chars; do
      grep -qE "^[0-9]+ +[0-9.]+ +$node +1 +example-worker " "$dir/show.out" ||
        { cat "$dir/show.out"; fail "run $id: $node did not run on worker example-worker"; }
    done
    grep -qE '^[0-9]+ +[0-9.]+ +report +1 +\(owner\) ' "$dir/show.out" ||
      { cat "$dir/show.out"; fail "run $id: report (a local node) did not run on its owner"; }
  done
  echo "flux runs show: tokenize, count_words, count_chars on example-worker; report on the owner"
fi

# SIGTERM: the worker drains and exits 0.
kill -TERM "$worker_pid"
for ((tries = 100; tries > 0; --tries)); do
  kill -0 "$worker_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$worker_pid" 2>/dev/null && fail "the worker did not exit within 10 s of SIGTERM"
status=0
wait "$worker_pid" || status=$?
worker_pid=
((status == 0)) || fail "the worker exited with $status after SIGTERM"
grep -q 'worker example-worker drained$' "$dir/worker.err" || fail "the worker did not say it drained"
echo "example.cluster: ${#run_ids[@]} runs on worker example-worker (one submitted to a driver); the worker drained and exited 0"
