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
