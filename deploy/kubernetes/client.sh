#!/usr/bin/env bash
# Runs `gpaxos-node client` against the cluster of this directory.
#
#   bash deploy/kubernetes/client.sh nodeport [--host ADDR] OP...
#       from this machine, through nodeports.yaml's ports (UDP
#       ADDR:30701..30705 are n1..n5); ADDR defaults to the first cluster
#       machine's InternalIP. Uses the client certificate in
#       deploy/kubernetes/tls (made by make-secrets.sh).
#   bash deploy/kubernetes/client.sh pod OP...
#       from a short-lived pod in the cluster (image gpaxos-node:latest,
#       Secret gpaxos-client-tls mounted at /tls), through the headless
#       Service's names gpaxos-nK-0.gpaxos:7000.
#   bash deploy/kubernetes/client.sh cluster nodeport|pod [--host ADDR]
#       prints the --cluster value either way uses, for other tools built
#       on the node's client library.
#
# OP is what `gpaxos-node client` takes: put k v, get k, cas k from to,
# append k v, transfer a b n, balances a,b, --node n3 status, learned.
# (`kubectl port-forward` is no way in: it forwards TCP, and the nodes
# speak QUIC over UDP.)
#
# Environment: NAMESPACE (kubectl's namespace), IMAGE (default
# gpaxos-node:latest), PORT_BASE (default 30700: node K at PORT_BASE+K),
# BIN (default $CARGO_TARGET_DIR or target, then release/gpaxos-node),
# TLS (default deploy/kubernetes/tls), NODES (default 5).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
IMAGE=${IMAGE:-gpaxos-node:latest}
PORT_BASE=${PORT_BASE:-30700}
BIN=${BIN:-${CARGO_TARGET_DIR:-$root/target}/release/gpaxos-node}
TLS=${TLS:-$here/tls}
NODES=${NODES:-5}
ns=()
[ -n "${NAMESPACE:-}" ] && ns=(--namespace "$NAMESPACE")

die() { echo "client.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# cluster_flag MODE HOST: the --cluster value.
cluster_flag() {
    local mode=$1 host=$2 k parts=()
    for k in $(seq 1 "$NODES"); do
        case "$mode" in
            nodeport) parts+=("n$k=$host:$((PORT_BASE + k))") ;;
            pod) parts+=("n$k=gpaxos-n$k-0.gpaxos:7000") ;;
        esac
    done
    (IFS=,; echo "${parts[*]}")
}

machine_address() {
    command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed (give --host ADDR)"
    kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}'
}

# pod_json NAME OP...: the client pod, as JSON (kubectl run --overrides).
pod_json() {
    local name=$1 a json_args=""
    shift
    for a in client --cluster "$(cluster_flag pod "")" --tls /tls "$@"; do
        a=${a//\\/\\\\}
        a=${a//\"/\\\"}
        json_args+="\"$a\","
    done
    cat <<JSON
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "$name", "labels": {"app.kubernetes.io/part-of": "gpaxos"}}, "spec": {
  "automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532},
  "containers": [{
    "name": "$name", "image": "$IMAGE", "imagePullPolicy": "IfNotPresent",
    "args": [${json_args%,}],
    "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true}]
  }],
  "volumes": [{"name": "tls", "secret": {"secretName": "gpaxos-client-tls", "defaultMode": 288,
    "items": [{"key": "ca.crt", "path": "ca.pem"}, {"key": "tls.crt", "path": "client.pem"},
              {"key": "tls.key", "path": "client.key"}]}}]
}}
JSON
}

[ $# -ge 1 ] || { usage; exit 2; }
mode=$1
shift
case "$mode" in
    -h|--help) usage; exit 0 ;;
    cluster)
        [ $# -ge 1 ] || die "cluster nodeport|pod [--host ADDR]"
        kind=$1; shift
        host=""
        if [ "${1:-}" = --host ]; then host=$2; shift 2; fi
        case "$kind" in
            nodeport) [ -n "$host" ] || host=$(machine_address); cluster_flag nodeport "$host" ;;
            pod) cluster_flag pod "" ;;
            *) die "cluster: nodeport or pod, not $kind" ;;
        esac
        ;;
    nodeport)
        host=""
        if [ "${1:-}" = --host ]; then host=$2; shift 2; fi
        [ $# -ge 1 ] || die "no client operation given (put k v, get k, status, ...)"
        [ -n "$host" ] || host=$(machine_address)
        [ -n "$host" ] || die "no machine address found (give --host ADDR)"
        [ -x "$BIN" ] || die "$BIN is missing (cargo build --release -p gpaxos-node)"
        [ -f "$TLS/client.pem" ] || die "$TLS/client.pem is missing (run make-secrets.sh)"
        exec "$BIN" client --cluster "$(cluster_flag nodeport "$host")" --tls "$TLS" "$@"
        ;;
    pod)
        [ $# -ge 1 ] || die "no client operation given (put k v, get k, status, ...)"
        command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed"
        name="gpaxos-client-$$"
        overrides=$(pod_json "$name" "$@")
        exec kubectl "${ns[@]}" run "$name" --rm -i --quiet --restart=Never \
            --image "$IMAGE" --overrides "$overrides"
        ;;
    pod-manifest)
        # The client pod of `pod` as a whole manifest (check.sh validates it).
        pod_json gpaxos-client "$@"
        ;;
    *) usage; exit 2 ;;
esac
