#!/usr/bin/env python3
"""Independent re-computation of the native spiped protocol's test vectors (docs/PROTOCOL.md,
"Test vectors"), written from the spec only: hashlib/hmac for SHA-256, HMAC and HKDF, the
`cryptography` package for X25519, AES-256-GCM and ChaCha20-Poly1305.
Run: python3 tests/vectors/spiped_native_kat.py   (needs: pip install cryptography)"""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization as ser

def sha(b): return hashlib.sha256(b).digest()
def mac(k, m): return hmac.new(k, m, hashlib.sha256).digest()
def extract(salt, ikm): return mac(salt, ikm)
def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = mac(prk, t + info + bytes([i])); out += t; i += 1
    return out[:n]
L = lambda s: b"spiped native v1 " + s

VERSION = 2
def hello(role, nonce, share=b""):
    return b"spNP" + bytes([VERSION, role, 1 if share else 0]) + nonce + share
def frame(ty, body): return bytes([ty]) + struct.pack(">H", len(body)) + body

def record_keys(s): return expand(s, L(b"key"), 32), expand(s, L(b"iv"), 12)
def seal(suite, secret, ctr, ty, pt):
    key, iv = record_keys(secret)
    nonce = iv[:4] + (int.from_bytes(iv[4:], "big") ^ ctr).to_bytes(8, "big")
    hdr = bytes([ty]) + struct.pack(">H", len(pt))
    aead = AESGCM(key) if suite == 1 else ChaCha20Poly1305(key)
    return hdr + aead.encrypt(nonce, pt, hdr)

def handshake(pfs, early=False):
    """early: the responder's public key goes in its Hello instead of its key share."""
    K = sha(b"")
    ni, nr = bytes(range(32)), bytes(range(32, 64))
    a = X25519PrivateKey.from_private_bytes(bytes.fromhex(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    b = X25519PrivateKey.from_private_bytes(bytes.fromhex(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
    raw = lambda k: k.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
    share_r = raw(b) if pfs else b""
    hi, hr = hello(1, ni), hello(2, nr, share_r if early else b"")
    salt = ni + nr
    prk_c = extract(salt, K)
    kci, kcr = expand(prk_c, L(b"confirm i"), 32), expand(prk_c, L(b"confirm r"), 32)
    share_i = raw(a) if pfs else b""
    body = bytes([1 if pfs else 0, 2, 1, 2]) + share_i
    ks_i_nomac = frame(0x10, body + bytes(32))[:-32]
    ks_i = ks_i_nomac + mac(kci, sha(hi + hr + ks_i_nomac))
    in_ks_r = b"" if early else share_r
    ks_r_nomac = frame(0x11, bytes([1 if in_ks_r else 0, 1]) + in_ks_r + bytes(32))[:-32]
    ks_r = ks_r_nomac + mac(kcr, sha(hi + hr + ks_i + ks_r_nomac))
    th = sha(hi + hr + ks_i + ks_r)
    dh = a.exchange(X25519PublicKey.from_public_bytes(share_r)) if pfs else b""
    prk_t = extract(salt, K + dh)
    s_i2r = expand(prk_t, L(b"traffic i2r") + th, 32)
    s_r2i = expand(prk_t, L(b"traffic r2i") + th, 32)
    rec = seal(1, s_i2r, 0, 1, b"hello")
    close = seal(1, s_r2i, 0, 2, b"")
    return dict(kc_i=kci, kc_r=kcr, dh=dh, th=th, s_i2r=s_i2r, s_r2i=s_r2i,
                wire=[hi, hr, ks_i, ks_r, rec, close])

for pfs, early, name in ((True, False, "PFS"), (True, True, "PFS, responder share in Hello_R"),
                         (False, False, "NO PFS")):
    v = handshake(pfs, early)
    print(name)
    for k in ("kc_i", "kc_r", "dh", "th", "s_i2r", "s_r2i"):
        print(f"  {k} = {v[k].hex()}")
    for n, w in zip(("Hello_I", "Hello_R", "KeyShare_I", "KeyShare_R", "record I->R 'hello'",
                     "close R->I"), v["wire"]):
        print(f"  {n} = {w.hex()}")

print("RECORDS (s_i2r = 11 x 32)")
s = bytes([0x11]) * 32
k, iv = record_keys(s)
print(f"  key = {k.hex()}\n  iv = {iv.hex()}")
for suite, name in ((1, "AES-256-GCM"), (2, "ChaCha20-Poly1305")):
    print(f"  {name} ctr 0 'hello' = {seal(suite, s, 0, 1, b'hello').hex()}")
    print(f"  {name} ctr 1 'hello' = {seal(suite, s, 1, 1, b'hello').hex()}")
    print(f"  {name} ctr 2 close   = {seal(suite, s, 2, 2, b'').hex()}")
nxt = expand(s, L(b"next"), 32)
print(f"  next secret = {nxt.hex()}")
print(f"  AES-256-GCM ctr 2^24 'hello' = {seal(1, nxt, 1 << 24, 1, b'hello').hex()}")
