//! The native record layer (docs/PROTOCOL.md part 1, "Records").
//!
//! A record is `type (1) || plaintext length (2, BE) || ciphertext || tag (16)`; the 3-byte
//! header is the AEAD's associated data and the nonce is `iv XOR (0^32 || be64(counter))` with a
//! per-direction key, iv and counter that never appear on the wire. So any modified, replayed,
//! reordered or dropped record fails authentication at the receiver and ends the connection.
//!
//! Contract:
//! - `seal` copies the plaintext once into the caller's buffer and encrypts it there; `open`
//!   copies the ciphertext once into the caller's buffer and decrypts it there. No allocation.
//! - The header is checked (type, length ≤ 16384) before the body is awaited; the tag is checked
//!   before any plaintext is returned; counters advance only after a record authenticated.
//! - After `open` fails once, every later call fails with the same error: nothing after a bad
//!   record can ever be delivered.
//! - Every [`REKEY_INTERVAL`] records a direction replaces its secret with
//!   `HKDF-Expand(secret, "… next")`, keeping each AEAD key well within its usage bound; at
//!   counter 2^64 − 1 the direction refuses to go on ([`RecordError::CounterExhausted`]).
//! - Secrets are wiped on drop. ring's internal expanded key schedules are not (ring offers no
//!   way to); they live only as long as the connection.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::super::{Opened, RecordError, Role, Transport};
use super::schedule::{self, PeerVerified, Secret, TrafficSecrets, IV_LEN};
use super::wire::{emit_record_header, parse_record_header, RecordKind};
use super::{Suite, MAX_PLAINTEXT, MAX_RECORD_LEN, RECORD_HEADER_LEN, REKEY_INTERVAL, TAG_LEN};

/// The last counter value is never used, so a counter can always be incremented.
const COUNTER_LIMIT: u64 = u64::MAX;

/// One direction's keys and counter.
struct Direction {
    suite: Suite,
    secret: Secret,
    key: LessSafeKey,
    iv: [u8; IV_LEN],
    counter: u64,
}

impl Direction {
    fn new(suite: Suite, secret: Secret) -> Direction {
        let (key, iv) = Self::keys(suite, &secret);
        Direction { suite, secret, key, iv, counter: 0 }
    }

    /// # Panics
    /// Never: the key is exactly 32 bytes, the length both suites take.
    fn keys(suite: Suite, secret: &[u8; 32]) -> (LessSafeKey, [u8; IV_LEN]) {
        let (key, iv) = schedule::record_key_iv(secret);
        let key = UnboundKey::new(suite.aead(), &key[..]).expect("32-byte AEAD key");
        (LessSafeKey::new(key), iv)
    }

    fn check(&self) -> Result<(), RecordError> {
        if self.counter >= COUNTER_LIMIT {
            return Err(RecordError::CounterExhausted);
        }
        Ok(())
    }

    fn nonce(&self) -> Nonce {
        let mut n = self.iv;
        for (b, c) in n[IV_LEN - 8..].iter_mut().zip(self.counter.to_be_bytes()) {
            *b ^= c;
        }
        Nonce::assume_unique_for_key(n)
    }

    /// Moves to the next counter value, re-keying at every multiple of [`REKEY_INTERVAL`].
    fn advance(&mut self) {
        self.counter += 1;
        if self.counter % REKEY_INTERVAL == 0 {
            self.secret = schedule::next_secret(&self.secret);
            (self.key, self.iv) = Self::keys(self.suite, &self.secret);
        }
    }
}

/// The traffic phase of a native connection.
pub struct NativeTransport {
    send: Direction,
    recv: Direction,
    forward_secret: bool,
    sent_close: bool,
    peer_closed: bool,
    failed: Option<RecordError>,
}

impl std::fmt::Debug for NativeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeTransport")
            .field("suite", &self.send.suite)
            .field("forward_secret", &self.forward_secret)
            .field("sent", &self.send.counter)
            .field("received", &self.recv.counter)
            .finish_non_exhaustive()
    }
}

impl NativeTransport {
    /// Builds the transport for `role` from the handshake's traffic secrets. Needs the evidence
    /// that the peer's confirmation MAC verified.
    pub fn new(
        role: Role,
        suite: Suite,
        secrets: TrafficSecrets,
        forward_secret: bool,
        _proof: PeerVerified,
    ) -> NativeTransport {
        let (send, recv) = match role {
            Role::Initiator => (secrets.i2r, secrets.r2i),
            Role::Responder => (secrets.r2i, secrets.i2r),
        };
        NativeTransport {
            send: Direction::new(suite, send),
            recv: Direction::new(suite, recv),
            forward_secret,
            sent_close: false,
            peer_closed: false,
            failed: None,
        }
    }

