//! Diffie-Hellman in the 2048-bit MODP group 14 of RFC 3526, as spiped 1.x uses it.
//!
//! Contract: [`PrivateExponent`] is x = 2^258 + (32 random bytes), exactly spiped's
//! `crypto_dh_generate`; [`public_value`] is 2^x mod p and [`shared_secret`] is y^x mod p, both
//! 256-byte big-endian. Both modexps are constant-time in x (crypto-bigint's fixed-window
//! Montgomery ladder over all 259 exponent bits; only the public bit length 259 shows in the
//! timing). spiped additionally blinds its exponent because its bignum code is variable-time;
//! that is invisible on the wire, so a constant-time modexp with the same x is compatible.
//!
//! Validation of a received y is the caller's job (MAC first, then [`is_below_prime`], then the
//! `-g` check), so that no modexp ever runs on unauthenticated input.

use crypto_bigint::modular::ConstMontyForm;
use crypto_bigint::{const_monty_params, U2048, U320};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::wire::DH_VALUE_LEN;

/// The RFC 3526 group 14 prime, as printed in RFC 3526 section 3.
///
/// Verified by `spiped/tests/vectors/spiped1_kat.py` against two independent sources: OpenSSL's
/// built-in `modp_2048` group and RFC 3526's defining formula
/// p = 2^2048 - 2^1984 - 1 + 2^64 * (floor(2^1918 * pi) + 124476) (computed with mpmath); the
/// unit test `spiped1_group14_prime_matches_kat` ties this string to that script's output.
const GROUP14_P_HEX: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1",
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD",
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245",
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D",
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F",
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D",
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9",
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510",
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

const_monty_params!(
    Group14Prime,
    U2048,
    GROUP14_P_HEX,
    "The RFC 3526 2048-bit MODP group 14 prime (generator 2)."
);

type Group14 = ConstMontyForm<Group14Prime, { U2048::LIMBS }>;

/// The group's generator.
const GENERATOR: u64 = 2;

/// Bits in spiped's exponent: 2^258 plus a 256-bit random value, so the top bit is always 258.
pub const EXPONENT_BITS: u32 = 259;

/// Random bytes in an exponent (spiped's `CRYPTO_DH_PRIVLEN`).
pub const PRIV_LEN: usize = 32;

/// The prime, big-endian, for the `y < p` check.
fn prime_be() -> [u8; DH_VALUE_LEN] {
    encode(&U2048::from_be_hex(GROUP14_P_HEX))
}

fn encode(v: &U2048) -> [u8; DH_VALUE_LEN] {
    let enc = v.to_be_bytes();
    let mut out = [0u8; DH_VALUE_LEN];
    out.copy_from_slice(enc.as_ref());
    out
}

/// A private exponent x = 2^258 + priv. Wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct PrivateExponent {
    x: U320,
}

impl PrivateExponent {
    /// Builds x from spiped's 32 random bytes.
    pub fn from_random(priv_bytes: &[u8; PRIV_LEN]) -> Self {
        // 320 bits = 40 big-endian bytes; 2^258 is bit 2 of the byte 32 places above the least
        // significant one, i.e. index 40 - 1 - 32 = 7.
        let mut be = [0u8; 40];
        be[7] = 0x04;
        be[8..].copy_from_slice(priv_bytes);
        let x = U320::from_be_slice(&be);
        be.zeroize();
        PrivateExponent { x }
    }
}

/// Our public value y = 2^x mod p, 256 bytes big-endian.
pub fn public_value(x: &PrivateExponent) -> [u8; DH_VALUE_LEN] {
    let g = Group14::new(&U2048::from_u64(GENERATOR));
    encode(&g.pow_bounded_exp(&x.x, EXPONENT_BITS).retrieve())
}

/// The shared value y_peer^x mod p, 256 bytes big-endian.
///
/// `y_peer` must already have passed [`is_below_prime`] (a value >= p would be silently reduced,
/// which spiped does not do: it rejects such a peer).
pub fn shared_secret(y_peer: &[u8; DH_VALUE_LEN], x: &PrivateExponent) -> [u8; DH_VALUE_LEN] {
    let y = Group14::new(&U2048::from_be_slice(y_peer));
    encode(&y.pow_bounded_exp(&x.x, EXPONENT_BITS).retrieve())
}

/// spiped's range check: the big-endian value is strictly below the prime. y is public, so a
/// variable-time compare is fine.
pub fn is_below_prime(y: &[u8]) -> bool {
    y.len() == DH_VALUE_LEN && y < &prime_be()[..]
}

/// The value 1 as a 256-byte big-endian public value: what a `-f` side sends, and its y_SC.
pub fn one_be() -> [u8; DH_VALUE_LEN] {
    let mut one = [0u8; DH_VALUE_LEN];
    one[DH_VALUE_LEN - 1] = 1;
    one
}

#[cfg(test)]
pub(super) fn modexp_for_test(base: u64, exponent: u64) -> [u8; DH_VALUE_LEN] {
    let b = Group14::new(&U2048::from_u64(base));
    encode(&b.pow_bounded_exp(&U320::from_u64(exponent), 64).retrieve())
}

#[cfg(test)]
pub(super) fn prime_for_test() -> [u8; DH_VALUE_LEN] {
    prime_be()
}
