//! Maglev consistent hashing (Eisenbud et al., NSDI'16, §3.4), built off the packet path.
//!
//! Contract:
//! - [`MaglevTable::build`] turns a set of weighted backends into a lookup table of `M` slots
//!   (`M` prime, default [`MAGLEV_DEFAULT_SIZE`]), each holding the caller's `u16` index of one
//!   backend. Lookup per packet is `table[flow_hash % M]` ([`MaglevTable::lookup`]): one
//!   multiply-free modulo and one load, no allocation.
//! - **Deterministic across instances**: the table depends only on the set of (identity, weight)
//!   pairs and `M` — not on input order (backends are sorted by their identity first), not on the
//!   Rust version or process (the hash is [`hash64`], written here with fixed seeds and pinned by
//!   known-answer tests). Two load balancers behind the same ECMP group with the same config send
//!   every new flow to the same backend without talking to each other.
//! - **Balance**: unit weights give every backend ⌊M/N⌋ or ⌈M/N⌉ slots; with M ≥ 100·N the
//!   share of any backend is within 1 % of M/N.
//! - **Weights** use Katran's "v2" smooth scheme (`katran/lib/MaglevHashV2.cpp`): each round every
//!   backend adds its weight to an accumulator and claims one slot each time the accumulator
//!   reaches the largest weight (then subtracts it). A backend of weight w thus gets a turn in
//!   w/max of the rounds, and its share of slots is proportional to its weight. Weight 0 means
//!   "present but takes no new flows" (draining).
//! - **Disruption**: removing one backend reassigns its own slots plus a share of others'
//!   ("unrelated churn": about 0.57 % of M at M = 65537 with N = 100 or 1000, 0.32 % at
//!   M = 655373, N = 1000, averaged over every possible removal) — the same as the research
//!   reproduction of the paper's algorithm within the spread between hash functions (see
//!   `tests/maglev.rs` and `tests/maglev_reference.py`). The connection table keeps established
//!   flows in place.

use std::net::IpAddr;

use crate::limits::{MAGLEV_DEFAULT_SIZE, MAGLEV_MAX_SIZE, MAX_BACKENDS};

/// Table value for "no backend" (a service whose backends all have weight 0, or none at all).
pub const NO_BACKEND: u16 = u16::MAX;

/// Seed of the `offset` hash of a backend identity (paper: h1). Fixed forever: changing it
/// reshuffles every table and breaks agreement between instances of different versions.
const SEED_OFFSET: u64 = 0x6d61_676c_6576_6f66; // "maglevof"
/// Seed of the `skip` hash of a backend identity (paper: h2), independent of [`SEED_OFFSET`].
const SEED_SKIP: u64 = 0x6d61_676c_6576_736b; // "maglevsk"
/// Seed of the per-packet flow hash. Independent of the two above so that the flow → slot map
/// is not correlated with where backends start their preference lists.
pub const SEED_FLOW: u64 = 0x666c_6f77_6861_7368; // "flowhash"

/// One round of the splitmix64 finaliser (Stafford's "Mix13"): a bijection on u64 with full
/// avalanche, used as the compression function of [`hash64`].
#[inline(always)]
const fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A small, stable, seeded 64-bit hash: the input is read as little-endian 64-bit words (the last
/// one zero-padded), each word is xored into the state and the state is passed through the
/// splitmix64 finaliser; the length is folded in first so that zero padding cannot collide.
///
/// Not a MAC: an attacker who can choose flows can aim them at one backend anyway (the flow hash
/// only has to spread honest traffic). What matters is that it is the same on every machine and
/// every build, which `std`'s `DefaultHasher` does not promise.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = Hash64::start(seed, bytes.len());
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = h.word(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = h.word(u64::from_le_bytes(last));
    }
    h.finish()
}

/// [`hash64`] one 64-bit word at a time, for keys of a fixed layout (the flow key): the caller
/// feeds the words [`hash64`] would read from the bytes and gets the same value without building
/// the byte string, and a `const` start state saves the first round when seed and length are
/// fixed.
#[derive(Clone, Copy, Debug)]
pub struct Hash64(u64);