    /// The AEAD suite in use.
    pub fn suite(&self) -> Suite {
        self.send.suite
    }

    /// True when the connection's keys depend on an ephemeral X25519 exchange.
    pub fn forward_secret(&self) -> bool {
        self.forward_secret
    }

    /// Test hook: jump both counters (e.g. to just below the limit). Both ends must be moved to
    /// matching values; the secrets are not ratcheted to match.
    #[cfg(test)]
    pub(crate) fn set_counters(&mut self, send: u64, recv: u64) {
        self.send.counter = send;
        self.recv.counter = recv;
    }

    /// # Panics
    /// Never in practice: ring's AEADs only refuse inputs far larger than a record.
    fn seal_record(&mut self, kind: RecordKind, plain: &[u8], out: &mut [u8]) -> Result<usize, RecordError> {
        let total = RECORD_HEADER_LEN + plain.len() + TAG_LEN;
        if out.len() < total {
            return Err(RecordError::BufferTooSmall(out.len()));
        }
        self.send.check()?;
        let (header, rest) = out.split_at_mut(RECORD_HEADER_LEN);
        let header: &mut [u8; RECORD_HEADER_LEN] = header.try_into().expect("split at header length");
        emit_record_header(kind, header);
        let (body, rest) = rest.split_at_mut(plain.len());
        body.copy_from_slice(plain);
        let tag = self
            .send
            .key
            .seal_in_place_separate_tag(self.send.nonce(), Aad::from(*header), body)
            .expect("record fits the AEAD's input limit");
        rest[..TAG_LEN].copy_from_slice(tag.as_ref());
        self.send.advance();
        Ok(total)
    }

