#!/usr/bin/env bash
# The docker-compose local cluster, for real (ctest: compose.cluster, label `docker`).
#
# With a Docker engine (`docker info` answers):
#   1. seeds debian:bookworm and debian:bookworm-slim locally (tools/docker-base-images.sh:
#      debootstrap + docker import; no registry is reachable here);
#   2. builds the images from the repository's Dockerfile (flux-redis:local, flux-example:local)
#      and prints how long that took;
#   3. brings the repository's docker-compose.yml up under a project name of its own with 3
#      workers, then the driver, and submits 12 runs at once (`cluster run --submit --wait`);
#   4. while steps are in flight, `docker kill`s one worker container and `docker network
#      disconnect`s another from the project's network;
#   5. checks that every run completed with the right output and that its history
#      (`flux runs show --json`) shows, for each of the two workers, a step recorded as lost
#      ("was lost") and the same step completed as a later attempt on another worker;
#   6. scrapes the surviving worker's Prometheus metrics with curl through the port Docker
#      published on 127.0.0.1, and checks its capacity and the steps it executed;
#   7. `down -v` (containers, network, volumes), also when anything failed (trap).
# Without an engine it validates docker-compose.yml with `docker-compose config` and says,
# on stdout, that the cluster was NOT run.
#
# What it does differently from a user's `docker compose up --scale worker=3`:
#   - FLUX_EXAMPLE_STEP_MS=1000: every worker step takes 1 s, so that steps are in flight
#     when a worker is killed (users leave it at 0);
#   - the driver is started after the workers announced themselves (`up -d driver`), not
#     together with them, and the images are built with `docker build` before `up --no-build`;
#   - `down -v --timeout 10`: the disconnected worker cannot reach Redis to drain, so the
#     35 s stop_grace_period is not waited for.
# Every wait is bounded.
#
#   run_compose_test.sh SOURCE_DIR
set -euo pipefail

src=${1:?usage: run_compose_test.sh SOURCE_DIR}
cd "$src"
test_start=$SECONDS

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  echo "FAIL: neither 'docker compose' nor 'docker-compose' is installed (Debian: docker-compose)" >&2
  exit 1
fi

if ! command -v docker >/dev/null || ! timeout 20 docker info >/dev/null 2>&1; then
  "${compose[@]}" -f docker-compose.yml config -q ||
    { echo "FAIL: '${compose[*]} config' rejected docker-compose.yml" >&2; exit 1; }
  echo "compose.cluster: NO DOCKER ENGINE on this machine (docker info does not answer):"
  echo "  docker-compose.yml was only validated with '${compose[*]} config'; the cluster was NOT"
  echo "  built, started or tested."
  exit 0
fi

project=fluxtest$$x$RANDOM
export COMPOSE_PROJECT_NAME=$project
export FLUX_EXAMPLE_STEP_MS=1000
dc() { timeout "${DC_TIMEOUT:-120}" "${compose[@]}" -f docker-compose.yml -p "$project" "$@"; }
logs=$(mktemp -d /tmp/flux-compose-test-XXXXXX)

