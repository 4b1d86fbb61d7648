//! Diffie-Hellman in the 2048-bit MODP group 14 of RFC 3526, as spiped 1.x uses it.
//!
//! Contract: [`PrivateExponent`] is x = 2^258 + (32 random bytes), exactly spiped's
//! `crypto_dh_generate`; [`public_value`] is 2^x mod p and [`shared_secret`] is y^x mod p, both
//! 256-byte big-endian. Both modexps are constant-time in x: the exponent carries OpenSSL's
//! `BN_FLG_CONSTTIME`, so `BN_mod_exp` runs `BN_mod_exp_mont_consttime` (fixed window, cache-
//! line-scattered table); only x's bit length, always 259, shows in the timing. spiped itself
//! uses OpenSSL's bignum code for this computation and adds exponent blinding on top; blinding is
//! invisible on the wire, so a constant-time modexp with the same x is compatible.
//!
//! Why OpenSSL and not crypto-bigint: ring has no public bignum API, and crypto-bigint 0.7's
//! constant-time `pow_bounded_exp` measured 1.0-1.6 ms per 259-bit modexp here against 0.3-0.5 ms
//! for OpenSSL's, which would leave our PFS handshake (two modexps per side) well below the
//! 472 connections/s of Debian's spiped (docs/PROTOCOL.md part 2, "Why these crates").
//!
//! Validation of a received y is the caller's job (MAC first, then [`is_below_prime`], then the
//! `-g` check), so that no modexp ever runs on unauthenticated input.

use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use zeroize::Zeroize;

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

/// The group's generator.
const GENERATOR: u8 = 2;

/// Bits in spiped's exponent: 2^258 plus a 256-bit random value, so the top bit is always 258.
pub const EXPONENT_BITS: u32 = 259;

/// Random bytes in an exponent (spiped's `CRYPTO_DH_PRIVLEN`).
pub const PRIV_LEN: usize = 32;

/// Big-endian bytes of x: one byte holding bit 258, then the 32 random bytes.
const EXPONENT_BYTES: usize = PRIV_LEN + 1;

/// The prime, big-endian, parsed once.
fn prime_be() -> &'static [u8; DH_VALUE_LEN] {
    static P: OnceLock<[u8; DH_VALUE_LEN]> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = [0u8; DH_VALUE_LEN];
        for (i, b) in p.iter_mut().enumerate() {
            *b = u8::from_str_radix(&GROUP14_P_HEX[2 * i..2 * i + 2], 16).expect("constant is hex");
        }
        p
    })
}

fn prime_bn() -> &'static BigNum {
    static P: OnceLock<BigNum> = OnceLock::new();
    P.get_or_init(|| BigNum::from_slice(prime_be()).expect("allocating a 2048-bit number"))
}

/// base^x mod p, 256 bytes big-endian.
///
/// # Panics
/// Only if OpenSSL cannot allocate (the modulus is odd and the base is below it, so
/// `BN_mod_exp` has no other failure).
fn modexp(base: &[u8], x: &BigNumRef) -> [u8; DH_VALUE_LEN] {
    let base = BigNum::from_slice(base).expect("allocating a 2048-bit number");
    let mut ctx = BigNumContext::new_secure().expect("allocating a bignum context");
    let mut r = BigNum::new_secure().expect("allocating a 2048-bit number");
    r.mod_exp(&base, x, prime_bn(), &mut ctx)
        .expect("modexp with an odd modulus");
    let mut v = r
        .to_vec_padded(DH_VALUE_LEN as i32)
        .expect("result is below p, so it fits");
    let mut out = [0u8; DH_VALUE_LEN];
    out.copy_from_slice(&v);
    v.zeroize();
    r.clear();
    out
}

/// A private exponent x = 2^258 + priv. Wiped on drop.
pub struct PrivateExponent {
    x: BigNum,
}

impl Drop for PrivateExponent {
    fn drop(&mut self) {
        self.x.clear();
    }
}

impl PrivateExponent {
    /// Builds x from spiped's 32 random bytes.
    ///
    /// # Panics
    /// Only if OpenSSL cannot allocate 33 bytes.
    pub fn from_random(priv_bytes: &[u8; PRIV_LEN]) -> Self {
        // 2^258 is bit 2 of the byte above the 32 random bytes.
        let mut be = [0u8; EXPONENT_BYTES];
        be[0] = 0x04;
        be[1..].copy_from_slice(priv_bytes);
        let mut x = BigNum::new_secure().expect("allocating the exponent");
        x.copy_from_slice(&be).expect("allocating the exponent");
        be.zeroize();
        // Makes BN_mod_exp take the constant-time Montgomery path.
        x.set_const_time();
        debug_assert_eq!(x.num_bits() as u32, EXPONENT_BITS);
        PrivateExponent { x }
    }
}

/// Our public value y = 2^x mod p, 256 bytes big-endian.
pub fn public_value(x: &PrivateExponent) -> [u8; DH_VALUE_LEN] {
    modexp(&[GENERATOR], &x.x)
}

/// The shared value y_peer^x mod p, 256 bytes big-endian.
///
/// `y_peer` must already have passed [`is_below_prime`] (spiped rejects a value >= p).
pub fn shared_secret(y_peer: &[u8; DH_VALUE_LEN], x: &PrivateExponent) -> [u8; DH_VALUE_LEN] {
    modexp(y_peer, &x.x)
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
pub(super) fn modexp_for_test(base: u8, exponent: u32) -> [u8; DH_VALUE_LEN] {
    let x = BigNum::from_u32(exponent).expect("alloc");
    modexp(&[base], &x)
}

#[cfg(test)]
pub(super) fn prime_for_test() -> [u8; DH_VALUE_LEN] {
    *prime_be()
}
