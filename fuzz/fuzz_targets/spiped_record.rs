//! Fuzzes the native record layer with a real transport pair from an in-memory handshake.
//!
//! The input is a little program run against the initiator's sealing side, building the byte
//! stream the responder will read: seal the next bytes of the input as one record, seal a close,
//! insert raw bytes, flip a bit, drop a byte, replay the last record, or cut the stream. The
//! responder then opens the stream record by record.
//! Properties: no panic; `consumed`/`len` stay within the input and the limits; the plaintext
//! delivered is always a prefix of the plaintext sealed (nothing forged, replayed, reordered or
//! corrupted is ever delivered); after the first error every later `open` errs too (no Data
//! after an error); `peer_eof` is Ok only if the whole, untampered stream including a close
//! record was read.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spiped::proto::native::fuzzing;
use spiped::proto::Opened;

fuzz_target!(|data: &[u8]| {
    let (mut tx, mut rx) = fuzzing::transport_pair();
    let mut wire: Vec<u8> = Vec::new();
    let mut sealed: Vec<u8> = Vec::new();
    let mut tampered = false;
    let mut closed = false;
    let mut last_record = 0..0;
    let mut buf = vec![0u8; tx.max_record_len()];
    let mut ops = data;
    while let [op, arg, rest @ ..] = ops {
        ops = rest;
        let arg = usize::from(*arg);
        match op % 7 {
            0 => {
                // Seal up to 4 * arg + 1 bytes (at most 1021 per op, multiple ops make big ones).
                let n = (4 * arg + 1).min(ops.len());
                if n == 0 || closed {
                    continue;
                }
                let (plain, tail) = ops.split_at(n);
                ops = tail;
                let len = tx.seal(plain, &mut buf).expect("seal");
                last_record = wire.len()..wire.len() + len;
                wire.extend_from_slice(&buf[..len]);
                sealed.extend_from_slice(plain);
            }
            1 if !closed => {
                let len = tx
                    .seal_close(&mut buf)
                    .expect("seal_close")
                    .expect("native closes in band");
                last_record = wire.len()..wire.len() + len;
                wire.extend_from_slice(&buf[..len]);
                closed = true;
            }
            2 => {
                let n = arg.min(ops.len()) % 32;
                wire.extend_from_slice(&ops[..n]);
                ops = &ops[n..];
                tampered |= n > 0;
            }
            3 if !wire.is_empty() => {
                let at = (arg * 131) % wire.len();
                wire[at] ^= 1 << (arg % 8);
                tampered = true;
            }
            4 if !wire.is_empty() => {
                wire.remove((arg * 97) % wire.len());
                tampered = true;
            }
            5 if !last_record.is_empty() && last_record.end <= wire.len() => {
                let r = wire[last_record.clone()].to_vec();
                wire.extend_from_slice(&r);
                tampered = true;
            }
            6 => {
                let keep = wire.len().saturating_sub(arg % 8);
                tampered |= keep < wire.len();
                wire.truncate(keep);
            }
            _ => {}
        }
    }

    let mut delivered: Vec<u8> = Vec::new();
    let mut out = vec![0u8; rx.max_plaintext()];
    let mut pos = 0;
    let mut errored = false;
    let mut saw_close = false;
    loop {
        match rx.open(&wire[pos..], &mut out) {
            Ok(Opened::Data { consumed, len }) => {
                assert!(!errored, "data after an error");
                assert!(consumed <= wire.len() - pos && len <= rx.max_plaintext() && len > 0);
                delivered.extend_from_slice(&out[..len]);
                pos += consumed;
            }
            Ok(Opened::Close { consumed }) => {
                assert!(!errored, "close after an error");
                assert!(consumed <= wire.len() - pos);
                pos += consumed;
                saw_close = true;
            }
            Ok(Opened::Incomplete { need }) => {
                assert!(!errored);
                assert!(need > wire.len() - pos && need <= rx.max_record_len());
                break;
            }
            Err(_) => {
                // Stays failed.
                assert!(rx.open(&wire[pos..], &mut out).is_err());
                errored = true;
                break;
            }
        }
    }
    assert!(
        sealed.starts_with(&delivered),
        "delivered bytes that were never sealed"
    );
    let clean = rx.peer_eof(wire.len() - pos).is_ok();
    if clean {
        assert!(saw_close && !errored && delivered == sealed);
    }
    if !tampered && closed {
        assert!(
            clean && delivered == sealed,
            "an untampered stream must end cleanly"
        );
    }
});