cleanup() {
  local status=$?
  if ((status != 0)); then
    dc ps -a >&2 || true
    dc logs --no-color --tail 40 >&2 || true
  fi
  # Bounded: the disconnected worker cannot drain (Redis is out of its reach).
  local down_start=$SECONDS
  DC_TIMEOUT=180 dc down -v --remove-orphans --timeout 10 >"$logs/down.log" 2>&1 ||
    { echo "compose.cluster: 'down -v' failed:" >&2; cat "$logs/down.log" >&2; }
  echo "compose.cluster: down -v took $((SECONDS - down_start)) s; $((SECONDS - test_start)) s in all"
  rm -rf "$logs"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Polls `condition` (a command) every 0.5 s for at most $1 seconds.
wait_until() {
  local tries=$(($1 * 2))
  shift
  until "$@"; do
    ((--tries > 0)) || return 1
    sleep 0.5
  done
}

# 1. Base images.
timeout 900 ./tools/docker-base-images.sh || fail "could not seed the base images"

# 2. The images, from the Dockerfile (the classic builder: this machine has no buildx).
build_start=$SECONDS
for target in redis runtime; do
  tag=$([[ $target == redis ]] && echo flux-redis:local || echo flux-example:local)
  DOCKER_BUILDKIT=0 timeout 2400 docker build --target "$target" -t "$tag" . >"$logs/build-$target.log" 2>&1 ||
    { tail -n 40 "$logs/build-$target.log" >&2; fail "docker build --target $target failed"; }
done
echo "compose.cluster: images built in $((SECONDS - build_start)) s"

# 3. Redis (healthy), the certificates, 3 workers; then the driver.
dc up -d --no-build --scale worker=3 redis certs worker >"$logs/up.log" 2>&1 ||
  { cat "$logs/up.log" >&2; fail "up -d --scale worker=3 failed"; }
mapfile -t workers < <(dc ps -q worker)
((${#workers[@]} == 3)) || fail "expected 3 worker containers, got ${#workers[@]}"
all_announced() {
  local c
  for c in "${workers[@]}"; do docker logs "$c" 2>/dev/null | grep -q '^worker .* serving' || return 1; done
}
wait_until 60 all_announced || fail "the 3 workers did not all announce themselves within 60 s"
worker_id() { docker logs "$1" 2>/dev/null | sed -n 's/^worker \([^ ]*\) serving.*/\1/p' | head -n1; }
killed=${workers[0]} cut=${workers[1]} survivor=${workers[2]}
killed_id=$(worker_id "$killed") cut_id=$(worker_id "$cut") survivor_id=$(worker_id "$survivor")
echo "compose.cluster: workers $(for c in "${workers[@]}"; do printf '%s ' "$(worker_id "$c")"; done)"

dc up -d --no-build --no-deps driver >>"$logs/up.log" 2>&1 || { cat "$logs/up.log" >&2; fail "up -d driver failed"; }
driver=$(dc ps -q driver)
[[ -n $driver ]] || fail "no driver container"
adopting() { docker logs "$driver" 2>/dev/null | grep -q '^driver .* adopting wordcount'; }
wait_until 60 adopting || fail "the driver did not say it adopts wordcount within 60 s"

# 12 runs submitted at once (`cluster run --submit --wait` in the driver's container, as a user
# would with `docker compose exec driver ...`); the driver adopts and runs them.
sentences=("the quick brown fox" "jumps over the lazy dog" "flux runs pipelines on a cluster")
expected=("4 words, 16 letters: the quick brown fox" "5 words, 19 letters: jumps over the lazy dog"
  "6 words, 27 letters: flux runs pipelines on a cluster")
clients=()
for i in $(seq 0 11); do
  timeout 180 docker exec "$driver" cluster run wordcount --input "\"${sentences[i % 3]}\"" \
    --submit --wait >"$logs/run$i.out" 2>"$logs/run$i.err" &
  clients+=($!)
done
submitted() {
  local i
  for i in $(seq 0 11); do [[ -s $logs/run$i.out ]] || return 1; done
}
wait_until 60 submitted || fail "the 12 runs were not all submitted within 60 s"

# 4. Steps take 1 s and 36 of them share 6 slots; the driver adopts within its 1 s interval.
sleep 2
docker kill "$killed" >/dev/null || fail "docker kill $killed failed"
echo "compose.cluster: killed worker $killed_id"
network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$cut" | awk '{print $1}')
docker network disconnect "$network" "$cut" || fail "docker network disconnect $network $cut failed"
echo "compose.cluster: disconnected worker $cut_id from $network"

# 5. Every run completes with the right output, and the history shows both re-dispatches.
for i in $(seq 0 11); do
  status=0
  wait "${clients[i]}" || status=$?
  run_id=$(head -n1 "$logs/run$i.out")
  output=$(sed -n 2p "$logs/run$i.out")
  [[ $status == 0 && $output == "\"${expected[i % 3]}\"" ]] ||
    { cat "$logs/run$i.err" >&2; fail "run $i ($run_id) exited $status with output '$output'"; }
  echo "compose.cluster: run $run_id: $output"
  docker exec "$driver" flux runs show "$run_id" --json >"$logs/show$i.json" ||
    fail "flux runs show $run_id failed"
done
echo "--- the driver's stderr"
docker logs "$driver" 2>&1 >/dev/null | tail -n 20

# For worker $1: a step recorded as lost on it (attempt k, "was lost") of which a later
# attempt (k+1, or more if that one was lost too) completed on another worker; prints "run
# step node attempt on worker" for each.
redispatched() {
  python3 - "$1" "$logs"/show*.json <<'PY'
import json, sys
lost_worker, found = sys.argv[1], False
for path in sys.argv[2:]:
    doc = json.load(open(path))
    history = doc["history"]
    for e in history:
        if e["worker"] == lost_worker and e["status"] == "failed" and "was lost" in (e["error"] or ""):
            for n in history:
                if (n["step"] == e["step"] and n["attempt"] > e["attempt"]
                        and n["status"] == "ok" and n["worker"] not in (None, lost_worker)):
                    print(doc["run"]["id"], n["step"], n["node"], "attempt", n["attempt"], "on", n["worker"])
                    found = True
sys.exit(0 if found else 1)
PY
}
moved=$(redispatched "$killed_id") || fail "no step lost on the killed worker $killed_id completed on another worker"
echo "compose.cluster: the killed worker's steps, placed again: $(echo "$moved" | head -n3 | tr '\n' ';')"
moved=$(redispatched "$cut_id") ||
  fail "no step lost on the disconnected worker $cut_id completed on another worker"
echo "compose.cluster: the disconnected worker's steps, placed again: $(echo "$moved" | head -n3 | tr '\n' ';')"

# 6. The survivor's metrics, from the host, as Prometheus would scrape them.
published=$(docker port "$survivor" 9464/tcp | head -n1)
[[ $published == 127.0.0.1:* ]] || fail "the metrics port is published on '$published', not on 127.0.0.1"
timeout 10 curl -sSf "http://$published/metrics" >"$logs/metrics.txt" ||
  fail "GET http://$published/metrics failed"
metric() { awk -v series="$1" '$1 == series {print $2}' "$logs/metrics.txt"; }
grep -qx '# TYPE flux_worker_capacity gauge' "$logs/metrics.txt" || fail "no TYPE line for flux_worker_capacity"
grep -qx '# TYPE flux_worker_step_duration_seconds histogram' "$logs/metrics.txt" ||
  fail "no TYPE line for flux_worker_step_duration_seconds"
capacity=$(metric "flux_worker_capacity{worker=\"$survivor_id\"}")
((${capacity:-0} >= 1)) || fail "flux_worker_capacity of $survivor_id is '$capacity' (one per core expected)"
[[ $(metric "flux_worker_steps_in_flight{worker=\"$survivor_id\"}") == 0 ]] || fail "the survivor still reports steps in flight"
executed=0
for node in tokenize count_words count_chars; do
  n=$(metric "flux_worker_step_duration_seconds_count{node=\"$node\"}")
  ((${n:-0} >= 1)) || fail "the survivor's metrics show no $node step executed"
  executed=$((executed + n))
done
echo "compose.cluster: the survivor's metrics (http://$published/metrics): capacity $capacity, $executed steps executed"
echo "compose.cluster: passed in $((SECONDS - test_start)) s (12 runs on 3 workers, one killed, one cut off)"
