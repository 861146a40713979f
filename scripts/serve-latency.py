#!/usr/bin/env python3
"""Latency of `gpaxos-harness serve` while idle connections are open.

usage: serve-latency.py PORT IDLE PATH N

Opens IDLE connections that send nothing, then makes N sequential GETs of
PATH, each on a new connection, and prints p50, p99 and max in ms. A
request not answered in 15 s ends the measurement (exit 1).
"""
import socket
import statistics
import sys
import time


def get(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(15)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    if not data.startswith(b"HTTP/1.1 200") and not data.startswith(b"HTTP/1.0 200"):
        sys.exit(f"unexpected answer: {data[:100]!r}")
    return len(data)


def main():
    port, idle_n, path, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle_n)]
    time.sleep(0.2)
    lat = []
    size = 0
    for _ in range(n):
        t = time.perf_counter()
        try:
            size = get(port, path)
        except socket.timeout:
            print("no answer in 15 s")
            sys.exit(1)
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    print(f"{path} with {len(idle)} idle connection(s) open: {n} requests, "
          f"p50 {statistics.median(lat):.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms, {size} bytes")


if __name__ == "__main__":
    main()
