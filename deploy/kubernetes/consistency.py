"""Offline checks of deploy/kubernetes (run by check.sh, in its venv).

1. Schemas: every manifest (and the Secrets make-secrets.sh writes, and
   client.sh's client pod) validates strictly (unknown fields refused)
   against the Kubernetes 1.30.0 and 1.37.0 schemas bundled with
   kubernetes-validate; a kind with no schema is an error, not a warning.
2. Consistency: names, labels, ports, volumes, Secrets, certificate names,
   probe commands and the node's own flags agree (see the checks below).
3. The node itself: each node's /tls is built from its Secret exactly as
   the pod's volume maps it, the five nodes are started with their
   manifest's arguments (addresses moved to loopback), and each one's
   readiness probe command is run against it.

Prints one line per failure and exits 1 if there is any.

    python consistency.py --manifests DIR --secrets DIR --bin GPAXOS_NODE
        --client-pod FILE --dockerfile FILE [--no-run]
"""

import argparse
import base64
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time

import yaml

SCHEMA_VERSIONS = ["1.30.0", "1.37.0"]
# The files kustomization.yaml must list, and the optional ones it must not
# (nodeports.yaml is applied by hand; Secrets hold keys).
KUSTOMIZED = ["services.yaml", "statefulsets.yaml", "pdb.yaml"]
OPTIONAL = ["nodeports.yaml"]
APP_LABEL = ("app.kubernetes.io/name", "gpaxos")
NODE_LABEL = "gpaxos-node"
HEADLESS = "gpaxos"
CLIENT_SERVICE = "gpaxos-client"
NODEPORT_SERVICE = "gpaxos-nodeport"
CLIENT_SECRET = "gpaxos-client-tls"

failures = []


def fail(where, msg):
    failures.append(f"{where}: {msg}")


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- schemas


def check_schemas(files):
    import functools

    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    # validate() reads and parses the schema files (megabytes of JSON) on
    # every call; read each once. The validator does not modify them.
    if not hasattr(kv_utils.schema_contents, "cache_info"):
        kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)

    n = 0
    for path, docs in files:
        for doc in docs:
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                fail(path, "a document without kind and apiVersion")
                continue
            name = f"{doc['kind']}/{doc.get('metadata', {}).get('name', '?')}"
            for version in SCHEMA_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                    n += 1
                except ValidationError as e:
                    where = ".".join(str(p) for p in e.path) or "(top)"
                    fail(path, f"schema {version}: {name}: {where}: {e.message}")
                except SchemaNotFoundError as e:
                    fail(path, f"schema {version}: {name}: no schema ({e.message})")
    return n


# ------------------------------------------------------------ node flags


def help_flags(binary, *sub):
    out = subprocess.run([binary, *sub, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        fail(binary, f"`{' '.join(sub)} --help` exited {out.returncode}: {out.stderr.strip()}")
        return set(), set()
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout))
    usage = next((line for line in out.stdout.splitlines() if line.startswith("Usage:")), "")
    # Options outside [...] in the usage line are required.
    required = set(re.findall(r"(?<![\[\w-])(--[a-z][a-z0-9-]*) <", re.sub(r"\[[^\]]*\]", "", usage)))
    return flags, required


def parse_args(args):
    """`--flag value` pairs of a command line (every flag the node takes has a value)."""
    out = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if i + 1 >= len(args):
                out[a] = None
                i += 1
            else:
                out[a] = args[i + 1]
                i += 2
        else:
            i += 1
    return out


def check_flags(where, args, flags, required):
    for a in args:
        if a.startswith("--") and a not in flags:
            fail(where, f"{a} is not a flag of the node (its --help lists {', '.join(sorted(flags))})")
    given = {a for a in args if a.startswith("--")}
    for r in sorted(required - given):
        fail(where, f"the node requires {r}, which is not given")


# ----------------------------------------------------------- certificates


