#!/usr/bin/env python3
"""An HTTP/1.0 download that the test keeps open until it says so: the long-lived flow of the
reload scenario.

Usage: held-get.py HOST PATH OUT GO_FILE

Connects to HOST:80 with a small receive buffer, asks for PATH and writes the body to OUT as it
arrives (flushed, so the test can read the first bytes at once). Until GO_FILE exists it reads
512 bytes every 50 ms (about 10 KB/s, so a 600 KB body lasts a minute): the flow keeps sending
ACKs through the balancer for as long as the test needs. Once GO_FILE exists it reads the rest
at full speed.

Exit status: 0 when the whole body (Content-Length bytes) arrived; 1 on a connection error;
2 when the body ended short (a broken flow); 3 when 90 s passed. Every failure prints one line
naming what happened and how many bytes had arrived. This replaces `curl --limit-rate`, whose
client-side pacing let a 600 KB download finish in 2 s on a fast run (curl 7.88), before the
reloads it was meant to span.
"""
import os
import socket
import sys
import time

DEADLINE_S = 90.0
HELD_CHUNK = 512
HELD_PAUSE_S = 0.05


def main() -> int:
    host, path, out_path, go_file = sys.argv[1:5]
    start = time.monotonic()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Before connect, so the advertised window stays small and the server cannot push the whole
    # body into our buffer while we are held.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    got = 0
    want = None
    head = b""
    try:
        sock.connect((host, 80))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        with open(out_path, "wb") as out:
            while True:
                if time.monotonic() - start > DEADLINE_S:
                    print(f"held-get: gave up after {DEADLINE_S:.0f} s with {got} body bytes", file=sys.stderr)
                    return 3
                held = not os.path.exists(go_file)
                data = sock.recv(HELD_CHUNK if held else 65536)
                if not data:
                    break
                if want is None:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    for line in head[:end].split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            want = int(value.strip())
                    if want is None:
                        print("held-get: response without Content-Length", file=sys.stderr)
                        return 1
                    data = head[end + 4:]
                out.write(data)
                out.flush()
                got += len(data)
                if held:
                    time.sleep(HELD_PAUSE_S)
    except OSError as e:
        print(f"held-get: {e!r} after {got} body bytes", file=sys.stderr)
        return 1
    if want is None or got != want:
        print(f"held-get: body ended at {got} of {want} bytes", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
