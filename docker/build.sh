#!/usr/bin/env bash
# Builds a statically linked gpaxos-node, the FROM scratch image
# gpaxos-node:latest around it, and (once, if absent) the cluster
# certificates: docker/tls/nK for node nK (docker-compose.yml mounts only
# that directory, read-only, into nK), docker/tls/client.* for clients on
# the host, and the CA's key in docker/ca, which no container mounts.
#
#   bash docker/build.sh
#
# Environment: IMAGE (default gpaxos-node:latest), CARGO_BUILD_JOBS
# (default 2). Nothing is pulled from a registry. Exits 3 if the Docker
# engine does not answer.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
IMAGE=${IMAGE:-gpaxos-node:latest}
TRIPLE=x86_64-unknown-linux-gnu
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}

if ! timeout 20 docker info >/dev/null 2>&1; then
    echo "########################################################" >&2
    echo "## docker/build.sh: the Docker engine does not answer ##" >&2
    echo "## (docker info failed); no image was built.          ##" >&2
    echo "########################################################" >&2
    exit 3
fi

# The explicit --target keeps proc-macros and build scripts dynamically
# linked (RUSTFLAGS then apply to the target only) and puts the artifacts in
# target/$TRIPLE, away from the normal build's.
echo "==> cargo build --release --target $TRIPLE -p gpaxos-node (static, $CARGO_BUILD_JOBS jobs)"
RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --target "$TRIPLE" -p gpaxos-node --bin gpaxos-node
bin=target/$TRIPLE/release/gpaxos-node
# A static binary has no program interpreter (ld.so) and needs no library.
if readelf -lW "$bin" | grep -q 'Requesting program interpreter' ||
    readelf -dW "$bin" | grep -q '(NEEDED)'; then
    echo "error: $bin is dynamically linked:" >&2
    readelf -dW "$bin" | grep '(NEEDED)' >&2 || true
    exit 1
fi

# The build context is a directory holding only the binary, so the daemon is
# not sent the whole target directory. Debug info is stripped (symbols stay,
# so backtraces still name functions).
ctx=target/docker-context
rm -rf "$ctx"
mkdir -p "$ctx"
strip --strip-debug -o "$ctx/gpaxos-node" "$bin"
echo "==> docker build -t $IMAGE"
docker build -t "$IMAGE" -f docker/Dockerfile "$ctx"

if [ -f docker/tls/ca.key ]; then
    # The old layout kept the CA's key beside the node keys, in the
    # directory every container mounted: replace it.
    echo "==> docker/tls holds the CA key (old layout); making new certificates"
    rm -rf docker/tls
fi
if [ ! -f docker/tls/n1/n1.pem ]; then
    echo "==> cluster certificates -> docker/tls (one directory per node), CA key -> docker/ca"
    "$bin" certs --out docker/tls --ca-dir docker/ca --nodes n1,n2,n3,n4,n5
else
    echo "==> docker/tls exists; keeping its certificates (renew: $bin certs --renew --out docker/tls --ca-dir docker/ca)"
fi
docker image ls "$IMAGE"