def check_secret_certs(where, secret, node, ca_pem=None):
    """The Secret's certificate names `node` (CN and SAN), is issued by its
    CA certificate and matches its key. Returns the PEM data by key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    data = {}
    for k, v in (secret.get("data") or {}).items():
        try:
            data[k] = base64.b64decode(v, validate=True)
        except Exception as e:  # noqa: BLE001
            fail(where, f"{k} is not base64: {e}")
    if secret.get("type") != "kubernetes.io/tls":
        fail(where, f"type {secret.get('type')!r}, not kubernetes.io/tls")
    missing = {"tls.crt", "tls.key", "ca.crt"} - set(data)
    if missing:
        fail(where, f"keys missing: {', '.join(sorted(missing))}")
        return data
    extra = set(data) - {"tls.crt", "tls.key", "ca.crt"}
    if extra:
        fail(where, f"unexpected keys {sorted(extra)} (a node's Secret holds its key, its certificate and the CA certificate only)")
    try:
        cert = x509.load_pem_x509_certificate(data["tls.crt"])
        ca = x509.load_pem_x509_certificate(data["ca.crt"])
        key = serialization.load_pem_private_key(data["tls.key"], password=None)
    except Exception as e:  # noqa: BLE001
        fail(where, f"cannot read the certificates or key: {e}")
        return data
    cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    if node not in sans:
        fail(where, f"tls.crt names {sans} in its SAN (CN {cns}), not {node}: the peers would refuse it as {node}")
    try:
        cert.verify_directly_issued_by(ca)
    except Exception as e:  # noqa: BLE001
        fail(where, f"tls.crt is not issued by ca.crt: {e}")
    pub = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # noqa: E731
    if pub(key.public_key()) != pub(cert.public_key()):
        fail(where, "tls.key is not the key of tls.crt")
    if pub(key.public_key()) == pub(ca.public_key()):
        fail(where, "tls.key is the CA's key: no Secret may hold it")
    if ca_pem is not None and data["ca.crt"].strip() != ca_pem.strip():
        fail(where, "ca.crt is not the cluster CA the other Secrets hold")
    return data


# -------------------------------------------------------------- manifests


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def majority(n):
    return n // 2 + 1


def check(args):
    mdir = args.manifests
    files = []
    for name in KUSTOMIZED + OPTIONAL:
        path = os.path.join(mdir, name)
        if not os.path.exists(path):
            fail(name, "missing")
            continue
        try:
            files.append((name, load_docs(path)))
        except yaml.YAMLError as e:
            fail(name, f"not YAML: {e}")
    secret_files = []
    for name in sorted(os.listdir(args.secrets)) if os.path.isdir(args.secrets) else []:
        if name.endswith(".yaml"):
            try:
                secret_files.append((f"secrets/{name}", load_docs(os.path.join(args.secrets, name))))
            except yaml.YAMLError as e:
                fail(f"secrets/{name}", f"not YAML: {e}")
    client_pod = None
    if args.client_pod:
        try:
            with open(args.client_pod) as f:
                client_pod = json.load(f)
        except Exception as e:  # noqa: BLE001
            fail("client.sh pod-manifest", f"not JSON: {e}")

    # kustomization.yaml
    kpath = os.path.join(mdir, "kustomization.yaml")
    try:
        kust = load_docs(kpath)[0]
        res = kust.get("resources") or []
        for r in KUSTOMIZED:
            if r not in res:
                fail("kustomization.yaml", f"resources does not list {r}")
        for r in res:
            if not os.path.exists(os.path.join(mdir, r)):
                fail("kustomization.yaml", f"lists {r}, which does not exist")
            if r not in KUSTOMIZED:
                fail("kustomization.yaml", f"lists {r}, which this check does not know (add it to KUSTOMIZED)")
        if kust.get("kind") != "Kustomization":
            fail("kustomization.yaml", "kind is not Kustomization")
        for key in ("secretGenerator", "namespace"):
            if key in kust:
                fail("kustomization.yaml", f"{key}: Secrets come from make-secrets.sh, and the manifests work in any namespace")
    except Exception as e:  # noqa: BLE001
        fail("kustomization.yaml", f"unreadable: {e}")

    n_valid = check_schemas(files + secret_files + ([("client.sh pod-manifest", [client_pod])] if client_pod else []))

    objs = {}
    for path, docs in files:
        for d in docs:
            if isinstance(d, dict) and "kind" in d:
                key = (d["kind"], d.get("metadata", {}).get("name"))
                if key in objs:
                    fail(path, f"{key[0]}/{key[1]} is defined twice")
                objs[key] = (path, d)
            if isinstance(d, dict) and d.get("metadata", {}).get("namespace"):
                fail(path, f"{d['kind']}/{d['metadata']['name']} fixes a namespace")
    kinds = lambda k: [(p, d) for (kk, _), (p, d) in objs.items() if kk == k]  # noqa: E731
    for kind in ("Secret", "Deployment", "Pod"):
        for p, d in kinds(kind):
            fail(p, f"a {kind} ({d['metadata']['name']}) does not belong in the manifests")

    # The node's flags, from the binary.
    run_flags, run_required = help_flags(args.bin, "run")
    health_flags, health_required = help_flags(args.bin, "health")
    entrypoint = None
    with open(args.dockerfile) as f:
        m = re.search(r'^ENTRYPOINT\s+(\[.*\])', f.read(), re.M)
        if m:
            entrypoint = json.loads(m.group(1))
    if not entrypoint:
        fail(args.dockerfile, "no ENTRYPOINT [...] found")

    # StatefulSets: one per node.
    stss = sorted(kinds("StatefulSet"), key=lambda pd: pd[1]["metadata"]["name"])
    names = [d["metadata"]["name"] for _, d in stss]
    nodes = []
    for _, d in stss:
        m = re.fullmatch(r"gpaxos-(n[1-9][0-9]*)", d["metadata"]["name"])
        if not m:
            fail("statefulsets.yaml", f"StatefulSet {d['metadata']['name']} is not named gpaxos-nK")
        else:
            nodes.append(m.group(1))
    want_nodes = [f"n{k}" for k in range(1, len(stss) + 1)]
    if sorted(nodes, key=lambda n: int(n[1:])) != want_nodes:
        fail("statefulsets.yaml", f"the StatefulSets {names} are not gpaxos-n1..gpaxos-n{len(stss)}")
    if len(stss) < 3:
        fail("statefulsets.yaml", f"{len(stss)} nodes: at least 3 are needed to survive one failure")
    port = None
    headless_port = None
    svc = objs.get(("Service", HEADLESS))
    if not svc:
        fail("services.yaml", f"no headless Service {HEADLESS}")
    else:
        p, s = svc
        spec = s["spec"]
        if spec.get("clusterIP") != "None":
            fail(p, f"Service {HEADLESS} is not headless (clusterIP: None)")
        if spec.get("publishNotReadyAddresses") is not True:
            fail(p, f"Service {HEADLESS} must publish not-ready addresses: peers must find a node before it is ready")
        if spec.get("selector") != dict([APP_LABEL]):
            fail(p, f"Service {HEADLESS} selects {spec.get('selector')}, not {dict([APP_LABEL])}")
        ports = spec.get("ports") or []
        if len(ports) != 1:
            fail(p, f"Service {HEADLESS} has {len(ports)} ports, not one")
        else:
            sp = ports[0]
            if sp.get("protocol") != "UDP":
                fail(p, f"Service {HEADLESS} port is {sp.get('protocol', 'TCP')}, not UDP (QUIC)")
            headless_port = sp.get("targetPort", sp.get("port"))
            if sp.get("port") != headless_port:
                fail(p, f"Service {HEADLESS} maps port {sp.get('port')} to {headless_port}: peers dial the pod's DNS name at the port in --cluster, which must be the pod's own")

    cluster_flags = set()
    all_labels = []
    for (path, d), node in zip(stss, nodes):
        where = f"{path}: {d['metadata']['name']}"
        spec = d["spec"]
        tmpl = spec["template"]
        pod = tmpl["spec"]
        labels = tmpl.get("metadata", {}).get("labels", {})
        all_labels.append((node, labels))
        if spec.get("replicas") != 1:
            fail(where, f"replicas {spec.get('replicas')}: one node per StatefulSet (each mounts its own Secret)")
        if spec.get("serviceName") != HEADLESS:
            fail(where, f"serviceName {spec.get('serviceName')!r}, not the headless Service {HEADLESS!r}: the peers' DNS names would not exist")
        if labels.get(APP_LABEL[0]) != APP_LABEL[1] or labels.get(NODE_LABEL) != node:
            fail(where, f"pod labels {labels} lack {APP_LABEL[0]}={APP_LABEL[1]} and {NODE_LABEL}={node}")
        if not labels_match(spec["selector"].get("matchLabels"), labels) or spec["selector"].get("matchLabels", {}).get(NODE_LABEL) != node:
            fail(where, f"selector {spec['selector']} does not select exactly this node's pod")
        if pod.get("automountServiceAccountToken") is not False:
            fail(where, "automountServiceAccountToken is not false: the pod would mount a token it does not need")
        containers = pod.get("containers") or []
        if pod.get("initContainers"):
            fail(where, "init containers: none are expected")
        if len(containers) != 1:
            fail(where, f"{len(containers)} containers, not one")
            continue
        c = containers[0]
        if c.get("command") not in (None, entrypoint):
            fail(where, f"command {c.get('command')} replaces the image's entrypoint {entrypoint}")
        a = c.get("args") or []
        if a[:1] != ["run"]:
            fail(where, f"args {a[:1]}: the node is started with `run`")
        check_flags(f"{where}: args", a[1:], run_flags, run_required)
        flags = parse_args(a[1:])
        if flags.get("--id") != node:
            fail(where, f"--id {flags.get('--id')}, not {node}")
        cluster = flags.get("--cluster") or ""
        cluster_flags.add(cluster)
        entries = dict(e.split("=", 1) for e in cluster.split(",") if "=" in e)
        if sorted(entries, key=lambda n: int(n[1:]) if n[1:].isdigit() else 0) != want_nodes:
            fail(where, f"--cluster names {sorted(entries)}, not {want_nodes}")
        listen = flags.get("--listen") or ""
        lport = int(listen.rsplit(":", 1)[1]) if ":" in listen and listen.rsplit(":", 1)[1].isdigit() else None
        if not listen.startswith("0.0.0.0:") and not listen.startswith("[::]:"):
            fail(where, f"--listen {listen!r}: bind every address (0.0.0.0:PORT), the pod's IP is not known in advance")
        cports = c.get("ports") or []
        if len(cports) != 1:
            fail(where, f"{len(cports)} container ports, not one")
            cport = None
        else:
            cport = cports[0]
            if cport.get("name") != node:
                fail(where, f"the container port is named {cport.get('name')!r}, not {node!r} (gpaxos-client's targetPort)")
            if cport.get("protocol") != "UDP":
                fail(where, f"the container port is {cport.get('protocol', 'TCP')}, not UDP (QUIC)")
            if cport.get("containerPort") != lport:
                fail(where, f"containerPort {cport.get('containerPort')} but the node listens on {lport}")
        if port is None:
            port = lport
        elif lport != port:
            fail(where, f"listens on {lport}, other nodes on {port}")
        if headless_port is not None and lport != headless_port:
            fail(where, f"listens on {lport}, but Service {HEADLESS} targets {headless_port}")
        for n, addr in entries.items():
            want = f"{f'gpaxos-{n}'}-0.{HEADLESS}:{lport}"
            if addr != want:
                fail(where, f"--cluster gives {n}={addr}, but {n}'s pod is reachable as {want} (pod gpaxos-{n}-0 of the headless Service {HEADLESS}, port {lport})")

        # Volumes: the data claim and the node's own Secret, and nothing else.
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts") or []}
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates") or []}
        data_dir, tls_dir = flags.get("--data"), flags.get("--tls")
        dm = mounts.get(data_dir)
        if not dm:
            fail(where, f"nothing is mounted at --data {data_dir}")
        elif dm["name"] not in claims:
            fail(where, f"--data {data_dir} is volume {dm['name']!r}, not a volumeClaimTemplate (the log would not persist)")
        else:
            t = claims[dm["name"]]["spec"]
            if not (t.get("resources", {}).get("requests", {}).get("storage")):
                fail(where, "the data claim requests no storage")
            if "ReadWriteOnce" not in (t.get("accessModes") or []) and "ReadWriteOncePod" not in (t.get("accessModes") or []):
                fail(where, f"the data claim's accessModes {t.get('accessModes')} are not ReadWriteOnce(Pod)")
            if dm.get("readOnly"):
                fail(where, "the data volume is mounted read-only")
        tm = mounts.get(tls_dir)
        if not tm:
            fail(where, f"nothing is mounted at --tls {tls_dir}")
        else:
            if not tm.get("readOnly"):
                fail(where, f"{tls_dir} is not mounted read-only")
            if tm.get("subPath"):
                fail(where, f"{tls_dir} is a subPath mount: it would not see a renewed Secret")
            v = volumes.get(tm["name"])
            sec = (v or {}).get("secret")
            if not sec:
                fail(where, f"--tls {tls_dir} is not a Secret volume")
            else:
                if sec.get("secretName") != f"gpaxos-tls-{node}":
                    fail(where, f"mounts Secret {sec.get('secretName')!r} at {tls_dir}, not its own gpaxos-tls-{node}")
                items = {i["key"]: i["path"] for i in sec.get("items") or []}
                want_items = {"ca.crt": "ca.pem", "tls.crt": f"{node}.pem", "tls.key": f"{node}.key"}
                if items != want_items:
                    fail(where, f"Secret items {items}, not {want_items} (the files `gpaxos-node certs` gives node {node})")
                mode = sec.get("defaultMode")
                if mode is None or mode & 0o007:
                    fail(where, f"Secret defaultMode {oct(mode) if mode is not None else None}: the key must not be readable by others (0440 with fsGroup)")
        for vname, v in volumes.items():
            if vname == (tm or {}).get("name"):
                continue
            if "secret" in v or "projected" in v:
                fail(where, f"volume {vname!r} mounts {'Secret ' + repr(v['secret'].get('secretName')) if 'secret' in v else 'a projected volume'}: a node mounts only its own Secret")
            if vname not in claims:
                fail(where, f"volume {vname!r} is unexpected")
        for e in c.get("env") or []:
            if "secretKeyRef" in (e.get("valueFrom") or {}):
                fail(where, f"env {e['name']} reads a Secret: a node reads only its own Secret, as files")
        for e in c.get("envFrom") or []:
            if "secretRef" in e:
                fail(where, "envFrom reads a Secret: a node reads only its own Secret, as files")
        used = {m["name"] for m in c.get("volumeMounts") or []}
        for vname in set(volumes) | set(claims):
            if vname not in used:
                fail(where, f"volume {vname!r} is not mounted")

        # Probes: `gpaxos-node health` against this node, with its own name and directory.
        want_probe = (entrypoint or ["/gpaxos-node"]) + ["health", "--addr", f"127.0.0.1:{lport}", "--name", node, "--tls", tls_dir]
        for probe in ("readinessProbe", "livenessProbe"):
            pr = c.get(probe)
            if not pr:
                fail(where, f"no {probe}")
                continue
            cmd = (pr.get("exec") or {}).get("command")
            if not cmd:
                fail(where, f"{probe} is not an exec probe of `gpaxos-node health` (the node speaks QUIC only: no HTTP or TCP probe can reach it)")
                continue
            if cmd[: len(entrypoint or [])] == entrypoint:
                check_flags(f"{where}: {probe}", cmd[2:], health_flags, health_required)
            if cmd != want_probe:
                fail(where, f"{probe} runs {shlex.join(cmd)}, not {shlex.join(want_probe)}")
            if (pr.get("timeoutSeconds") or 1) < 3:
                fail(where, f"{probe} timeoutSeconds {pr.get('timeoutSeconds', 1)}: health waits up to 2 s for an answer")
        sp = c.get("startupProbe")
        if sp and (sp.get("exec") or {}).get("command") != want_probe:
            fail(where, f"startupProbe runs {sp.get('exec')}, not {shlex.join(want_probe)}")

        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(kind) or {}):
                    fail(where, f"resources.{kind}.{r} is not set")
    if len(cluster_flags) > 1:
        fail("statefulsets.yaml", f"the nodes disagree on --cluster: {sorted(cluster_flags)}")

    # Client Services: port 700K (and nodePort) reaches node nK only.
    for sname, required in ((CLIENT_SERVICE, True), (NODEPORT_SERVICE, False)):
        svc = objs.get(("Service", sname))
        if not svc:
            if required:
                fail("services.yaml", f"no Service {sname}")
            continue
        p, s = svc
        spec = s["spec"]
        if spec.get("selector") != dict([APP_LABEL]):
            fail(p, f"Service {sname} selects {spec.get('selector')}, not {dict([APP_LABEL])}")
        if spec.get("clusterIP") == "None":
            fail(p, f"Service {sname} is headless: clients need its ports")
        byname = {sp.get("name"): sp for sp in spec.get("ports") or []}
        if sorted(byname) != sorted(want_nodes):
            fail(p, f"Service {sname} has ports {sorted(map(str, byname))}, not one per node {want_nodes}")
        for n, sp in byname.items():
            if sp.get("targetPort") != n:
                fail(p, f"Service {sname} port {n} targets {sp.get('targetPort')!r}, not the port name {n!r} only {n}'s pod declares: it would reach every node, and the client checks each node's name")
            if sp.get("protocol") != "UDP":
                fail(p, f"Service {sname} port {n} is {sp.get('protocol', 'TCP')}, not UDP")
        if sname == NODEPORT_SERVICE:
            if spec.get("type") != "NodePort":
                fail(p, f"Service {sname} is not type NodePort")
            for n, sp in byname.items():
                if n in want_nodes and sp.get("nodePort") != 30700 + int(n[1:]):
                    fail(p, f"Service {sname} port {n}: nodePort {sp.get('nodePort')}, but client.sh uses {30700 + int(n[1:])}")

    # The PodDisruptionBudget keeps a majority.
    pdbs = kinds("PodDisruptionBudget")
    if len(pdbs) != 1:
        fail("pdb.yaml", f"{len(pdbs)} PodDisruptionBudgets, not one")
    for p, d in pdbs:
        spec = d["spec"]
        sel = (spec.get("selector") or {}).get("matchLabels")
        if spec.get("selector", {}).get("matchExpressions"):
            fail(p, "the budget's selector uses matchExpressions; use matchLabels")
        covered = [n for n, labels in all_labels if labels_match(sel, labels)]
        if not sel or covered != [n for n, _ in all_labels]:
            fail(p, f"the budget selects {sel}, which covers {covered}, not all of {[n for n, _ in all_labels]}")
        total = len(all_labels)
        need = majority(total)
        if "minAvailable" in spec and "maxUnavailable" in spec:
            fail(p, "both minAvailable and maxUnavailable")
        elif "minAvailable" in spec:
            v = spec["minAvailable"]
            kept = -(-total * int(v[:-1]) // 100) if isinstance(v, str) and v.endswith("%") else int(v)
            if kept < need:
                fail(p, f"minAvailable {v} keeps {kept} of {total}, not a majority ({need})")
            if kept > total - 1:
                fail(p, f"minAvailable {v} keeps all {total}: no node could ever be drained")
        elif "maxUnavailable" in spec:
            v = spec["maxUnavailable"]
            down = total * int(v[:-1]) // 100 if isinstance(v, str) and v.endswith("%") else int(v)
            if total - down < need:
                fail(p, f"maxUnavailable {v} lets {down} of {total} go, leaving less than a majority ({need})")
            if down < 1:
                fail(p, f"maxUnavailable {v}: no node could ever be drained")
        else:
            fail(p, "neither minAvailable nor maxUnavailable")

    # Secrets: the ones the pods mount exist, with certificates naming their node.
    secrets = {}
    for path, docs in secret_files:
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "Secret":
                secrets[d["metadata"]["name"]] = (path, d)
    ca_pem = None
    materials = {}
    for node in want_nodes:
        name = f"gpaxos-tls-{node}"
        if name not in secrets:
            fail("make-secrets.sh", f"made no Secret {name}")
            continue
        path, s = secrets[name]
        data = check_secret_certs(f"{path}: {name}", s, node, ca_pem)
        ca_pem = ca_pem or data.get("ca.crt")
        materials[node] = data
    if CLIENT_SECRET not in secrets:
        fail("make-secrets.sh", f"made no Secret {CLIENT_SECRET}")
    else:
        path, s = secrets[CLIENT_SECRET]
        materials["client"] = check_secret_certs(f"{path}: {CLIENT_SECRET}", s, "client", ca_pem)
    for name in secrets:
        if name not in {f"gpaxos-tls-{n}" for n in want_nodes} | {CLIENT_SECRET}:
            fail("make-secrets.sh", f"made an unexpected Secret {name}")

    # client.sh's pod: the client Secret only, and the headless names.
    if client_pod:
        spec = client_pod.get("spec", {})
        vols = spec.get("volumes") or []
        names_ = [v.get("secret", {}).get("secretName") for v in vols]
        if names_ != [CLIENT_SECRET]:
            fail("client.sh pod-manifest", f"mounts Secrets {names_}, not only {CLIENT_SECRET}")
        ca = (spec.get("containers") or [{}])[0].get("args") or []
        cflags = parse_args(ca[1:])
        if cluster_flags and cflags.get("--cluster") not in cluster_flags:
            fail("client.sh pod-manifest", f"--cluster {cflags.get('--cluster')} is not the nodes' {sorted(cluster_flags)}")

    if not args.no_run and not failures:
        run_nodes(args, stss, nodes, materials, client_pod)
    return n_valid


# ---------------------------------------------------------- the real node


def free_udp_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def run_nodes(args, stss, nodes, materials, client_pod):
    """Starts the five nodes with their manifests' arguments, each given
    only its /tls as its Secret volume maps it, runs each readiness probe
    against its node, and a put and a get with the client Secret as
    client.sh's pod mounts it."""
    ports = free_udp_ports(len(nodes))
    procs = []
    with tempfile.TemporaryDirectory(prefix="gpaxos-k8s-") as tmp:
        try:
            for (path, d), node, port in zip(stss, nodes, ports):
                c = d["spec"]["template"]["spec"]["containers"][0]
                sec = next(v["secret"] for v in d["spec"]["template"]["spec"]["volumes"] if "secret" in v)
                tls = os.path.join(tmp, node, "tls")
                os.makedirs(tls)
                for item in sec["items"]:
                    fp = os.path.join(tls, item["path"])
                    with open(fp, "wb") as f:
                        f.write(materials[node][item["key"]])
                    os.chmod(fp, 0o400)
                data = os.path.join(tmp, node, "data")
                os.makedirs(data)
                # Everything as in the manifest, but on loopback: the pod DNS
                # names become 127.0.0.1 and this run's ports.
                cluster = ",".join(f"{n}=127.0.0.1:{p}" for n, p in zip(nodes, ports))
                repl = {"--cluster": cluster, "--listen": f"127.0.0.1:{port}", "--data": data, "--tls": tls}
                a0 = list(c["args"])
                out = [a0[0]]
                i = 1
                while i < len(a0):
                    if a0[i] in repl and i + 1 < len(a0):
                        out += [a0[i], repl[a0[i]]]
                        i += 2
                    else:
                        out.append(a0[i])
                        i += 1
                log = open(os.path.join(tmp, f"{node}.log"), "wb")
                procs.append((node, subprocess.Popen([args.bin] + out, stdout=log, stderr=log), log))
            for ((path, d), node, port) in zip(stss, nodes, ports):
                c = d["spec"]["template"]["spec"]["containers"][0]
                cmd = list(c["readinessProbe"]["exec"]["command"])
                tls = os.path.join(tmp, node, "tls")
                cmd = [args.bin] + [f"127.0.0.1:{port}" if x.startswith("127.0.0.1:") else (tls if x == parse_args(c["args"][1:])["--tls"] else x) for x in cmd[1:]]
                deadline = time.time() + 20
                while True:
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                    if r.returncode == 0:
                        print(f"    {node}: the readiness probe passed: {r.stdout.strip()}")
                        break
                    if time.time() > deadline:
                        fail(f"{node} (run locally)", f"the readiness probe failed for 20 s: {r.stderr.strip()[-300:]}")
                        break
                    time.sleep(0.3)
            if not failures and client_pod and "client" in materials:
                ctls = os.path.join(tmp, "client-tls")
                os.makedirs(ctls)
                for item in client_pod["spec"]["volumes"][0]["secret"]["items"]:
                    with open(os.path.join(ctls, item["path"]), "wb") as f:
                        f.write(materials["client"][item["key"]])
                cluster = ",".join(f"{n}=127.0.0.1:{p}" for n, p in zip(nodes, ports))
                for op, want in ((["put", "k8s-check", "v1"], "ok"), (["get", "k8s-check"], "v1")):
                    cmd = [args.bin, "client", "--cluster", cluster, "--tls", ctls, *op]
                    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                    if r.returncode != 0 or r.stdout.strip() != want:
                        fail("client (run locally)", f"{shlex.join(op)} -> exit {r.returncode}, {r.stdout.strip()!r} (want {want!r}) {r.stderr.strip()[-300:]}")
                        break
                    print(f"    client with Secret {CLIENT_SECRET}: {shlex.join(op)} -> {r.stdout.strip()}")
                if not failures and args.harness:
                    run_harness(args.harness, cluster, ctls, tmp)
        finally:
            for node, p, log in procs:
                p.kill()
                p.wait()
                log.close()
            if failures:
                for node, _, _ in procs:
                    with open(os.path.join(tmp, f"{node}.log"), errors="replace") as f:
                        tail = f.read()[-1500:]
                    print(f"---- {node}'s log (last lines)\n{tail}", file=sys.stderr)


