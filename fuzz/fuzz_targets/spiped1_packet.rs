//! Fuzzes the spiped 1.x record opener and the responder's handshake parser.
//!
//! Each input drives one in-memory `-f` handshake (cheap: no modexp), then:
//! - byte 0 even: the rest is fed raw to the responder's `Transport::open` until it errors or
//!   asks for more (no panic, no out-of-bounds, `consumed`/`len` within limits);
//! - byte 0 odd: the rest is split into a payload and an XOR mask; the payload is sealed by the
//!   initiator, the mask applied to the packets, and the responder must return exactly the
//!   payload when the mask is all zero and `BadRecordMac` on the first altered packet otherwise.
//!
//! The raw input is also fed to a fresh responder handshake as message 1 + 2, which must fail
//! cleanly (its MAC cannot verify) or wait for more bytes.
#![no_main]
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use spiped::key::PreSharedKey;
use spiped::proto::{self, Handshake, Opened, Pfs, ProtocolKind, RecordError, Role, SessionConfig, Transport};

fn pair(rng: &SystemRandom) -> (Box<dyn Transport>, Box<dyn Transport>) {
    let key = Arc::new(PreSharedKey::from_file_bytes(b"fuzz"));
    let cfg = |role| SessionConfig { role, pfs: Pfs::Disabled, key: Arc::clone(&key), keys: None };
    let mut c = proto::start(ProtocolKind::Spiped1, &cfg(Role::Initiator), rng).unwrap();
    let mut s = proto::start(ProtocolKind::Spiped1, &cfg(Role::Responder), rng).unwrap();
    let (mut to_s, mut to_c) = (Vec::new(), Vec::new());
    while !(c.is_done() && s.is_done() && to_s.is_empty() && to_c.is_empty()) {
        c.write_to(&mut to_s);
        s.write_to(&mut to_c);
        let n = s.read_from(&to_s).unwrap();
        to_s.drain(..n);
        let n = c.read_from(&to_c).unwrap();
        to_c.drain(..n);
    }
    (c.into_transport().unwrap(), s.into_transport().unwrap())
}

fn handshake_garbage(rng: &SystemRandom, data: &[u8]) {
    let key = Arc::new(PreSharedKey::from_file_bytes(b"fuzz"));
    let cfg = SessionConfig { role: Role::Responder, pfs: Pfs::Preferred, key, keys: None };
    let mut s: Box<dyn Handshake> = proto::start(ProtocolKind::Spiped1, &cfg, rng).unwrap();
    let mut out = Vec::new();
    s.write_to(&mut out);
    assert_eq!(out.len(), 32, "the server sends only its nonce before message 2");
    match s.read_from(data) {
        Ok(n) => {
            assert!(n <= data.len());
            assert!(!s.is_done(), "random bytes cannot authenticate");
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let rng = SystemRandom::new();
    handshake_garbage(&rng, data);
    let Some((&mode, rest)) = data.split_first() else { return };
    let (mut c, mut s) = pair(&rng);
    let mut out = vec![0u8; s.max_plaintext()];
    if mode % 2 == 0 {
        let mut input = rest;
        loop {
            match s.open(input, &mut out) {
                Ok(Opened::Incomplete { need }) => {
                    assert!(need > input.len());
                    break;
                }
                Ok(Opened::Data { consumed, len }) => {
                    assert!(consumed <= input.len() && len <= s.max_plaintext());
                    input = &input[consumed..];
                }
                Ok(Opened::Close { .. }) => panic!("spiped 1.x has no close record"),
                Err(_) => break,
            }
        }
        return;
    }
    let half = rest.len() / 2;
    let (payload, mask) = rest.split_at(half);
    let mut wire = Vec::new();
    for chunk in payload.chunks(c.max_plaintext()) {
        let start = wire.len();
        wire.resize(start + c.sealed_len(chunk.len()), 0);
        let n = c.seal(chunk, &mut wire[start..]).unwrap();
        wire.truncate(start + n);
    }
    for (w, m) in wire.iter_mut().zip(mask) {
        *w ^= m;
    }
    let tampered_at = mask.iter().take(wire.len()).position(|&m| m != 0);
    let mut got = Vec::new();
    let mut input = &wire[..];
    let mut offset = 0;
    loop {
        match s.open(input, &mut out) {
            Ok(Opened::Data { consumed, len }) => {
                assert!(tampered_at.map_or(true, |t| t >= offset + consumed), "tampered packet opened");
                got.extend_from_slice(&out[..len]);
                input = &input[consumed..];
                offset += consumed;
            }
            Ok(Opened::Incomplete { .. }) => break,
            Ok(Opened::Close { .. }) => panic!("spiped 1.x has no close record"),
            Err(e) => {
                assert_eq!(e, RecordError::BadRecordMac);
                assert!(tampered_at.is_some_and(|t| t >= offset && t < offset + 1060));
                return;
            }
        }
    }
    assert!(tampered_at.is_none());
    assert_eq!(got, payload);
});
