#!/usr/bin/env bash
# Offline check of the Kubernetes manifests in this directory. No cluster
# and no network beyond the package registries (PyPI, crates.io, Debian).
#
#   bash deploy/kubernetes/check.sh [--manifests DIR] [--secrets DIR]
#                                   [--no-self-test] [GPAXOS_NODE]
#
# GPAXOS_NODE defaults to $CARGO_TARGET_DIR/release/gpaxos-node (target/...
# without the variable) and is built with cargo if missing. The check:
#
#  1. a Python venv in target/k8s-venv with kubernetes-validate (pinned; it
#     bundles the Kubernetes JSON schemas), cryptography and PyYAML, made
#     and installed from PyPI once (python3-venv and python3-pip from
#     Debian with apt-get if python3 cannot make a venv);
#  2. make-secrets.sh --no-apply into a temporary directory (fresh
#     certificates from `gpaxos-node certs`), and client.sh's client pod;
#  3. consistency.py: every manifest, Secret and the client pod validated
#     strictly (unknown fields refused, unknown kinds refused) against the
#     Kubernetes 1.30.0 and 1.37.0 schemas; then names, labels, ports,
#     volumes, Secret names and items, the certificates' names (SAN),
#     probe commands and the flags the manifests give the node (against
#     `gpaxos-node run --help` and `health --help`) agree; then the five
#     nodes run locally with the manifests' arguments and their Secrets'
#     files, each readiness probe runs against its node, and a client with
#     the client Secret puts and gets, and (not in the self-test's copies)
#     `gpaxos-harness test --backend external` runs 5 s of kv against them;
#  4. the self-test (selftest.py, skipped with --no-self-test or
#     --manifests): broken copies of the manifests, each of which this
#     script must refuse for the reason planted.
#
# Exits 0 if all passed, 1 with the problems listed otherwise. Idempotent:
# it writes only target/k8s-venv and temporary directories.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
start=$(date +%s)

manifests="$here"
secrets=""
self_test=1
bin=""
while [ $# -gt 0 ]; do
    case "$1" in
        --manifests) manifests=$(cd "$2" && pwd); self_test=0; shift 2 ;;
        --secrets) secrets=$2; shift 2 ;;
        --no-self-test) self_test=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "check.sh: unknown option $1" >&2; exit 2 ;;
        *) bin=$1; shift ;;
    esac
done

die() {
    echo "check.sh: FAILED: $*" >&2
    exit 1
}
say() { echo "==> [k8s check $(( $(date +%s) - start ))s] $*"; }

# 1. The node binary.
if [ -z "$bin" ]; then
    bin="${CARGO_TARGET_DIR:-target}/release/gpaxos-node"
    if [ ! -x "$bin" ]; then
        say "$bin is missing: cargo build --release -p gpaxos-node"
        cargo build --release -p gpaxos-node --bin gpaxos-node || die "cannot build gpaxos-node"
    fi
fi
[ -x "$bin" ] || die "$bin is not an executable gpaxos-node (build it: cargo build --release -p gpaxos-node)"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# 2. The Python tools, in a venv of their own.
venv="$root/target/k8s-venv"
py="$venv/bin/python"
pins=(kubernetes-validate==1.37.0 "cryptography>=42,<60" "PyYAML>=6,<7")
tools_ok() {
    "$py" - <<'PY' 2>/dev/null
import importlib.metadata as m, cryptography, yaml, kubernetes_validate
assert m.version("kubernetes-validate") == "1.37.0"
PY
}
tmp_venv_log=$(mktemp /tmp/gpaxos-k8s-venv.XXXXXX)
if [ ! -x "$py" ] || ! tools_ok; then
    say "making $venv (pip install ${pins[*]})"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$tmp_venv_log" 2>&1; then
        # Debian's python3 makes venvs only with python3-venv (ensurepip).
        say "python3 cannot make a venv: apt-get install python3-venv python3-pip"
        command -v apt-get >/dev/null 2>&1 ||
            { cat "$tmp_venv_log" >&2; die "python3 -m venv failed and there is no apt-get to install python3-venv"; }
        sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
        $sudo apt-get update -qq || die "apt-get update failed"
        $sudo apt-get install -y -qq python3-venv python3-pip >/dev/null ||
            die "apt-get install python3-venv python3-pip failed"
        rm -rf "$venv"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}" ||
        die "pip install ${pins[*]} failed"
    tools_ok || die "the venv's tools do not import after installing them"
fi
rm -f "$tmp_venv_log"

tmp=$(mktemp -d /tmp/gpaxos-k8s-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# 3. Secrets as make-secrets.sh makes them, and client.sh's pod.
if [ -z "$secrets" ]; then
    say "make-secrets.sh --no-apply (fresh certificates from gpaxos-node certs)"
    bash "$here/make-secrets.sh" --no-apply --bin "$bin" --tls "$tmp/tls" --ca-dir "$tmp/ca" \
        --out "$tmp/secrets" 2>"$tmp/make-secrets.log" ||
        { cat "$tmp/make-secrets.log" >&2; die "make-secrets.sh failed"; }
    secrets="$tmp/secrets"
fi
bash "$here/client.sh" pod-manifest put k v >"$tmp/client-pod.json" || die "client.sh pod-manifest failed"

say "schemas (Kubernetes 1.30.0 and 1.37.0, strict) and consistency of $manifests"
# The harness's clients against the nodes (the README's `--backend
# external`): on the real manifests only, not on each self-test copy.
harness_args=()
if [ "$self_test" = 1 ]; then
    harness="$(dirname "$bin")/gpaxos-harness"
    if [ ! -x "$harness" ]; then
        say "$harness is missing: cargo build --release -p gpaxos-harness"
        cargo build --release -p gpaxos-harness --bin gpaxos-harness || die "cannot build gpaxos-harness"
    fi
    harness_args=(--harness "$harness")
fi
"$py" "$here/consistency.py" --manifests "$manifests" --secrets "$secrets" --bin "$bin" \
    --client-pod "$tmp/client-pod.json" --dockerfile "$root/docker/Dockerfile" "${harness_args[@]}" ||
    die "the manifests in $manifests are not consistent (see above)"

# kubectl's built-in kustomize renders the kustomization offline, where
# kubectl is installed (CI's machine need not have it).
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$manifests" >"$tmp/rendered.yaml" 2>"$tmp/kustomize.log" ||
        { cat "$tmp/kustomize.log" >&2; die "kubectl kustomize $manifests failed"; }
    got=$(grep -c '^kind: ' "$tmp/rendered.yaml" || true)
    [ "$got" = 8 ] || die "kubectl kustomize rendered $got objects, not 8 (2 Services, 5 StatefulSets, 1 PodDisruptionBudget)"
    echo "    kubectl kustomize: $got objects"
else
    echo "    kubectl kustomize: skipped (kubectl is not installed)"
fi

if [ "$self_test" = 1 ]; then
    say "self-test: broken copies of the manifests must be refused"
    "$py" "$here/selftest.py" --check "$here/check.sh" --manifests "$manifests" \
        --secrets "$secrets" --bin "$bin" || die "the self-test failed (see above)"
fi
say "passed"
