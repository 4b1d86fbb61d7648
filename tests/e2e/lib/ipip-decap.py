#!/usr/bin/env python3
"""Userspace IPIP decapsulator for test backends, used when the kernel lacks CONFIG_NET_IPIP.

Receives every IPv4-in-IPv4 packet addressed to this namespace on a raw IPPROTO_IPIP socket,
strips the outer header and writes the inner packet into a TUN device, so the kernel receives it
as if a `tunl0` device had decapsulated it. Usage: ipip-decap.py TUN_NAME (runs until killed).
"""
import fcntl
import os
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000

name = sys.argv[1]
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
while True:
    pkt = sock.recv(65535)
    if len(pkt) < 20:
        continue
    ihl = (pkt[0] & 0x0F) * 4
    inner = pkt[ihl:]
    if len(inner) >= 20 and inner[0] >> 4 == 4:
        os.write(fd, inner)
