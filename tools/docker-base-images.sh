#!/usr/bin/env bash
# Seeds the base images the Dockerfile builds on — debian:bookworm and debian:bookworm-slim —
# into the local Docker engine when they are missing, without any container registry:
# `debootstrap` builds a minimal bookworm root file system from the Debian mirror this
# machine's apt already uses, and `docker import` tags it. Both tags get the same rootfs
# (minbase, ~200 MB): "slim" here only names the stage the Dockerfile runs in, whose size is
# kept down by installing only the runtime libraries.
#
# A machine that can pull from Docker Hub does not need this (it does nothing when the tags
# exist). Run as root (debootstrap and docker need it). Takes ~30 s on a 2-core machine.
#
#   tools/docker-base-images.sh [--force]    # --force: rebuild even if the tags exist
set -euo pipefail

images=(debian:bookworm debian:bookworm-slim)
force=0
[[ ${1:-} == --force ]] && force=1

command -v docker >/dev/null || { echo "docker-base-images: no docker command" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "docker-base-images: no Docker engine answers (docker info)" >&2; exit 1; }

missing=()
for image in "${images[@]}"; do
  if ((force)) || ! docker image inspect "$image" >/dev/null 2>&1; then missing+=("$image"); fi
done
if ((${#missing[@]} == 0)); then
  echo "docker-base-images: ${images[*]} present"
  exit 0
fi

command -v debootstrap >/dev/null || {
  echo "docker-base-images: debootstrap is not installed (tools/install-deps.sh --test installs it)" >&2
  exit 1
}

# The mirror apt uses here: the first URI of a bookworm "deb" entry, in deb822 sources
# (/etc/apt/sources.list.d/*.sources) or the one-line format (/etc/apt/sources.list*).
mirror=${FLUX_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ {print $2}' | grep -v -- '-security' | head -n1 || true)
fi
if [[ -z $mirror ]]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" && $3 ~ /^bookworm$/ {print ($2 ~ /^\[/ ? $3 : $2)}' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

rootfs=$(mktemp -d /tmp/flux-bookworm-rootfs-XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "docker-base-images: debootstrap bookworm (minbase) from $mirror"
start=$SECONDS
if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
  tail -n 20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  echo "docker-base-images: debootstrap failed (mirror $mirror)" >&2
  exit 1
fi
rm -f "$rootfs.log"
# apt inside the image uses the same mirror, with the security suite when the host has one.
if grep -qs -- 'debian-security' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; then
  security=${mirror%/debian}/debian-security
  echo "deb $security bookworm-security main" >>"$rootfs/etc/apt/sources.list"
fi
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

# One import, then the other tags point at the same image.
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "${missing[0]}" >/dev/null
for image in "${missing[@]:1}"; do docker tag "${missing[0]}" "$image"; done
echo "docker-base-images: imported ${missing[*]}"
echo "docker-base-images: done in $((SECONDS - start)) s"