    fn open_record(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, RecordError> {
        if self.peer_closed {
            if input.is_empty() {
                return Ok(Opened::Incomplete { need: RECORD_HEADER_LEN });
            }
            return Err(RecordError::AfterClose);
        }
        let Some(header) = input.get(..RECORD_HEADER_LEN) else {
            return Ok(Opened::Incomplete { need: RECORD_HEADER_LEN });
        };
        let header: [u8; RECORD_HEADER_LEN] = header.try_into().expect("slice of header length");
        let kind = parse_record_header(&header)?;
        let len = match kind {
            RecordKind::Data(len) => len,
            RecordKind::Close => 0,
        };
        let total = RECORD_HEADER_LEN + len + TAG_LEN;
        if input.len() < total {
            return Ok(Opened::Incomplete { need: total });
        }
        let Some(body) = out.get_mut(..len) else {
            return Err(RecordError::BufferTooSmall(out.len()));
        };
        self.recv.check()?;
        body.copy_from_slice(&input[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&input[RECORD_HEADER_LEN + len..total]);
        self.recv
            .key
            .open_in_place_separate_tag(self.recv.nonce(), Aad::from(header), Tag::from(tag), body, 0..)
            .map_err(|_| RecordError::BadRecordMac)?;
        self.recv.advance();
        Ok(match kind {
            RecordKind::Data(len) => Opened::Data { consumed: total, len },
            RecordKind::Close => {
                self.peer_closed = true;
                Opened::Close { consumed: total }
            }
        })
    }
}

impl Transport for NativeTransport {
    fn max_plaintext(&self) -> usize {
        MAX_PLAINTEXT
    }

    fn sealed_len(&self, len: usize) -> usize {
        RECORD_HEADER_LEN + len + TAG_LEN
    }

    fn max_record_len(&self) -> usize {
        MAX_RECORD_LEN
    }

    fn seal(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, RecordError> {
        if self.sent_close {
            return Err(RecordError::SealAfterClose);
        }
        if plain.is_empty() {
            return Err(RecordError::Empty);
        }
        if plain.len() > MAX_PLAINTEXT {
            return Err(RecordError::TooLarge(plain.len()));
        }
        self.seal_record(RecordKind::Data(plain.len()), plain, out)
    }

    fn seal_close(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecordError> {
        if self.sent_close {
            return Err(RecordError::SealAfterClose);
        }
        let n = self.seal_record(RecordKind::Close, &[], out)?;
        self.sent_close = true;
        Ok(Some(n))
    }

    fn open(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, RecordError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.open_record(input, out);
        match &result {
            // A too-small buffer is the caller's mistake, not the peer's: let it retry.
            Err(RecordError::BufferTooSmall(_)) | Ok(_) => {}
            Err(e) => self.failed = Some(e.clone()),
        }
        result
    }

    fn peer_eof(&self, leftover: usize) -> Result<(), RecordError> {
        if self.peer_closed && leftover == 0 && self.failed.is_none() {
            Ok(())
        } else {
            Err(RecordError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::native::wire::{RECORD_CLOSE, RECORD_DATA};

    fn secrets() -> TrafficSecrets {
        TrafficSecrets { i2r: Secret::new([0x11; 32]), r2i: Secret::new([0x22; 32]) }
    }

    /// (initiator, responder) built from fixed secrets.
    fn pair(suite: Suite) -> (NativeTransport, NativeTransport) {
        (
            NativeTransport::new(Role::Initiator, suite, secrets(), true, PeerVerified::for_tests()),
            NativeTransport::new(Role::Responder, suite, secrets(), true, PeerVerified::for_tests()),
        )
    }

    fn seal(t: &mut NativeTransport, msg: &[u8]) -> Vec<u8> {
        let mut out = vec![0xEE; t.sealed_len(msg.len())];
        let n = t.seal(msg, &mut out).unwrap();
        assert_eq!(n, out.len());
        out
    }

    fn close(t: &mut NativeTransport) -> Vec<u8> {
        let mut out = vec![0xEE; RECORD_HEADER_LEN + TAG_LEN];
        let n = t.seal_close(&mut out).unwrap().unwrap();
        assert_eq!(n, out.len());
        out
    }

    fn open(t: &mut NativeTransport, wire: &[u8]) -> Result<Opened, RecordError> {
        let mut out = vec![0u8; MAX_PLAINTEXT];
        t.open(wire, &mut out)
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// 1 byte and a full 16 KiB record round-trip in both directions with both suites, and the
    /// sizes on the wire are header + plaintext + tag.
    #[test]
    fn round_trip_both_suites() {
        for suite in Suite::ALL {
            let (mut i, mut r) = pair(suite);
            for msg in [&b"x"[..], &[0xA5; MAX_PLAINTEXT][..]] {
                let wire = seal(&mut i, msg);
                assert_eq!(wire.len(), 3 + msg.len() + 16);
                let mut out = vec![0u8; MAX_PLAINTEXT];
                assert_eq!(
                    r.open(&wire, &mut out).unwrap(),
                    Opened::Data { consumed: wire.len(), len: msg.len() }
                );
                assert_eq!(&out[..msg.len()], msg);
                let back = seal(&mut r, msg);
                assert!(matches!(open(&mut i, &back), Ok(Opened::Data { .. })));
            }
        }
    }

    /// Known-answer records (also in docs/PROTOCOL.md): with s_i2r = 0x11 × 32, the initiator's
    /// first record "hello" (counter 0), its second record, a close (counter 2).
    #[test]
    fn record_known_answers() {
        let (mut i, _) = pair(Suite::Aes256Gcm);
        assert_eq!(hex(&seal(&mut i, b"hello")), KAT_AES_HELLO_0);
        assert_eq!(hex(&seal(&mut i, b"hello")), KAT_AES_HELLO_1);
        assert_eq!(hex(&close(&mut i)), KAT_AES_CLOSE_2);
        let (mut i, _) = pair(Suite::ChaCha20Poly1305);
        assert_eq!(hex(&seal(&mut i, b"hello")), KAT_CHACHA_HELLO_0);
        assert_eq!(hex(&seal(&mut i, b"hello")), KAT_CHACHA_HELLO_1);
        assert_eq!(hex(&close(&mut i)), KAT_CHACHA_CLOSE_2);
    }

    const KAT_AES_HELLO_0: &str = "01000541763e492e453c391ae046082c3fb806443bfe3e9d";
    const KAT_AES_HELLO_1: &str = "010005a16f937664dfb024d34dd61d367532680a50b64a6f";
    const KAT_AES_CLOSE_2: &str = "0200001cea7b84eab3027e4044f415bc7e3b91";
    const KAT_CHACHA_HELLO_0: &str = "010005efc91edb02b1f15a2ba3da1c5bebf3b1b81e9e5fca";
    const KAT_CHACHA_HELLO_1: &str = "01000511b15e084fb6902460713e64fc8575d79133a7875e";
    const KAT_CHACHA_CLOSE_2: &str = "0200000e723a5b88f90036efa061d31db64e94";

    /// Known answer after the first re-key: the record at counter 2^24 is sealed with the key
    /// derived from next(s) = HKDF-Expand(s, "spiped native v1 next").
    #[test]
    fn rekey_known_answer() {
        let (mut i, _) = pair(Suite::Aes256Gcm);
        i.set_counters(REKEY_INTERVAL - 1, 0);
        let _ = seal(&mut i, b"x");
        assert_eq!(
            hex(&i.send.secret[..]),
            "bd23e89423e35ef4022408d98cf012b59e2e3a357fe433be2a4339a4e343220e"
        );
        assert_eq!(hex(&seal(&mut i, b"hello")), "0100050bf0e282c1803b01c5558a42e375d19cd400e41c15");
    }

    /// Every single-bit flip anywhere in a record (header, ciphertext or tag) is rejected, and
    /// never yields data.
    #[test]
    fn any_flipped_bit_is_rejected() {
        let (mut i, _) = pair(Suite::Aes256Gcm);
        let wire = seal(&mut i, b"attack at dawn");
        for bit in 0..wire.len() * 8 {
            let (_, mut r) = pair(Suite::Aes256Gcm);
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match open(&mut r, &bad) {
                Err(_) | Ok(Opened::Incomplete { .. }) => {}
                other => panic!("bit {bit}: {other:?}"),
            }
        }
    }

    /// A replayed record fails: the receiver's counter moved on.
    #[test]
    fn replayed_record_is_rejected() {
        let (mut i, mut r) = pair(Suite::ChaCha20Poly1305);
        let a = seal(&mut i, b"a");
        assert!(matches!(open(&mut r, &a), Ok(Opened::Data { .. })));
        assert_eq!(open(&mut r, &a), Err(RecordError::BadRecordMac));
    }

    /// Records delivered out of order fail at the first misplaced one.
    #[test]
    fn reordered_record_is_rejected() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let a = seal(&mut i, b"a");
        let b = seal(&mut i, b"b");
        assert_eq!(open(&mut r, &b), Err(RecordError::BadRecordMac));
        // And the transport stays failed: even the right record is refused now.
        assert_eq!(open(&mut r, &a), Err(RecordError::BadRecordMac));
    }

    /// A dropped record makes the next one fail.
    #[test]
    fn dropped_record_is_rejected() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let _lost = seal(&mut i, b"a");
        let b = seal(&mut i, b"b");
        assert_eq!(open(&mut r, &b), Err(RecordError::BadRecordMac));
    }

    /// A record sealed for one direction does not open in the other (per-direction keys), so
    /// a reflected record fails.
    #[test]
    fn reflected_record_is_rejected() {
        let (mut i, _) = pair(Suite::Aes256Gcm);
        let a = seal(&mut i, b"a");
        let (mut i2, _) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut i2, &a), Err(RecordError::BadRecordMac));
    }

    /// Oversized lengths and unknown types are refused from the 3-byte header alone, before
    /// the body is awaited.
    #[test]
    fn header_checked_before_body() {
        let (_, mut r) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut r, &[RECORD_DATA, 0x40, 0x01]), Err(RecordError::TooLarge(16385)));
        let (_, mut r) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut r, &[0x07, 0, 1]), Err(RecordError::UnknownType(7)));
        let (_, mut r) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut r, &[RECORD_DATA, 0, 0]), Err(RecordError::Empty));
        let (_, mut r) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut r, &[RECORD_CLOSE, 0, 1]), Err(RecordError::CloseWithPayload(1)));
    }

    /// Partial input asks for exactly what is missing: the header, then the whole record.
    #[test]
    fn incomplete_input_reports_need() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let wire = seal(&mut i, b"hello");
        assert_eq!(open(&mut r, &[]), Ok(Opened::Incomplete { need: 3 }));
        assert_eq!(open(&mut r, &wire[..2]), Ok(Opened::Incomplete { need: 3 }));
        assert_eq!(open(&mut r, &wire[..3]), Ok(Opened::Incomplete { need: 24 }));
        assert_eq!(open(&mut r, &wire[..23]), Ok(Opened::Incomplete { need: 24 }));
        // Incomplete reads do not advance the counter.
        assert!(matches!(open(&mut r, &wire), Ok(Opened::Data { consumed: 24, len: 5 })));
    }

    /// Anything after the peer's close record is an error; an empty buffer after it is not.
    #[test]
    fn data_after_close_is_rejected() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let c = close(&mut i);
        assert_eq!(open(&mut r, &c), Ok(Opened::Close { consumed: 19 }));
        assert_eq!(open(&mut r, &[]), Ok(Opened::Incomplete { need: 3 }));
        assert_eq!(open(&mut r, &[RECORD_DATA]), Err(RecordError::AfterClose));
        assert_eq!(r.peer_eof(0), Err(RecordError::Truncated), "an error after close taints the end");
    }

    /// The end of the stream is clean only after an authenticated close with nothing left over;
    /// a bare EOF (forged FIN) or leftover bytes (partial record) is Truncated.
    #[test]
    fn truncation_is_told_apart_from_clean_close() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let d = seal(&mut i, b"data");
        assert!(matches!(open(&mut r, &d), Ok(Opened::Data { .. })));
        assert_eq!(r.peer_eof(0), Err(RecordError::Truncated));
        assert_eq!(r.peer_eof(5), Err(RecordError::Truncated));
        let c = close(&mut i);
        assert!(matches!(open(&mut r, &c), Ok(Opened::Close { .. })));
        assert_eq!(r.peer_eof(0), Ok(()));
        assert_eq!(r.peer_eof(1), Err(RecordError::Truncated));
    }

    /// A forged close (a close header with a garbage tag) is not accepted as a clean end.
    #[test]
    fn forged_close_is_rejected() {
        let (_, mut r) = pair(Suite::Aes256Gcm);
        let mut fake = vec![RECORD_CLOSE, 0, 0];
        fake.extend_from_slice(&[0; TAG_LEN]);
        assert_eq!(open(&mut r, &fake), Err(RecordError::BadRecordMac));
        assert_eq!(r.peer_eof(0), Err(RecordError::Truncated));
    }

    /// Seal refuses empty, oversized, too-small buffers and anything after our own close.
    #[test]
    fn seal_misuse() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        let mut out = vec![0u8; MAX_RECORD_LEN + 1];
        assert_eq!(i.seal(&[], &mut out), Err(RecordError::Empty));
        assert_eq!(i.seal(&[0; MAX_PLAINTEXT + 1], &mut out), Err(RecordError::TooLarge(16385)));
        assert_eq!(i.seal(b"abc", &mut out[..21]), Err(RecordError::BufferTooSmall(21)));
        // None of that consumed a counter value: the next record still opens.
        let wire = seal(&mut i, b"abc");
        assert!(matches!(open(&mut r, &wire), Ok(Opened::Data { .. })));
        let _ = close(&mut i);
        assert_eq!(i.seal(b"abc", &mut out), Err(RecordError::SealAfterClose));
        assert_eq!(i.seal_close(&mut out), Err(RecordError::SealAfterClose));
    }

    /// At counter 2^64 − 2 one more record goes through; then both the sender and the receiver
    /// refuse to go on rather than reuse a nonce.
    #[test]
    fn counter_exhaustion() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        i.set_counters(u64::MAX - 1, 0);
        r.set_counters(0, u64::MAX - 1);
        let last = seal(&mut i, b"last");
        assert!(matches!(open(&mut r, &last), Ok(Opened::Data { .. })));
        let mut out = vec![0u8; MAX_RECORD_LEN];
        assert_eq!(i.seal(b"one more", &mut out), Err(RecordError::CounterExhausted));
        assert_eq!(i.seal_close(&mut out), Err(RecordError::CounterExhausted));
        // The receiver refuses too (here fed a replay of the last record; the counter check
        // comes before any decryption).
        assert_eq!(open(&mut r, &last), Err(RecordError::CounterExhausted));
    }

    /// Crossing a re-key boundary works in step on both ends, and the key really changes: a
    /// record sealed at counter REKEY_INTERVAL differs from one sealed with the un-ratcheted key.
    #[test]
    fn rekey_boundary() {
        let (mut i, mut r) = pair(Suite::ChaCha20Poly1305);
        i.set_counters(REKEY_INTERVAL - 2, 0);
        r.set_counters(0, REKEY_INTERVAL - 2);
        for _ in 0..4 {
            let w = seal(&mut i, b"across");
            assert!(matches!(open(&mut r, &w), Ok(Opened::Data { .. })));
        }
        let (mut ratcheted, _) = pair(Suite::ChaCha20Poly1305);
        ratcheted.set_counters(REKEY_INTERVAL - 1, 0);
        let _ = seal(&mut ratcheted, b"x");
        let after = seal(&mut ratcheted, b"x");
        let (mut stale, _) = pair(Suite::ChaCha20Poly1305);
        stale.set_counters(REKEY_INTERVAL, 0);
        assert_ne!(after, seal(&mut stale, b"x"));
    }

    /// After any failure, open keeps failing with the same error, even on valid input.
    #[test]
    fn failure_is_sticky() {
        let (mut i, mut r) = pair(Suite::Aes256Gcm);
        assert_eq!(open(&mut r, &[0x09, 0, 1]), Err(RecordError::UnknownType(9)));
        let good = seal(&mut i, b"good");
        assert_eq!(open(&mut r, &good), Err(RecordError::UnknownType(9)));
    }
}
