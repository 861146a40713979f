#!/usr/bin/env bash
# Makes the cluster's certificates with `gpaxos-node certs` (once; kept
# afterwards) and one Kubernetes Secret per node, plus one for clients:
#
#   Secret gpaxos-tls-nK (type kubernetes.io/tls), for node nK only:
#     tls.crt  nK's certificate (its name nK in the CN and SAN)
#     tls.key  nK's key
#     ca.crt   the cluster CA's certificate
#   Secret gpaxos-client-tls (type kubernetes.io/tls), for client pods:
#     tls.crt, tls.key  the client certificate and key; ca.crt the CA
#
# The StatefulSet of node nK mounts gpaxos-tls-nK at /tls with the keys
# renamed to the files the node reads (ca.pem, nK.pem, nK.key). The CA's
# key is never put in a Secret: it stays in the CA directory, for renewals.
# (The kubernetes.io/tls layout is also what cert-manager writes, so a
# cert-manager Certificate with commonName nK and dnsNames [nK] from a CA
# Issuer can replace this script.)
#
#   bash deploy/kubernetes/make-secrets.sh [options]
#
#   --bin PATH      gpaxos-node (default: $CARGO_TARGET_DIR or target, then
#                   release/gpaxos-node; built with cargo if missing)
#   --tls DIR       the certificates (certs --out; default
#                   deploy/kubernetes/tls), made if DIR/ca.pem is missing
#   --ca-dir DIR    the CA's certificate and key (default deploy/kubernetes/ca)
#   --out DIR       where the Secret manifests are written (default
#                   deploy/kubernetes/secrets; files mode 0600)
#   --nodes LIST    node names (default n1,n2,n3,n4,n5)
#   --renew         issue fresh certificates from the existing CA, keeping
#                   the keys (certs --renew); then apply and restart the
#                   nodes one at a time (kubectl rollout restart statefulset/gpaxos-nK)
#   --namespace NS  apply into NS (default: kubectl's current namespace)
#   --no-apply      only write the manifests (no kubectl, no cluster needed)
#
# Without --no-apply, the Secrets are applied with `kubectl apply -f OUT`.
# The tls, ca and secrets directories are in .gitignore: never commit them.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=""
tls="$here/tls"
ca_dir="$here/ca"
out="$here/secrets"
nodes="n1,n2,n3,n4,n5"
renew=0
apply=1
namespace=""

die() { echo "make-secrets.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --tls) tls=$2; shift 2 ;;
        --ca-dir) ca_dir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --nodes) nodes=$2; shift 2 ;;
        --renew) renew=1; shift ;;
        --namespace|-n) namespace=$2; shift 2 ;;
        --no-apply) apply=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

if [ -z "$bin" ]; then
    target=${CARGO_TARGET_DIR:-$root/target}
    bin="$target/release/gpaxos-node"
    if [ ! -x "$bin" ]; then
        echo "==> $bin is missing: cargo build --release -p gpaxos-node" >&2
        (cd "$root" && cargo build --release -p gpaxos-node --bin gpaxos-node) ||
            die "cannot build gpaxos-node"
    fi
fi
[ -x "$bin" ] || die "$bin is not an executable gpaxos-node"
if [ "$apply" = 1 ]; then
    command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed (use --no-apply to only write the manifests)"
fi

IFS=, read -r -a names <<<"$nodes"
[ "${#names[@]}" -gt 0 ] || die "--nodes names no node"

if [ "$renew" = 1 ]; then
    [ -f "$ca_dir/ca.key" ] || die "--renew: no CA key in $ca_dir"
    "$bin" certs --renew --out "$tls" --ca-dir "$ca_dir" --nodes "$nodes" >&2
elif [ ! -f "$tls/ca.pem" ]; then
    "$bin" certs --out "$tls" --ca-dir "$ca_dir" --nodes "$nodes" >&2
else
    echo "==> $tls exists; keeping its certificates (--renew issues fresh ones)" >&2
fi
for n in "${names[@]}"; do
    for f in "$tls/$n/ca.pem" "$tls/$n/$n.pem" "$tls/$n/$n.key"; do
        [ -f "$f" ] || die "$f is missing (certificates made for other nodes? remove $tls and $ca_dir to start again)"
    done
done
for f in "$tls/ca.pem" "$tls/client.pem" "$tls/client.key"; do
    [ -f "$f" ] || die "$f is missing"
done
# No node directory may hold the CA key.
if find "$tls" -name 'ca.key' | grep -q .; then
    die "$tls holds a CA key (ca.key): keep it apart (--ca-dir) and make the certificates again"
fi

b64() { base64 -w0 <"$1"; }

# secret NAME CERT KEY CA: a kubernetes.io/tls Secret manifest on stdout.
secret() {
    cat <<YAML
# Made by deploy/kubernetes/make-secrets.sh from gpaxos-node certs. Holds a key: never commit it.
apiVersion: v1
kind: Secret
metadata:
  name: $1
  labels:
    app.kubernetes.io/part-of: gpaxos
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$2")
  tls.key: $(b64 "$3")
  ca.crt: $(b64 "$4")
YAML
}

mkdir -p "$out"
chmod 700 "$out"
umask 077
written=()
for n in "${names[@]}"; do
    f="$out/gpaxos-tls-$n.yaml"
    secret "gpaxos-tls-$n" "$tls/$n/$n.pem" "$tls/$n/$n.key" "$tls/$n/ca.pem" >"$f.tmp"
    mv "$f.tmp" "$f"
    written+=("$f")
done
f="$out/gpaxos-client-tls.yaml"
secret gpaxos-client-tls "$tls/client.pem" "$tls/client.key" "$tls/ca.pem" >"$f.tmp"
mv "$f.tmp" "$f"
written+=("$f")
echo "==> wrote ${#written[@]} Secret manifests in $out" >&2

if [ "$apply" = 1 ]; then
    ns=()
    [ -n "$namespace" ] && ns=(--namespace "$namespace")
    for f in "${written[@]}"; do
        kubectl "${ns[@]}" apply -f "$f"
    done
fi
