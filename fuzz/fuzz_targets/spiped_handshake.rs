//! Fuzzes the native handshake parser and state machine.
//!
//! Byte 0 picks the role (bit 0), the -f/-g policy (bits 1-2) and a key pool with a ready pair
//! (bit 3: the responder sends its share in Hello_R) of a fresh native handshake; byte 1 seeds
//! the chunk sizes. The rest is fed to `read_from` in chunks of 1 to 64 bytes, with
//! `precompute` between chunks as the I/O layer calls it (so an initiator's early agreement with
//! a share from a fuzzed Hello_R runs too).
//! Properties: no panic; `read_from` never reports more consumed than it was given; once it
//! errs it keeps erring (a failed handshake never recovers); a handshake fed bytes that carry no
//! valid MAC never completes, so `into_transport` must fail.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spiped::proto::native::fuzzing;
use spiped::proto::{Pfs, Role};

fuzz_target!(|data: &[u8]| {
    let [b0, b1, rest @ ..] = data else { return };
    let role = if b0 & 1 == 0 {
        Role::Responder
    } else {
        Role::Initiator
    };
    let pfs = match (b0 >> 1) & 3 {
        0 => Pfs::Preferred,
        1 => Pfs::Disabled,
        _ => Pfs::Required,
    };
    let mut hs = fuzzing::handshake(role, pfs, b0 & 8 != 0);
    let mut sink = Vec::new();
    hs.write_to(&mut sink);
    let mut seed = *b1;
    let mut input = rest;
    let mut failed = None;
    while !input.is_empty() {
        seed = seed.wrapping_mul(73).wrapping_add(41);
        let n = usize::from(seed % 64 + 1).min(input.len());
        let (chunk, tail) = input.split_at(n);
        match hs.read_from(chunk) {
            Ok(used) => {
                assert!(failed.is_none(), "a failed handshake accepted input again");
                assert!(used <= chunk.len());
                if used < chunk.len() {
                    // Only a finished handshake leaves bytes over, and random bytes cannot
                    // finish one (the peer's MAC cannot verify).
                    panic!("handshake stopped consuming without an error");
                }
            }
            Err(e) => failed = Some(e),
        }
        hs.write_to(&mut sink);
        if let Err(e) = hs.precompute() {
            failed = Some(e);
        }
        input = tail;
    }
    assert!(!hs.is_done());
    assert!(hs.into_transport().is_err());
});
