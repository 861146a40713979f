"""Self-test of check.sh: broken copies of the manifests, each of which
check.sh must refuse, for the reason planted (its output must say so).

    python selftest.py --check check.sh --manifests DIR --secrets DIR --bin GPAXOS_NODE

Each case copies DIR (and the Secrets) to a temporary directory, breaks one
thing, and runs `bash check.sh --no-self-test --manifests COPY --secrets
COPY_SECRETS GPAXOS_NODE`. Two cases run at a time.
"""

import argparse
import base64
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml


def sts(docs, node):
    return next(d for d in docs["statefulsets.yaml"] if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == f"gpaxos-{node}")


def container(docs, node):
    return sts(docs, node)["spec"]["template"]["spec"]["containers"][0]


def pod(docs, node):
    return sts(docs, node)["spec"]["template"]["spec"]


def service(docs, name):
    return next(d for f in ("services.yaml", "nodeports.yaml") for d in docs[f] if d.get("kind") == "Service" and d["metadata"]["name"] == name)


def set_arg(args, flag, value):
    args[args.index(flag) + 1] = value


def wrong_port(d, s):
    container(d, "n3")["ports"][0]["containerPort"] = 7001


def wrong_secret_name(d, s):
    pod(d, "n2")["volumes"][0]["secret"]["secretName"] = "gpaxos-tls-n9"


def mounts_other_nodes_secret(d, s):
    pod(d, "n4")["volumes"][0]["secret"]["secretName"] = "gpaxos-tls-n5"


def mounts_a_second_secret(d, s):
    pod(d, "n1")["volumes"].append({"name": "peer", "secret": {"secretName": "gpaxos-tls-n2"}})
    container(d, "n1")["volumeMounts"].append({"name": "peer", "mountPath": "/peer", "readOnly": True})


def pdb_not_majority(d, s):
    d["pdb.yaml"][0]["spec"]["minAvailable"] = 2


def pdb_max_unavailable_3(d, s):
    spec = d["pdb.yaml"][0]["spec"]
    del spec["minAvailable"]
    spec["maxUnavailable"] = 3


def missing_liveness_probe(d, s):
    del container(d, "n5")["livenessProbe"]


def probe_names_another_node(d, s):
    cmd = container(d, "n3")["readinessProbe"]["exec"]["command"]
    set_arg(cmd, "--name", "n4")


def invalid_schema_field(d, s):
    sts(d, "n1")["spec"]["replica"] = 1


def old_api_version(d, s):
    d["pdb.yaml"][0]["apiVersion"] = "policy/v1beta1"


def unknown_node_flag(d, s):
    a = container(d, "n2")["args"]
    a[a.index("--data")] = "--datadir"


def wrong_peer_dns_name(d, s):
    a = container(d, "n1")["args"]
    a[a.index("--cluster") + 1] = a[a.index("--cluster") + 1].replace("gpaxos-n3-0.gpaxos", "gpaxos-n3.gpaxos")


def two_replicas(d, s):
    sts(d, "n2")["spec"]["replicas"] = 2


def headless_hides_unready(d, s):
    del service(d, "gpaxos")["spec"]["publishNotReadyAddresses"]


def client_port_reaches_all(d, s):
    service(d, "gpaxos-client")["spec"]["ports"][2]["targetPort"] = 7000


def no_memory_limit(d, s):
    del container(d, "n4")["resources"]["limits"]["memory"]


def kustomization_drops_pdb(d, s):
    d["kustomization.yaml"][0]["resources"].remove("pdb.yaml")


def secret_holds_other_cert(d, s):
    s["gpaxos-tls-n2.yaml"][0]["data"]["tls.crt"] = s["gpaxos-tls-n3.yaml"][0]["data"]["tls.crt"]


def secret_holds_ca_key(d, s):
    s["gpaxos-tls-n1.yaml"][0]["data"]["ca.key"] = base64.b64encode(b"-----BEGIN PRIVATE KEY-----\n").decode()


def unbroken(d, s):
    pass


