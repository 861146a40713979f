#!/usr/bin/env bash
# Smoke test of the Docker cluster, end to end:
#   build (docker/build.sh) -> compose down -v -> up -d -> 5 healthy ->
#   put/get from the host -> kill -s KILL one node -> put with 4 nodes ->
#   docker start it -> healthy again, same data volume, get through it ->
#   compose down -v.
#
#   bash docker/smoke.sh
#
# Exit codes: 0 passed, 1 a step failed (it says which, with the containers'
# logs), 3 the Docker engine does not answer.
# Environment: SKIP_BUILD=1 uses the image and binary already built;
# KEEP=1 leaves the cluster up afterwards; COMPOSE overrides the compose
# command (default: `docker compose` if present, else `docker-compose`);
# HEALTH_TIMEOUT seconds to wait for health (default 120); VICTIM the node
# to kill (default n3).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
HEALTH_TIMEOUT=${HEALTH_TIMEOUT:-120}
VICTIM=${VICTIM:-n3}
NODES=(n1 n2 n3 n4 n5)
BIN=target/x86_64-unknown-linux-gnu/release/gpaxos-node
CLUSTER=n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003,n4=127.0.0.1:7004,n5=127.0.0.1:7005
start=$(date +%s)
step="starting"

say() { echo "==> [smoke $(( $(date +%s) - start ))s] $*"; }

unavailable() {
    echo "##########################################################" >&2
    echo "## DOCKER IS UNAVAILABLE: the Docker engine does not     ##" >&2
    echo "## answer (docker info failed). The Docker smoke test    ##" >&2
    echo "## did not run.                                          ##" >&2
    echo "##########################################################" >&2
    exit 3
}

if ! command -v docker >/dev/null 2>&1 || ! timeout 20 docker info >/dev/null 2>&1; then
    unavailable
fi

if [ -n "${COMPOSE:-}" ]; then
    read -r -a compose <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    echo "smoke: FAILED: neither \`docker compose\` nor \`docker-compose\` is installed" >&2
    exit 1
fi

# shellcheck disable=SC2317  # diagnose and finish run from the EXIT trap
diagnose() {
    docker ps -a --format '{{.Names}}' | grep -q '^gpaxos-n' || return 0
    echo "---- ${compose[*]} ps" >&2
    "${compose[@]}" ps >&2 2>&1 || true
    for n in "${NODES[@]}"; do
        echo "---- gpaxos-$n: health" >&2
        docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}} {{range .State.Health.Log}}[{{.ExitCode}}: {{.Output}}]{{end}}{{end}}' \
            "gpaxos-$n" >&2 2>&1 || true
        echo "---- gpaxos-$n: last log lines" >&2
        docker logs --tail 30 "gpaxos-$n" >&2 2>&1 || true
    done
}

# shellcheck disable=SC2317
finish() {
    local rc=$?
    trap - EXIT
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        echo "smoke: FAILED at: $step" >&2
        diagnose
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        say "KEEP=1: leaving the cluster up (${compose[*]} down -v removes it)"
    else
        say "${compose[*]} down -v"
        "${compose[@]}" down -v >/dev/null 2>&1 ||
            echo "smoke: warning: ${compose[*]} down -v failed" >&2
    fi
    if [ "$rc" -eq 0 ]; then
        say "PASSED in $(( $(date +%s) - start ))s"
    fi
    exit "$rc"
}

fail() {
    echo "smoke: FAILED: $*" >&2
    exit 1
}

# client ARGS...: runs one client command from the host, bounded in time.
client() {
    timeout 60 "$BIN" client --cluster "$CLUSTER" --tls docker/tls "$@"
}

health() { docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "gpaxos-$1" 2>/dev/null; }

# wait_healthy NODE...: waits until every NODE's healthcheck passes.
wait_healthy() {
    local deadline=$(( $(date +%s) + HEALTH_TIMEOUT )) n s pending
    while :; do
        pending=""
        for n in "$@"; do
            s=$(health "$n")
            [ "$s" = healthy ] || pending="$pending $n($s)"
        done
        [ -z "$pending" ] && return 0
        [ "$(date +%s)" -ge "$deadline" ] &&
            fail "not healthy after ${HEALTH_TIMEOUT}s:$pending"
        sleep 1
    done
}

# expect WHAT WANT ARGS...: runs a client command and checks its output.
expect() {
    local what=$1 want=$2 got
    shift 2
    step=$what
    got=$(client "$@") || fail "$what: the client failed (exit $?): $got"
    [ "$got" = "$want" ] || fail "$what: expected \"$want\", got \"$got\""
    say "$what -> $got"
}