impl Hash64 {
    /// The state before the first word, for `len` input bytes.
    pub const fn start(seed: u64, len: usize) -> Hash64 {
        // The digits of pi keep the all-zero seed and input away from mix's fixed point at 0.
        Hash64(mix(seed ^ 0x243f_6a88_85a3_08d3 ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
    }

    /// Absorbs the next little-endian word (the last one zero-padded).
    #[inline(always)]
    pub const fn word(self, w: u64) -> Hash64 {
        Hash64(mix(self.0 ^ w))
    }

    /// The hash.
    pub const fn finish(self) -> u64 {
        self.0
    }
}

/// The stable identity of a backend for hashing: its address as 16 bytes (IPv4 as the
/// IPv4-mapped IPv6 address), so the same config produces the same table everywhere.
///
/// Also the address form of every flow key, built twice per packet: the IPv4 case is computed
/// as one 128-bit value (`::ffff:a.b.c.d`), which the compiler stores whole. Built from bytes
/// (`to_ipv6_mapped().octets()`), it was sixteen byte stores that the flow key's 16-byte
/// loads (hash, entry compare) then waited on: the costliest instruction of the lcore loop in
/// `perf annotate`, a failed store-to-load forward per load.
#[inline]
pub fn backend_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => (0xffff_u128 << 32 | u128::from(u32::from(a))).to_be_bytes(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// One backend as the table builder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaglevBackend {
    /// Stable identity (see [`backend_key`]); must be unique within one table.
    pub key: [u8; 16],
    /// Relative weight; 0 = present but given no slots.
    pub weight: u32,
    /// What the table stores for this backend: the caller's index (e.g. into the snapshot's
    /// backend array). Must not be [`NO_BACKEND`].
    pub index: u16,
}

/// Why a table could not be built. Raised when a config is loaded, never on the packet path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MaglevError {
    /// The size is not prime: Maglev's permutations only visit every slot when it is.
    #[error("maglev_size {0} is not prime: pick a prime such as 65537 or 655373")]
    NotPrime(u32),
    /// The size is outside `[2, MAGLEV_MAX_SIZE]`.
    #[error("maglev_size {0} is out of range: use a prime between 2 and {MAGLEV_MAX_SIZE}")]
    SizeOutOfRange(u32),
    /// More backends than a table can index.
    #[error("{0} backends: at most {MAX_BACKENDS} are supported per service")]
    TooManyBackends(usize),
    /// Fewer slots than backends with a weight.
    #[error("maglev_size {size} is smaller than the {backends} weighted backends: use a prime >= 100 x backends")]
    TooSmall {
        /// Table size asked for.
        size: u32,
        /// Backends with a non-zero weight.
        backends: usize,
    },
    /// Two backends share one identity (address).
    #[error("two backends share one address: each backend of a service must be listed once")]
    DuplicateBackend,
    /// A backend index equal to [`NO_BACKEND`].
    #[error("backend index {NO_BACKEND} is reserved")]
    ReservedIndex,
}

/// True if `n` is prime (trial division; `n` ≤ [`MAGLEV_MAX_SIZE`] needs ≤ 1000 divisions).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n < 4 {
        return true;
    }
    if n % 2 == 0 {
        return false;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// `x mod d` for a divisor fixed when a table is built, without the division instruction
/// (a 64-bit `div` takes 13 to 44 cycles on current x86 cores and ran once per packet): one
/// 64x64→128 multiply by `floor((2^64 - 1) / d)` gives the quotient or one less (the error of the
/// reciprocal times `x` stays below `x / 2^64 < 1`), so the remainder is `x - q d` less at most
/// one `d`. Exactly `x % d` for every `x` (tested against `%`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastMod {
    d: u64,
    reciprocal: u64,
}

impl FastMod {
    /// The reducer for divisor `d`; `d` must not be 0 (table sizes are at least 2).
    pub const fn new(d: u32) -> FastMod {
        let d = if d == 0 { 1 } else { d as u64 };
        FastMod { d, reciprocal: u64::MAX / d }
    }

    /// `x % d`.
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.reciprocal)) >> 64) as u64;
        let r = x - q * self.d;
        if r >= self.d {
            r - self.d
        } else {
            r
        }
    }
}

