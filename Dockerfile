# Flux's example cluster application in a container (docker-compose.yml runs it; README,
# "Local cluster with docker-compose").
#
#   docker build -t flux-example:local .            # the application (last stage)
#   docker build -t flux-redis:local --target redis .
#
# No registry needed: tools/docker-base-images.sh seeds debian:bookworm and
# debian:bookworm-slim locally (debootstrap) when they cannot be pulled. Every package comes
# from the Debian mirror the base image's apt is configured with.
#
# Stages, in this order because the classic builder builds every stage before the target:
#   redis   - redis-server on bookworm-slim, for the compose file's store
#   build   - compiles only the library, the `cluster` example and the `flux` tool (Release, no tests or
#             benchmarks) on debian:bookworm
#   runtime - bookworm-slim with only the runtime libraries, the binaries and the script that
#             makes the compose cluster's TLS certificates

FROM debian:bookworm-slim AS redis
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
USER redis
WORKDIR /data
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", \
     "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libcaf-dev capnproto libcapnp-dev libhiredis-dev libssl-dev \
      libcli11-dev nlohmann-json3-dev libcpp-httplib-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the library and the example need, so that editing tests or docs does not
# invalidate the compile layer.
COPY CMakeLists.txt ./
COPY cmake cmake
COPY schema schema
COPY include include
COPY src src
COPY examples examples
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DFLUX_BUILD_TESTS=OFF \
      -DFLUX_BUILD_BENCH=OFF -DFLUX_INSTALL=OFF >/dev/null \
 && cmake --build /build -j2 --target cluster flux_cli \
 && strip /build/examples/cluster /build/bin/flux

FROM debian:bookworm-slim AS runtime
# The shared libraries `cluster` links (ldd), and openssl for flux-compose-certs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 libcapnp-0.9.2 libhiredis0.14 libssl3 \
      libcpp-httplib0.11 openssl \
 && rm -rf /var/lib/apt/lists/*
# Never root: the certificate volume is created owned by this user (a named volume takes the
# ownership of the image's directory when it is first mounted).
RUN useradd --system --uid 10001 --home-dir /var/lib/flux --create-home flux \
 && mkdir -p /var/lib/flux/certs && chown flux:flux /var/lib/flux/certs
COPY --from=build /build/examples/cluster /build/bin/flux /usr/local/bin/
COPY tools/compose-certs.sh /usr/local/bin/flux-compose-certs
USER flux
WORKDIR /var/lib/flux
ENTRYPOINT ["/usr/local/bin/cluster"]
