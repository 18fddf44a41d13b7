#!/bin/sh
# Makes the TLS material of a docker-compose Flux cluster (docker-compose.yml's `certs`
# service), once: a CA dedicated to this cluster and one certificate + key that every worker
# and driver of the project presents (Flux checks that a peer's certificate is signed by the
# cluster's CA; there is no host name check, so one shared certificate is enough). The CA's
# key is deleted once the certificate is signed: nothing else can join later.
#
#   flux-compose-certs DIR     # writes DIR/ca.crt, DIR/node.crt, DIR/node.key (mode 600)
#
# Does nothing when DIR/node.crt already exists (the volume outlives `docker compose down`
# without -v). Prints no key material.
set -eu
dir=${1:?usage: flux-compose-certs DIR}
if [ -s "$dir/node.crt" ] && [ -s "$dir/node.key" ] && [ -s "$dir/ca.crt" ]; then
  echo "flux-compose-certs: $dir already holds the cluster's certificates"
  exit 0
fi
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
openssl req -x509 -new $ec -keyout ca.key -out ca.crt -days 3650 \
  -subj "/CN=flux-compose-cluster-ca" 2>/dev/null
openssl req -new $ec -keyout node.key -out node.csr -subj "/CN=flux-compose-node" 2>/dev/null
printf 'extendedKeyUsage=serverAuth,clientAuth\n' >node.ext
openssl x509 -req -in node.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out node.crt \
  -days 825 -extfile node.ext 2>/dev/null
cp ca.crt node.crt node.key "$dir/"
chmod 644 "$dir/ca.crt" "$dir/node.crt"
chmod 600 "$dir/node.key"
echo "flux-compose-certs: made a cluster CA and a node certificate in $dir (CA key discarded)"
