#!/usr/bin/env python3
"""Self time of a perf recording of a node, by kind (README, "Where the time goes").

Usage: scripts/perf-buckets.py perf.data"""
import re
import subprocess
import sys

data = sys.argv[1]
out = subprocess.run(["perf","report","-i",data,"--no-children","--sort","sym","--stdio"],capture_output=True,text=True).stdout
b = {}
rules = [
 ("kernel: UDP send/receive, scheduling, fsync", lambda s: s.startswith("[k]")),
 ("QUIC and TLS crypto (quinn, rustls, ring AES-GCM)", lambda s: any(x in s for x in ("quinn","rustls","aes","gcm","ghash","chacha","poly1305"))),
 ("SHA-256 (command digests)", lambda s: "sha256" in s),
 ("memcpy/memmove", lambda s: "memmove" in s or "memcpy" in s),
 ("memcmp (comparing commands)", lambda s: "memcmp" in s),
 ("allocator", lambda s: any(x in s for x in ("malloc","free","realloc","_int_","cfree"))),
 ("bincode/serde codec", lambda s: "bincode" in s or "serde" in s),
 ("c-structs (history/sequence)", lambda s: "cstruct" in s),
 ("protocol core (replica, learner, acceptor)", lambda s: "gpaxos_node::protocol" in s),
 ("tokio runtime", lambda s: "tokio" in s),
 ("node server, net, storage", lambda s: "gpaxos_node" in s),
]
total = 0.0
for line in out.splitlines():
    m = re.match(r"\s+([0-9.]+)%\s+(\[[k.]\])\s+(.*)", line)
    if not m: continue
    pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
    s = kind + " " + sym
    total += pct
    for name, f in rules:
        if f(s):
            b[name] = b.get(name, 0) + pct
            break
    else:
        b["other"] = b.get("other", 0) + pct
for k, v in sorted(b.items(), key=lambda x: -x[1]):
    print(f"{v:5.1f}%  {k}")
