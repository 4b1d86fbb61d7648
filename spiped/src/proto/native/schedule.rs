//! Key schedule of the native protocol (docs/PROTOCOL.md part 1, "Key schedule").
//!
//! ```text
//! salt        = nonce_I || nonce_R                                   (64 bytes)
//! PRK_c       = HKDF-Extract(salt, K)
//! kc_I, kc_R  = HKDF-Expand(PRK_c, "spiped native v1 confirm i" / "... confirm r", 32)
//! MAC_I       = HMAC-SHA256(kc_I, SHA-256(Hello_I || Hello_R || KeyShare_I without MAC_I))
//! MAC_R       = HMAC-SHA256(kc_R, SHA-256(Hello_I || Hello_R || KeyShare_I || KeyShare_R without MAC_R))
//! TH          = SHA-256(Hello_I || Hello_R || KeyShare_I || KeyShare_R)
//! PRK_t       = HKDF-Extract(salt, K || X25519 shared secret)        (K alone without PFS)
//! s_i2r/s_r2i = HKDF-Expand(PRK_t, "spiped native v1 traffic i2r" / "... r2i" || TH, 32)
//! key, iv     = HKDF-Expand(s, "spiped native v1 key", 32), HKDF-Expand(s, "spiped native v1 iv", 12)
//! next s      = HKDF-Expand(s, "spiped native v1 next", 32)          (every REKEY_INTERVAL records)
//! ```
//!
//! Every secret byte array is held in [`Zeroizing`] and wiped on drop. [`PeerVerified`] can only
//! be minted by [`verify_confirm_mac`], so a transport cannot exist without a passed MAC check.

use ring::{hkdf, hmac};
use zeroize::Zeroizing;

use super::super::HandshakeError;
use super::wire::{MAC_LEN, NONCE_LEN};

/// HKDF info for the initiator's confirmation key.
pub const LABEL_CONFIRM_I: &[u8] = b"spiped native v1 confirm i";
/// HKDF info for the responder's confirmation key.
pub const LABEL_CONFIRM_R: &[u8] = b"spiped native v1 confirm r";
/// HKDF info prefix (followed by TH) for the initiator-to-responder traffic secret.
pub const LABEL_TRAFFIC_I2R: &[u8] = b"spiped native v1 traffic i2r";
/// HKDF info prefix (followed by TH) for the responder-to-initiator traffic secret.
pub const LABEL_TRAFFIC_R2I: &[u8] = b"spiped native v1 traffic r2i";
/// HKDF info for a direction's AEAD key.
pub const LABEL_KEY: &[u8] = b"spiped native v1 key";
/// HKDF info for a direction's nonce mask.
pub const LABEL_IV: &[u8] = b"spiped native v1 iv";
/// HKDF info for the next traffic secret of a direction.
pub const LABEL_NEXT: &[u8] = b"spiped native v1 next";

/// AEAD nonce length (both suites).
pub const IV_LEN: usize = 12;

/// A 32-byte secret, wiped on drop.
pub type Secret = Zeroizing<[u8; 32]>;

/// Evidence that the peer's key-confirmation MAC verified. Only [`verify_confirm_mac`] can make
/// one; building a transport requires one.
#[derive(Debug)]
pub struct PeerVerified {
    _private: (),
}

impl PeerVerified {
    /// For unit tests that build transports from fixed keys.
    #[cfg(test)]
    pub(crate) fn for_tests() -> PeerVerified {
        PeerVerified { _private: () }
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// # Panics
/// Only if `out` is longer than 255 × 32 bytes, which no caller does (all outputs are ≤ 32).
fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) {
    prk.expand(info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-SHA256 output of at most 32 bytes");
}

fn salt(nonce_i: &[u8; NONCE_LEN], nonce_r: &[u8; NONCE_LEN]) -> hkdf::Salt {
    let mut s = [0u8; 2 * NONCE_LEN];
    s[..NONCE_LEN].copy_from_slice(nonce_i);
    s[NONCE_LEN..].copy_from_slice(nonce_r);
    hkdf::Salt::new(hkdf::HKDF_SHA256, &s)
}

/// The two key-confirmation keys.
pub struct ConfirmKeys {
    /// kc_I: keys MAC_I.
    pub initiator: Secret,
    /// kc_R: keys MAC_R.
    pub responder: Secret,
}

/// Derives kc_I and kc_R from K and both nonces. Cheap (a few HMAC-SHA256 blocks), so the
/// responder can afford it for every peer before anything is proven.
pub fn confirm_keys(k: &[u8; 32], nonce_i: &[u8; NONCE_LEN], nonce_r: &[u8; NONCE_LEN]) -> ConfirmKeys {
    let prk = salt(nonce_i, nonce_r).extract(k);
    let mut initiator = Secret::default();
    let mut responder = Secret::default();
    expand(&prk, &[LABEL_CONFIRM_I], &mut initiator[..]);
    expand(&prk, &[LABEL_CONFIRM_R], &mut responder[..]);
    ConfirmKeys { initiator, responder }
}

/// HMAC-SHA256(key, transcript hash).
pub fn confirm_mac(key: &[u8; 32], transcript_hash: &[u8; 32]) -> [u8; MAC_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), transcript_hash);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Verifies a confirmation MAC in constant time (`ring::hmac::verify`).
pub fn verify_confirm_mac(
    key: &[u8; 32],
    transcript_hash: &[u8; 32],
    mac: &[u8; MAC_LEN],
) -> Result<PeerVerified, HandshakeError> {
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), transcript_hash, mac)
        .map(|()| PeerVerified { _private: () })
        .map_err(|_| HandshakeError::AuthFailed)
}

/// The two directions' initial traffic secrets.
pub struct TrafficSecrets {
    /// Initiator → responder.
    pub i2r: Secret,
    /// Responder → initiator.
    pub r2i: Secret,
}

/// Derives the traffic secrets from K, both nonces, the X25519 shared secret (`None` when either
/// side skipped the exchange) and the transcript hash TH of all four handshake messages.
pub fn traffic_secrets(
    k: &[u8; 32],
    nonce_i: &[u8; NONCE_LEN],
    nonce_r: &[u8; NONCE_LEN],
    dh: Option<&[u8; 32]>,
    transcript_hash: &[u8; 32],
) -> TrafficSecrets {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(k);
    let ikm_len = match dh {
        Some(dh) => {
            ikm[32..].copy_from_slice(dh);
            64
        }
        None => 32,
    };
    let prk = salt(nonce_i, nonce_r).extract(&ikm[..ikm_len]);
    let mut i2r = Secret::default();
    let mut r2i = Secret::default();
    expand(&prk, &[LABEL_TRAFFIC_I2R, transcript_hash], &mut i2r[..]);
    expand(&prk, &[LABEL_TRAFFIC_R2I, transcript_hash], &mut r2i[..]);
    TrafficSecrets { i2r, r2i }
}

/// A direction's AEAD key and nonce mask from its current traffic secret.
pub fn record_key_iv(secret: &[u8; 32]) -> (Secret, [u8; IV_LEN]) {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let mut key = Secret::default();
    let mut iv = [0u8; IV_LEN];
    expand(&prk, &[LABEL_KEY], &mut key[..]);
    expand(&prk, &[LABEL_IV], &mut iv);
    (key, iv)
}

/// The next traffic secret of a direction (deterministic re-keying, no wire message).
pub fn next_secret(secret: &[u8; 32]) -> Secret {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let mut next = Secret::default();
    expand(&prk, &[LABEL_NEXT], &mut next[..]);
    next
}
