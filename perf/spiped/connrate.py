#!/usr/bin/env python3
"""Sequential connection rate (research spiped.md 5.4).

usage: connrate.py PORT SECONDS
Strictly one connection at a time for SECONDS: connect to 127.0.0.1:PORT, TCP_NODELAY, send one
byte, read the one-byte echo, close. Prints one JSON line:
{"conns": N, "failed": F, "secs": T, "rate": N/T, "p50_ms": median latency}.
"""
import json
import socket
import sys
import time

port, secs = int(sys.argv[1]), float(sys.argv[2])
lat = []
failed = 0
t0 = time.perf_counter()
end = t0 + secs
while True:
    now = time.perf_counter()
    if now >= end:
        break
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            failed += 1
        s.close()
        lat.append(time.perf_counter() - now)
    except OSError:
        failed += 1
        time.sleep(0.01)
t = time.perf_counter() - t0
lat.sort()
print(json.dumps({
    "conns": len(lat), "failed": failed, "secs": round(t, 3),
    "rate": round(len(lat) / t, 1),
    "p50_ms": round(lat[len(lat) // 2] * 1000, 3) if lat else None,
}))
