//! The native protocol (docs/PROTOCOL.md part 1), sans-IO.
//!
//! Contract:
//! - [`start`] returns a [`Handshake`] that has already queued its `Hello`; the I/O layer drains
//!   [`Handshake::write_to`], feeds received bytes to [`Handshake::read_from`] and repeats until
//!   [`Handshake::is_done`]. The responder is done as soon as it has verified the initiator's
//!   key-confirmation MAC and queued its own key share: only then may its I/O layer connect to the
//!   plaintext target (spiped issue #429).
//! - [`Handshake::into_transport`] is the only way to obtain a [`NativeTransport`], and it needs a
//!   [`PeerVerified`] token that only the MAC check in `schedule` can mint.
//! - Parsing is by exact (type, length) before any cryptography; the responder computes no X25519
//!   for a peer that has not proven the key.
//! - Randomness comes only from the `rng` given to [`start`] (nonce and X25519 private key are drawn
//!   there, in that order); nothing here reads a clock or a socket.
//!
//! Layout: [`wire`] (byte layouts of `Hello`, `KeyShare` and records), `schedule` (HKDF key
//! schedule and confirmation MACs), `handshake` (the state machine), `record` (the transport).

use ring::rand::SecureRandom;

use super::{Handshake, HandshakeError, SessionConfig};

mod handshake;
pub mod keypool;
mod record;
mod schedule;
pub mod wire;

pub use handshake::NativeHandshake;
pub use keypool::KeyPool;
pub use record::NativeTransport;
pub use schedule::PeerVerified;

/// The protocol version this implementation speaks (byte 4 of every `Hello`). Version 2 added
/// the flags byte and the responder's optional early share to `Hello`; a version 1 peer is
/// refused with [`HandshakeError::BadVersion`].
pub const VERSION: u8 = 2;

/// Largest plaintext in one record: 16 KiB, like TLS. Large enough that the per-record cost
/// (3-byte header + 16-byte tag = 0.12 % overhead, one AEAD call) vanishes in bulk transfers,
/// small enough that a receiver needs only [`MAX_RECORD_LEN`] bytes of buffer to make progress.
pub const MAX_PLAINTEXT: usize = 16 * 1024;

/// AEAD tag length (both suites).
pub const TAG_LEN: usize = 16;

/// Record header: type (1) || plaintext length (2, big-endian).
pub const RECORD_HEADER_LEN: usize = 3;

/// Largest record on the wire: 3 + 16384 + 16 = 16403 bytes. A receive buffer of this size per
/// direction always makes progress, so a connection needs about 2 × 16 KiB of receive buffer and
/// 2 × 16 KiB of send buffer in the I/O layer, i.e. roughly 64 KiB per connection.
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_PLAINTEXT + TAG_LEN;

/// Records per direction between two deterministic re-keyings: 2^24 records (256 GiB of full
/// records). Keeps every key under the AES-GCM confidentiality bound of about 2^24.5 full-size
/// records per key that TLS 1.3 (RFC 8446 §5.5) uses, with no message on the wire.
pub const REKEY_INTERVAL: u64 = 1 << 24;

/// AEAD suites, identified on the wire by one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// AES-256-GCM (fast where the CPU has AES and carry-less multiply instructions).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (fast everywhere in software, constant time without AES hardware).
    ChaCha20Poly1305,
}

impl Suite {
    /// Every suite we implement.
    pub const ALL: [Suite; 2] = [Suite::Aes256Gcm, Suite::ChaCha20Poly1305];

    /// Wire identifier.
    pub fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 0x01,
            Suite::ChaCha20Poly1305 => 0x02,
        }
    }

    /// The suite with wire identifier `id`, if we implement it.
    pub fn from_id(id: u8) -> Option<Suite> {
        match id {
            0x01 => Some(Suite::Aes256Gcm),
            0x02 => Some(Suite::ChaCha20Poly1305),
            _ => None,
        }
    }

    pub(crate) fn aead(self) -> &'static ring::aead::Algorithm {
        match self {
            Suite::Aes256Gcm => &ring::aead::AES_256_GCM,
            Suite::ChaCha20Poly1305 => &ring::aead::CHACHA20_POLY1305,
        }
    }

    /// The initiator's preference order on this CPU.
    ///
    /// ring picks its AES implementation by CPU features but does not expose them, so we apply a
    /// documented rule of our own: AES-256-GCM first when the CPU has AES and carry-less
    /// multiplication instructions (x86: `aes` + `pclmulqdq`; aarch64: `aes` + `pmull`), where
    /// it is about twice as fast as ChaCha20-Poly1305; ChaCha20-Poly1305 first everywhere else,
    /// where software AES is slow and not reliably constant-time.
    pub fn preference() -> [Suite; 2] {
        if cpu_has_fast_aes() {
            [Suite::Aes256Gcm, Suite::ChaCha20Poly1305]
        } else {
            [Suite::ChaCha20Poly1305, Suite::Aes256Gcm]
        }
    }
}

fn cpu_has_fast_aes() -> bool {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        std::is_x86_feature_detected!("aes") && std::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")))]
    {
        false
    }
}

/// Starts a native-protocol handshake for `cfg.role`. Draws the nonce and (unless `-f`) the
/// X25519 private key from `rng` now; the responder computes its public key only after the
/// initiator has proven the key.
pub fn start(
    cfg: &SessionConfig,
    rng: &dyn SecureRandom,
) -> Result<Box<dyn Handshake>, HandshakeError> {
    Ok(Box::new(NativeHandshake::new(cfg, rng)?))
}

/// Entry points for the cargo-fuzz targets (`fuzz/fuzz_targets/spiped_*.rs`), which cannot name
/// `ring` themselves. Not part of the supported API.
#[doc(hidden)]
pub mod fuzzing {
    use std::sync::Arc;

    use super::super::{Handshake, Pfs, Role, SessionConfig, Transport};
    use crate::key::PreSharedKey;

    /// A fresh native handshake with the key file contents `b"fuzz"` and the system RNG;
    /// `pooled`: with a key pool holding one ready pair (a responder then sends its public key
    /// in its Hello).
    pub fn handshake(role: Role, pfs: Pfs, pooled: bool) -> Box<dyn Handshake> {
        let keys = pooled.then(|| {
            let pool = Arc::new(super::KeyPool::new());
            pool.refill_one(&ring::rand::SystemRandom::new()).expect("system RNG works");
            pool
        });
        let cfg = SessionConfig {
            role,
            pfs,
            key: Arc::new(PreSharedKey::from_file_bytes(b"fuzz")),
            keys,
        };
        super::start(&cfg, &ring::rand::SystemRandom::new()).expect("system RNG works")
    }

    /// Runs a whole `-f` handshake in memory (no X25519, so the record fuzzer spends its time
    /// on records) and returns (initiator, responder) transports.
    pub fn transport_pair() -> (Box<dyn Transport>, Box<dyn Transport>) {
        let mut i = handshake(Role::Initiator, Pfs::Disabled, false);
        let mut r = handshake(Role::Responder, Pfs::Disabled, false);
        for _ in 0..4 {
            let mut buf = Vec::new();
            i.write_to(&mut buf);
            r.read_from(&buf).expect("in-memory handshake");
            buf.clear();
            r.write_to(&mut buf);
            i.read_from(&buf).expect("in-memory handshake");
        }
        (
            i.into_transport().expect("handshake finished"),
            r.into_transport().expect("handshake finished"),
        )
    }
}
