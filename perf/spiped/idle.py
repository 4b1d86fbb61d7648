#!/usr/bin/env python3
"""Idle established connections for the memory-per-connection benchmark.

usage: idle.py PORT N STOPFILE
Opens N connections to 127.0.0.1:PORT, proves each is established end to end (one byte sent and
echoed through the tunnel and the echo server), prints "ready N" and then holds them, idle, until
STOPFILE exists (at most 10 minutes). Exits 1 if any connection fails.
"""
import os
import socket
import sys
import time

port, n, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"i")
    if s.recv(1) != b"i":
        print("connection %d: no echo" % i, file=sys.stderr)
        sys.exit(1)
    conns.append(s)
print("ready %d" % len(conns), flush=True)
deadline = time.monotonic() + 600
while not os.path.exists(stop) and time.monotonic() < deadline:
    time.sleep(0.1)
for s in conns:
    s.close()
