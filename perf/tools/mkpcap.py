#!/usr/bin/env python3
"""Write a pcap of crafted Ethernet/IPv4 frames towards a VIP, for DPDK net_pcap replay.

Usage: mkpcap.py OUT.pcap --flows N [--vip 198.18.100.1] [--port 80] [--mix syn|data|udp|mixed]
                 [--size 64] [--packets P] [--dst-mac ..] [--src-mac ..] [--seed S]

Each frame carries valid IPv4 and TCP/UDP checksums. Flows are distinct 5-tuples (source
198.18.x.y, random source ports); `--packets` frames are written round-robin over the flows
(default: one per flow, at most 65536 frames: net_pcap loads the whole file into mbufs).
Standard library only, so it runs anywhere the benchmark runs.
"""
import argparse
import random
import struct


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac(s: str) -> bytes:
    return bytes(int(x, 16) for x in s.split(":"))


def ip4(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def frame(src_mac, dst_mac, sip, dip, sport, dport, kind, size, seq):
    if kind == "udp":
        proto = 17
        l4len = max(8, size - 14 - 20)
        payload = bytes(l4len - 8)
        l4 = struct.pack("!HHHH", sport, dport, l4len, 0) + payload
        pseudo = sip + dip + struct.pack("!BBH", 0, proto, len(l4))
        c = csum(pseudo + l4) or 0xFFFF
        l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    else:
        proto = 6
        flags = 0x02 if kind == "syn" else 0x18  # SYN, or PSH|ACK
        opts = b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + bytes(8) + b"\x01\x03\x03\x07" if kind == "syn" else b""
        hlen = 20 + len(opts)
        plen = max(0, size - 14 - 20 - hlen)
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, 0 if kind == "syn" else 1,
                         (hlen // 4) << 4, flags, 65535, 0, 0) + opts + bytes(plen)
        pseudo = sip + dip + struct.pack("!BBH", 0, proto, len(l4))
        c = csum(pseudo + l4)
        l4 = l4[:16] + struct.pack("!H", c) + l4[18:]
    tot = 20 + len(l4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, seq & 0xFFFF, 0x4000, 64, proto, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    f = dst_mac + src_mac + b"\x08\x00" + ip + l4
    if len(f) < 60:
        f += bytes(60 - len(f))
    return f


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--flows", type=int, default=1024)
    ap.add_argument("--packets", type=int, default=0)
    ap.add_argument("--vip", default="198.18.100.1")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--mix", default="syn", choices=["syn", "data", "udp", "mixed"])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--dst-mac", default="02:00:00:00:00:01")
    ap.add_argument("--src-mac", default="02:00:00:00:00:02")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not 60 <= a.size <= 1514:
        ap.error("--size must be 60..1514 (frame without FCS)")
    rnd = random.Random(a.seed)
    n = a.packets or min(a.flows, 65536)
    flows = []
    for j in range(a.flows):
        i = j + 1  # never .0
        sip = bytes([198, 18 + (i >> 24 & 1), (i >> 8) & 0xFF, i & 0xFF]) if a.flows > 65536 else \
            bytes([198, 18, (i >> 8) & 0xFF, i & 0xFF])
        flows.append((sip, rnd.randrange(1024, 65535)))
    kinds = {"syn": ["syn"], "data": ["data"], "udp": ["udp"], "mixed": ["syn", "data", "data", "udp"]}[a.mix]
    with open(a.out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        dm, sm, vip = mac(a.dst_mac), mac(a.src_mac), ip4(a.vip)
        for i in range(n):
            sip, sport = flows[i % a.flows]
            fr = frame(sm, dm, sip, vip, sport, a.port, kinds[i % len(kinds)], a.size, i)
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)) + fr)
    print(f"{a.out}: {n} frames, {a.flows} flows, mix={a.mix}, size={a.size}")


if __name__ == "__main__":
    main()