# (name, break it, what check.sh's output must say); the first is the
# control: the copies, rewritten by PyYAML but unbroken, must pass.
CONTROL = ("unbroken copy (control)", unbroken, None)
CASES = [
    ("wrong port", wrong_port, "containerPort 7001 but the node listens on 7000"),
    ("wrong Secret name", wrong_secret_name, "not its own gpaxos-tls-n2"),
    ("a pod mounting another node's Secret", mounts_other_nodes_secret, "mounts Secret 'gpaxos-tls-n5' at /tls, not its own gpaxos-tls-n4"),
    ("a pod mounting a second node's Secret too", mounts_a_second_secret, "a node mounts only its own Secret"),
    ("PDB not a majority (minAvailable 2)", pdb_not_majority, "not a majority"),
    ("PDB not a majority (maxUnavailable 3)", pdb_max_unavailable_3, "leaving less than a majority"),
    ("missing liveness probe", missing_liveness_probe, "no livenessProbe"),
    ("probe naming another node", probe_names_another_node, "readinessProbe runs /gpaxos-node health --addr 127.0.0.1:7000 --name n4"),
    ("invalid schema field", invalid_schema_field, "schema 1.30.0: StatefulSet/gpaxos-n1"),
    ("removed API version", old_api_version, "no schema"),
    ("a flag the node does not have", unknown_node_flag, "--datadir is not a flag of the node"),
    ("wrong peer DNS name", wrong_peer_dns_name, "n3's pod is reachable as gpaxos-n3-0.gpaxos:7000"),
    ("two replicas in a node's StatefulSet", two_replicas, "replicas 2"),
    ("headless Service hiding unready pods", headless_hides_unready, "must publish not-ready addresses"),
    ("client port reaching every node", client_port_reaches_all, "it would reach every node"),
    ("no memory limit", no_memory_limit, "resources.limits.memory is not set"),
    ("kustomization without the PDB", kustomization_drops_pdb, "does not list pdb.yaml"),
    ("a Secret holding another node's certificate", secret_holds_other_cert, "names ['n3'] in its SAN"),
    ("a Secret holding a CA key", secret_holds_ca_key, "unexpected keys ['ca.key']"),
]


def run_case(case, args, base):
    name, breaker, expect = case
    work = tempfile.mkdtemp(prefix="case-", dir=base)
    mdir, sdir = os.path.join(work, "manifests"), os.path.join(work, "secrets")
    shutil.copytree(args.manifests, mdir, ignore=shutil.ignore_patterns("tls", "ca", "secrets", "__pycache__"))
    shutil.copytree(args.secrets, sdir)
    docs = {}
    for f in ("services.yaml", "statefulsets.yaml", "pdb.yaml", "nodeports.yaml", "kustomization.yaml"):
        with open(os.path.join(mdir, f)) as fh:
            docs[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
    secrets = {}
    for f in os.listdir(sdir):
        with open(os.path.join(sdir, f)) as fh:
            secrets[f] = [d for d in yaml.safe_load_all(fh) if d is not None]
    breaker(docs, secrets)
    for f, ds in docs.items():
        with open(os.path.join(mdir, f), "w") as fh:
            yaml.safe_dump_all(ds, fh, sort_keys=False)
    for f, ds in secrets.items():
        with open(os.path.join(sdir, f), "w") as fh:
            yaml.safe_dump_all(ds, fh, sort_keys=False)
    t = time.time()
    r = subprocess.run(
        ["bash", args.check, "--no-self-test", "--manifests", mdir, "--secrets", sdir, args.bin],
        capture_output=True, text=True, timeout=300,
    )
    out = r.stdout + r.stderr
    secs = time.time() - t
    if expect is None:
        if r.returncode != 0:
            return False, f"REFUSED an unbroken copy: {name}\n" + "\n".join("      | " + line for line in out.splitlines()[-15:])
        return True, f"passed ({secs:.1f} s): {name}"
    if r.returncode == 0:
        return False, f"ACCEPTED (it must be refused): {name}"
    if expect not in out:
        return False, f"refused, but not for the planted reason: {name}\n      expected {expect!r} in:\n" + "\n".join("      | " + line for line in out.splitlines()[-15:])
    reason = next((line for line in out.splitlines() if expect in line), "").strip()
    return True, f"refused ({secs:.1f} s): {name}\n      {reason[:220]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", required=True)
    ap.add_argument("--manifests", required=True)
    ap.add_argument("--secrets", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    base = tempfile.mkdtemp(prefix="gpaxos-k8s-selftest-")
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda c: run_case(c, args, base), [CONTROL] + CASES))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ok = 0
    for good, msg in results:
        print(("    ok    " if good else "    FAIL  ") + msg)
        ok += good
    print(f"    self-test: the unbroken copy {'passed' if results[0][0] else 'FAILED'}; "
          f"{ok - results[0][0]}/{len(CASES)} broken copies refused for the planted reason")
    if ok != len(CASES) + 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
