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
pub fn confirm_keys(
    k: &[u8; 32],
    nonce_i: &[u8; NONCE_LEN],
    nonce_r: &[u8; NONCE_LEN],
) -> ConfirmKeys {
    let prk = salt(nonce_i, nonce_r).extract(k);
    let mut initiator = Secret::default();
    let mut responder = Secret::default();
    expand(&prk, &[LABEL_CONFIRM_I], &mut initiator[..]);
    expand(&prk, &[LABEL_CONFIRM_R], &mut responder[..]);
    ConfirmKeys {
        initiator,
        responder,
    }
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
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, key),
        transcript_hash,
        mac,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex32(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    fn nonces() -> ([u8; 32], [u8; 32]) {
        let mut i = [0u8; 32];
        let mut r = [0u8; 32];
        for n in 0..32u8 {
            i[usize::from(n)] = n;
            r[usize::from(n)] = n + 32;
        }
        (i, r)
    }

    /// K = SHA-256("") (an empty key file, as spiped's own tests use).
    const K: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// Confirmation keys for K = SHA-256(""), nonce_I = 00..1f, nonce_R = 20..3f (values
    /// cross-checked by tests/vectors/spiped_native_kat.py and listed in docs/PROTOCOL.md).
    #[test]
    fn confirm_keys_known_answer() {
        let (ni, nr) = nonces();
        let c = confirm_keys(&unhex32(K), &ni, &nr);
        assert_eq!(
            hex(&c.initiator[..]),
            "640ba0d6f11983b59e65682538124221bbc60c51ae47ed71c5578da992af6341"
        );
        assert_eq!(
            hex(&c.responder[..]),
            "6b6bb9aa422777e4bfe80e18bc5922dc8c064ffe197049376adae124496b1e69"
        );
    }

    /// Traffic secrets with the RFC 7748 §6.1 shared secret and the PFS transcript hash of the
    /// handshake KAT, and without a shared secret (-f) with that handshake's transcript hash.
    #[test]
    fn traffic_secrets_known_answer() {
        let (ni, nr) = nonces();
        let dh = unhex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let th = unhex32("bbc6933ad021bbb96d0d20e391e18d011eb8fb5da7dee531369eff748b74a2aa");
        let s = traffic_secrets(&unhex32(K), &ni, &nr, Some(&dh), &th);
        assert_eq!(
            hex(&s.i2r[..]),
            "a37c0a6ac2ac6b48e44728f45bac712b180fee3f88fb171c77c925ebcbde183c"
        );
        assert_eq!(
            hex(&s.r2i[..]),
            "f68b7bfb1931b8aef6a09411712fef64c215750e2b9ee1de91f8250f79149f06"
        );
        let th = unhex32("98736ceb012be3940d739572891dca5923893a33e813ed3f4e81e0934c9fb67a");
        let s = traffic_secrets(&unhex32(K), &ni, &nr, None, &th);
        assert_eq!(
            hex(&s.i2r[..]),
            "ac0fe729b3642bbfb222592e5cbeef4f2aca5593789244b01d5e24f91adcaa9f"
        );
        assert_eq!(
            hex(&s.r2i[..]),
            "137d77327820d9277ce83813fcba000ab10f5b9b88c1b465961a224438ea2fa3"
        );
    }

    /// Record key, nonce mask and next secret from s = 0x11 × 32.
    #[test]
    fn record_keys_known_answer() {
        let (key, iv) = record_key_iv(&[0x11; 32]);
        assert_eq!(
            hex(&key[..]),
            "2622b7e1aa6a649f098417af17683db14a5c4ee3854ec0ae90419b9920865f65"
        );
        assert_eq!(hex(&iv), "753f3349900a80ff1bd77fd0");
        assert_eq!(
            hex(&next_secret(&[0x11; 32])[..]),
            "bd23e89423e35ef4022408d98cf012b59e2e3a357fe433be2a4339a4e343220e"
        );
    }

    /// The confirmation MAC verifies for the right key and transcript only, and only
    /// verification mints the PeerVerified token.
    #[test]
    fn confirm_mac_binds_key_and_transcript() {
        let key = [7u8; 32];
        let th = [9u8; 32];
        let mac = confirm_mac(&key, &th);
        assert!(verify_confirm_mac(&key, &th, &mac).is_ok());
        let mut other = th;
        other[31] ^= 1;
        assert_eq!(
            verify_confirm_mac(&key, &other, &mac).unwrap_err(),
            HandshakeError::AuthFailed
        );
        assert_eq!(
            verify_confirm_mac(&[8; 32], &th, &mac).unwrap_err(),
            HandshakeError::AuthFailed
        );
        let mut bad = mac;
        bad[0] ^= 0x80;
        assert_eq!(
            verify_confirm_mac(&key, &th, &bad).unwrap_err(),
            HandshakeError::AuthFailed
        );
    }
}