trap finish EXIT

step="build (docker/build.sh)"
if [ "${SKIP_BUILD:-0}" = 1 ]; then
    say "SKIP_BUILD=1: using the built image and binary"
else
    say "bash docker/build.sh"
    bash docker/build.sh
    rc=$?
    [ "$rc" -eq 3 ] && unavailable
    [ "$rc" -eq 0 ] || fail "docker/build.sh exited $rc"
fi
[ -x "$BIN" ] || fail "$BIN is missing (run bash docker/build.sh)"
[ -f docker/tls/ca.pem ] || fail "docker/tls/ca.pem is missing (run bash docker/build.sh)"
[ -f docker/ca/ca.key ] || fail "docker/ca/ca.key is missing (run bash docker/build.sh)"
[ ! -e docker/tls/ca.key ] || fail "docker/tls holds the CA key (old layout: rm -rf docker/tls and run bash docker/build.sh)"
docker image inspect gpaxos-node:latest >/dev/null 2>&1 ||
    fail "the image gpaxos-node:latest is missing (run bash docker/build.sh)"

step="${compose[*]} down -v (a clean start)"
"${compose[@]}" down -v >/dev/null 2>&1 || true
for n in "${NODES[@]}"; do
    if docker inspect "gpaxos-$n" >/dev/null 2>&1; then
        say "removing a leftover container gpaxos-$n"
        docker rm -f "gpaxos-$n" >/dev/null || fail "cannot remove gpaxos-$n"
    fi
done

step="${compose[*]} up -d"
say "${compose[*]} up -d"
"${compose[@]}" up -d || fail "${compose[*]} up -d"

step="waiting for 5 healthy nodes"
wait_healthy "${NODES[@]}"
say "all 5 nodes healthy"

# Each container mounts its own key material and nothing else: /tls is
# docker/tls/<node>, holding no CA key and no other node's key.
step="each node holds only its own key material"
for n in "${NODES[@]}"; do
    src=$(docker inspect -f '{{range .Mounts}}{{if eq .Destination "/tls"}}{{.Source}}{{end}}{{end}}' "gpaxos-$n")
    [ "$src" = "$root/docker/tls/$n" ] || fail "gpaxos-$n mounts $src at /tls, not $root/docker/tls/$n"
    have=$(cd "$src" && ls | sort | tr '\n' ' ')
    [ "$have" = "ca.pem $n.key $n.pem " ] || fail "gpaxos-$n's /tls holds: $have"
    mounts=$(docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' "gpaxos-$n")
    case "$mounts" in *docker/ca*) fail "gpaxos-$n mounts the CA directory: $mounts" ;; esac
done
say "each node mounts only docker/tls/<node> (ca.pem, <node>.pem, <node>.key)"

key="smoke-$$-$start"
expect "put $key v1" ok put "$key" v1
expect "get $key" v1 get "$key"
for n in "${NODES[@]}"; do
    expect "get $key via $n" v1 --node "$n" get "$key"
done

step="kill -s KILL gpaxos-$VICTIM"
volume() {
    docker inspect -f '{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}' "gpaxos-$1"
}
vol_before=$(volume "$VICTIM")
[ -n "$vol_before" ] || fail "gpaxos-$VICTIM has no volume at /data"
docker kill -s KILL "gpaxos-$VICTIM" >/dev/null || fail "docker kill -s KILL gpaxos-$VICTIM"
say "killed gpaxos-$VICTIM"
expect "put $key v2 with $VICTIM down" ok put "$key" v2
expect "get $key with $VICTIM down" v2 get "$key"

step="docker start gpaxos-$VICTIM"
docker start "gpaxos-$VICTIM" >/dev/null || fail "docker start gpaxos-$VICTIM"
wait_healthy "$VICTIM"
say "gpaxos-$VICTIM restarted and healthy"
vol_after=$(volume "$VICTIM")
[ "$vol_after" = "$vol_before" ] ||
    fail "gpaxos-$VICTIM's data volume changed: $vol_before -> $vol_after"
say "gpaxos-$VICTIM kept its data volume $vol_after"
docker logs "gpaxos-$VICTIM" 2>&1 | grep -i 'recovered' | tail -1 | sed 's/^/    /'
expect "get $key via $VICTIM after its restart" v2 --node "$VICTIM" get "$key"
step="status of $VICTIM"
out=$(client --node "$VICTIM" status) || fail "client status via $VICTIM: $out"
echo "    ${out%%$'\n'*}"

step="done"
exit 0