def run_harness(harness, cluster, ctls, tmp):
    """The README's way of pointing the harness's clients at the cluster:
    `gpaxos-harness test --backend external` with the client Secret, a
    short kv run that must be valid."""
    cmd = [harness, "test", "--backend", "external", "--cluster", cluster, "--tls", ctls,
           "--nemesis", "none", "--time-limit", "5", "--store", os.path.join(tmp, "store")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    lines = [l for l in r.stdout.splitlines() if l.startswith(("operations", "verdict"))]
    if r.returncode != 0:
        fail("harness (run locally)", f"gpaxos-harness test --backend external -> exit {r.returncode}\n{r.stdout[-1500:]}{r.stderr[-800:]}")
        return
    print(f"    gpaxos-harness test --backend external with Secret {CLIENT_SECRET}: " + "; ".join(" ".join(l.split()) for l in lines))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifests", required=True)
    ap.add_argument("--secrets", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--client-pod")
    ap.add_argument("--dockerfile", required=True)
    ap.add_argument("--no-run", action="store_true", help="do not start the nodes")
    ap.add_argument("--harness", help="gpaxos-harness: also run a short external-backend test against the nodes")
    args = ap.parse_args()
    n = check(args)
    if failures:
        for f in failures:
            print(f"FAIL {f}")
        print(f"{len(failures)} problem(s) in {args.manifests}")
        sys.exit(1)
    print(f"    {n} schema validations passed (Kubernetes {', '.join(SCHEMA_VERSIONS)}, strict); names, ports, volumes, Secrets, certificates, probes and flags agree")


if __name__ == "__main__":
    main()