/// An immutable Maglev lookup table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaglevTable {
    slots: Box<[u16]>,
    /// `mod slots.len()`, for [`Self::lookup`].
    modulo: FastMod,
}

impl MaglevTable {
    /// Builds the table for `backends` with `size` slots (see the module docs).
    ///
    /// Cost: O(M log M) expected, O(N) extra memory; runs on the control thread.
    pub fn build(backends: &[MaglevBackend], size: u32) -> Result<MaglevTable, MaglevError> {
        if !(2..=MAGLEV_MAX_SIZE).contains(&size) {
            return Err(MaglevError::SizeOutOfRange(size));
        }
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        if backends.len() > MAX_BACKENDS {
            return Err(MaglevError::TooManyBackends(backends.len()));
        }
        if backends.iter().any(|b| b.index == NO_BACKEND) {
            return Err(MaglevError::ReservedIndex);
        }
        let m = u64::from(size);
        // Stable iteration order: by identity, never by config order.
        let mut sorted: Vec<MaglevBackend> = backends.iter().copied().filter(|b| b.weight > 0).collect();
        sorted.sort_by_key(|b| b.key);
        if sorted.windows(2).any(|w| w[0].key == w[1].key) {
            return Err(MaglevError::DuplicateBackend);
        }
        let mut all_keys: Vec<[u8; 16]> = backends.iter().map(|b| b.key).collect();
        all_keys.sort_unstable();
        if all_keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(MaglevError::DuplicateBackend);
        }
        let mut slots = vec![NO_BACKEND; size as usize].into_boxed_slice();
        if sorted.is_empty() {
            return Ok(MaglevTable { slots, modulo: FastMod::new(size) });
        }
        if sorted.len() > size as usize {
            return Err(MaglevError::TooSmall { size, backends: sorted.len() });
        }
        let perms: Vec<(u64, u64)> = sorted
            .iter()
            .map(|b| (hash64(SEED_OFFSET, &b.key) % m, hash64(SEED_SKIP, &b.key) % (m - 1) + 1))
            .collect();
        let max_weight = u64::from(sorted.iter().map(|b| b.weight).max().unwrap_or(1));
        let mut next = vec![0u64; sorted.len()];
        let mut acc = vec![0u64; sorted.len()];
        let mut filled = 0u64;
        'rounds: loop {
            for (i, b) in sorted.iter().enumerate() {
                acc[i] += u64::from(b.weight);
                if acc[i] < max_weight {
                    continue;
                }
                acc[i] -= max_weight;
                let (offset, skip) = perms[i];
                // Walk backend i's permutation to its next free slot. Terminates: the table has a
                // free slot (filled < m) and the permutation visits every slot within m steps.
                let slot = loop {
                    let c = ((offset + next[i] * skip) % m) as usize;
                    next[i] += 1;
                    if slots[c] == NO_BACKEND {
                        break c;
                    }
                };
                slots[slot] = b.index;
                filled += 1;
                if filled == m {
                    break 'rounds;
                }
            }
        }
        Ok(MaglevTable { slots, modulo: FastMod::new(size) })
    }

    /// Builds with [`MAGLEV_DEFAULT_SIZE`] slots.
    pub fn build_default(backends: &[MaglevBackend]) -> Result<MaglevTable, MaglevError> {
        Self::build(backends, MAGLEV_DEFAULT_SIZE)
    }

    /// The backend index for a flow hash, or `None` if the table is empty.
    #[inline]
    pub fn lookup(&self, flow_hash: u64) -> Option<u16> {
        // `modulo` is `mod slots.len()` and `slots` is never empty (size >= 2): in bounds.
        let v = self.slots[self.modulo.reduce(flow_hash) as usize];
        (v != NO_BACKEND).then_some(v)
    }

    /// Prefetches the slot [`Self::lookup`] reads for `flow_hash` (pass 2 of
    /// [`crate::pipeline::Pipeline::process_burst_with`], for a flow the connection table will
    /// not answer).
    #[inline]
    pub fn prefetch<P: crate::pipeline::Prefetch>(&self, flow_hash: u64, p: &P) {
        p.prefetch(&self.slots[self.modulo.reduce(flow_hash) as usize]);
    }

    /// Number of slots (M).
    pub fn size(&self) -> usize {
        self.slots.len()
    }

    /// The raw slots (for tests, the simulator and stats).
    pub fn slots(&self) -> &[u16] {
        &self.slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`FastMod::reduce`] is `%` exactly: for the table sizes in use, the smallest and largest
    /// divisors, and numerators at the edges (0, d - 1, d, multiples, `u64::MAX`) and spread over
    /// the whole 64-bit range (where an off-by-one in the reciprocal would show first).
    #[test]
    fn fast_mod_is_exact() {
        let divisors = [1u32, 2, 3, 7, 251, 65521, 65537, 131071, 655373, MAGLEV_MAX_SIZE, u32::MAX - 4, u32::MAX];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for &d in &divisors {
            let m = FastMod::new(d);
            let d64 = u64::from(d);
            let edges = [0, d64 - 1, d64, d64 + 1, 2 * d64 - 1, u64::MAX, u64::MAX - 1, u64::MAX - d64, u64::MAX / d64 * d64, u64::MAX / d64 * d64 - 1];
            for &e in &edges {
                assert_eq!(m.reduce(e), e % d64, "{e} mod {d}");
            }
            for _ in 0..100_000 {
                x = mix(x.wrapping_add(0x2545_f491_4f6c_dd1d));
                assert_eq!(m.reduce(x), x % d64, "{x} mod {d}");
            }
        }
    }

    /// The hash is part of the wire contract between instances: these values must never change.
    #[test]
    fn hash64_known_answers_are_stable() {
        // Pinned from the first implementation; a change here means every table changes.
        let a = hash64(0, b"");
        let b = hash64(0, b"a");
        let c = hash64(SEED_FLOW, b"0123456789abcdef0");
        assert_eq!(a, hash64(0, b""));
        assert_ne!(a, b);
        assert_ne!(hash64(0, b"\0"), a, "length must be folded in");
        assert_ne!(hash64(1, b"a"), b, "seed must matter");
        assert_eq!((a, b, c), (KAT[0], KAT[1], KAT[2]));
    }

    const KAT: [u64; 3] = [16852473371444490038, 9307959073612949456, 5252126015808613705];

    /// Primality: the table is only a permutation family when M is prime.
    #[test]
    fn primes_are_recognised() {
        for p in [2u32, 3, 5, 251, 4093, 65537, 655373, 1_000_003] {
            assert!(is_prime(p), "{p}");
        }
        for c in [0u32, 1, 4, 65535, 65536, 655371, 1_000_001] {
            assert!(!is_prime(c), "{c}");
        }
        assert_eq!(MaglevTable::build(&[], 65536), Err(MaglevError::NotPrime(65536)));
        assert_eq!(MaglevTable::build(&[], 1), Err(MaglevError::SizeOutOfRange(1)));
    }

    /// An empty or all-zero-weight backend set yields a table that answers "no backend".
    #[test]
    fn empty_table_has_no_backend() {
        let t = MaglevTable::build(&[], 7).unwrap();
        assert_eq!(t.lookup(3), None);
        let b = MaglevBackend { key: [1; 16], weight: 0, index: 0 };
        assert_eq!(MaglevTable::build(&[b], 7).unwrap().lookup(3), None);
    }

    /// Duplicate identities and the reserved index are configuration errors.
    #[test]
    fn invalid_backends_are_rejected() {
        let b = MaglevBackend { key: [1; 16], weight: 1, index: 0 };
        assert_eq!(MaglevTable::build(&[b, b], 7), Err(MaglevError::DuplicateBackend));
        let r = MaglevBackend { index: NO_BACKEND, ..b };
        assert_eq!(MaglevTable::build(&[r], 7), Err(MaglevError::ReservedIndex));
        let many: Vec<MaglevBackend> =
            (0..8u8).map(|i| MaglevBackend { key: [i; 16], weight: 1, index: u16::from(i) }).collect();
        assert_eq!(MaglevTable::build(&many, 7), Err(MaglevError::TooSmall { size: 7, backends: 8 }));
    }
}
