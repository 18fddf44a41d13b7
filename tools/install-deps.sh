#!/usr/bin/env bash
# Installs the Debian 12 packages Flux needs to build (and, with --test, to test).
# Idempotent: does nothing when everything is already installed. Run as root.
set -euo pipefail

packages=(g++ cmake make pkg-config libcaf-dev capnproto libcapnp-dev libhiredis-dev libssl-dev
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(libgtest-dev redis-server redis-tools libbenchmark-dev iproute2 nftables openssl)
  # The compose test (tests/compose): base images made with debootstrap, docker-compose to
  # run (or, without a Docker engine, only validate) docker-compose.yml, curl to scrape the
  # metrics. No engine is installed.
  packages+=(debootstrap docker-compose curl)
  # The dashboard's browser test (tests/dashboard): headless Chromium driven over WebDriver.
  packages+=(chromium chromium-driver python3-selenium)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "flux: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
