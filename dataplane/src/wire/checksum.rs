//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Conventions: a *sum* is the folded one's-complement sum of 16-bit big-endian words, a value in
//! `0..=0xffff`; a *checksum* is the complement of a sum, the value written on the wire. A header
//! whose checksum field is correct sums to `0xffff`.
//!
//! The pipeline rewrites TTLs, addresses and ports on the fast path; recomputing the sum over a
//! whole TCP segment for that would touch every payload byte. [`update16`], [`update32`] and
//! [`update_bytes`] apply RFC 1624 equation 3, `HC' = ~(~HC + ~m + m')`, which only touches the
//! changed words and gives the same bits as a full recomputation (the tests check this over many
//! random rewrites) whenever the checksummed data is not all zeros. All-zero data is the one
//! corner (RFC 1624 §3): eq. 3 gives 0x0000 where a recomputation gives 0xffff. It cannot occur
//! for the IPv4 header (version nibble) or TCP/UDP/ICMPv6 (the pseudo-header holds the
//! protocol); ICMPv4 echo handles it itself.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::ip::IpProtocol;

/// Folds a 64-bit accumulator into 16 bits with end-around carry, in a fixed four steps (no
/// loop: it runs for every header summed): 64 → 33 → 32 bits, then 32 → 17 → 16 bits. Each
/// step adds the high part to the low part, which keeps the value modulo 2^16 - 1.
#[inline]
fn fold(sum: u64) -> u16 {
    let s = (sum & 0xffff_ffff) + (sum >> 32); // < 2^33
    let s = (s & 0xffff_ffff) + (s >> 32); // < 2^32 (a carry out of the first step is 1)
    let s = (s & 0xffff) + (s >> 16); // < 2^17
    let s = (s & 0xffff) + (s >> 16); // <= 0xffff
    s as u16
}

/// The one's-complement sum of `data` as big-endian 16-bit words. An odd trailing byte is
/// padded with a zero byte on the right, as RFC 1071 specifies.
///
/// Adds big-endian 32-bit words into a 64-bit accumulator and folds once at the end: since
/// 2^16 ≡ 1 (mod 2^16 - 1), the folded sum of 32-bit words equals that of the 16-bit words
/// (RFC 1071 §2(B), "parallel summation"), and the accumulator cannot overflow below 2^34 bytes.
/// A 20-byte IPv4 header is five additions (this runs twice per forwarded packet); inlined, a
/// call with a constant length unrolls completely.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 4];
        last[..rest.len()].copy_from_slice(rest);
        acc += u64::from(u32::from_be_bytes(last));
    }
    fold(acc)
}

/// One's-complement addition of partial sums (for example a pseudo-header and a payload).
/// Every part except possibly the last must cover an even number of bytes.
pub fn combine(parts: &[u16]) -> u16 {
    fold(parts.iter().map(|&p| u64::from(p)).sum())
}

/// The checksum of `data` as written on the wire: the complement of [`sum`].
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// The addresses an upper-layer checksum covers (RFC 768, RFC 793, RFC 8200 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudoHeader {
    /// IPv4: source, destination, zero, protocol, upper-layer length (16 bits).
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// IPv6: source, destination, upper-layer length (32 bits), three zero bytes, next header.
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Final destination address.
        dst: Ipv6Addr,
    },
}

impl PseudoHeader {
    /// The sum of the pseudo-header for an upper-layer packet of `protocol` and `length` bytes.
    pub fn sum(&self, protocol: IpProtocol, length: u32) -> u16 {
        match self {
            PseudoHeader::V4 { src, dst } => combine(&[
                sum(&src.octets()),
                sum(&dst.octets()),
                u16::from(protocol.0),
                // The IPv4 pseudo-header carries a 16-bit length; IPv4 payloads cannot be longer.
                (length & 0xffff) as u16,
            ]),
            PseudoHeader::V6 { src, dst } => combine(&[
                sum(&src.octets()),
                sum(&dst.octets()),
                (length >> 16) as u16,
                (length & 0xffff) as u16,
                u16::from(protocol.0),
            ]),
        }
    }

    /// Whether this is an IPv6 pseudo-header (UDP checksums are mandatory there).
    pub fn is_v6(&self) -> bool {
        matches!(self, PseudoHeader::V6 { .. })
    }
}

/// The checksum to write into an upper-layer header (TCP, UDP, ICMPv6) whose checksum field is
/// zero in `segment`.
pub fn upper_layer(pseudo: &PseudoHeader, protocol: IpProtocol, segment: &[u8]) -> u16 {
    // Segments longer than u32::MAX cannot exist in a packet buffer; saturate rather than wrap.
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    !combine(&[pseudo.sum(protocol, len), sum(segment)])
}

/// Whether `segment` (checksum field included) has a correct upper-layer checksum.
pub fn verify_upper_layer(pseudo: &PseudoHeader, protocol: IpProtocol, segment: &[u8]) -> bool {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    combine(&[pseudo.sum(protocol, len), sum(segment)]) == 0xffff
}

/// RFC 1624 eq. 3: the new checksum after a 16-bit word covered by `checksum` changed from
/// `old` to `new`. The word must sit at an even offset from the start of the checksummed data.
#[inline]
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!checksum) + u64::from(!old) + u64::from(new))
}

/// As [`update16`] for an aligned 32-bit field (a sequence number, an IPv4 address).
#[inline]
pub fn update32(checksum: u16, old: u32, new: u32) -> u16 {
    let c = update16(checksum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// As [`update16`] for a field of `N` bytes starting at an even offset (an IPv6 address, a MAC
/// inside a checksummed header). An odd last byte is treated as the high half of a word, which
/// is where it sits when the field starts at an even offset.
pub fn update_bytes<const N: usize>(checksum: u16, old: &[u8; N], new: &[u8; N]) -> u16 {
    let acc = u64::from(!checksum) + u64::from(!sum(old)) + u64::from(sum(new));
    !fold(acc)
}

/// [`update32`] for an IPv4 address change (the IPv4 header checksum, or a TCP/UDP checksum
/// through the pseudo-header).
#[inline]
pub fn update_ipv4_addr(checksum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    update32(checksum, u32::from(old), u32::from(new))
}

/// [`update_bytes`] for an IPv6 address change (TCP/UDP/ICMPv6 checksums through the
/// pseudo-header).
#[inline]
pub fn update_ipv6_addr(checksum: u16, old: Ipv6Addr, new: Ipv6Addr) -> u16 {
    update_bytes(checksum, &old.octets(), &new.octets())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*) so randomised tests repeat exactly.
    pub(crate) struct XorShift(pub u64);

    impl XorShift {
        pub(crate) fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        pub(crate) fn next_u16(&mut self) -> u16 {
            (self.next_u64() >> 40) as u16
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }
        pub(crate) fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                *b = (self.next_u64() >> 56) as u8;
            }
        }
    }

    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
        // The same words in odd-sized pieces combine to the same sum when split at even offsets.
        assert_eq!(combine(&[sum(&data[..2]), sum(&data[2..])]), 0xddf2);
    }

    /// An odd trailing byte counts as the high byte of a zero-padded word.
    /// The 32-bit-word sum equals the plain RFC 1071 loop over 16-bit words for every length
    /// from 0 to 99 (all remainders mod 4, odd and even) on random data and on all-0xff data
    /// (the most carries).
    #[test]
    fn sum_equals_the_16_bit_word_loop() {
        fn reference(data: &[u8]) -> u16 {
            let mut acc: u64 = 0;
            for pair in data.chunks(2) {
                acc += u64::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]));
            }
            fold(acc)
        }
        let mut rng = XorShift(0x0dd_5eed);
        for len in 0..100 {
            let random: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            assert_eq!(sum(&random), reference(&random), "random, {len} bytes");
            let ones = vec![0xffu8; len];
            assert_eq!(sum(&ones), reference(&ones), "0xff, {len} bytes");
        }
    }

    #[test]
    fn odd_length_pads_right() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x00, 0x01, 0x02]), 0x0201);
    }

    /// Known answer: the classic IPv4 header from Wikipedia's "IPv4 header checksum" article
    /// (also `python3 -c` over the same bytes) has checksum b861.
    #[test]
    fn ipv4_header_known_answer() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum(&hdr), 0xffff);
    }

    /// The IPv6 pseudo-header puts the 32-bit length and next header where RFC 8200 says; the
    /// IPv4 one differs only in layout, so a v4 and v6 sum over the same numbers differ.
    #[test]
    fn pseudo_header_layouts() {
        let v4 = PseudoHeader::V4 { src: Ipv4Addr::new(10, 0, 0, 1), dst: Ipv4Addr::new(10, 0, 0, 2) };
        // 0a00 + 0001 + 0a00 + 0002 + 0006 + 0014 = 141d
        assert_eq!(v4.sum(IpProtocol::TCP, 20), 0x141d);
        let v6 = PseudoHeader::V6 { src: Ipv6Addr::LOCALHOST, dst: Ipv6Addr::LOCALHOST };
        // 1 + 1 + 0 + 0x10000 folded... length 0x0001_0000 adds 0x0001, plus next header 0x11.
        assert_eq!(v6.sum(IpProtocol::UDP, 0x1_0000), 1 + 1 + 1 + 0x11);
    }

    /// Incremental updates (16-bit, 32-bit and N-byte) give exactly the checksum a full
    /// recomputation gives, over 20 000 random rewrites of random buffers (fixed seed).
    #[test]
    fn incremental_update_equals_full_recompute() {
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        for round in 0..20_000 {
            let len = 20 + 2 * rng.below(40);
            let mut buf = [0u8; 100];
            let buf = &mut buf[..len];
            rng.fill(buf);
            let mut csum = checksum(buf);
            // A run of rewrites on the same buffer, as the pipeline does (TTL, then address...).
            for _ in 0..4 {
                match round % 3 {
                    0 => {
                        let off = 2 * rng.below(len / 2);
                        let old = u16::from_be_bytes([buf[off], buf[off + 1]]);
                        let new = rng.next_u16();
                        buf[off..off + 2].copy_from_slice(&new.to_be_bytes());
                        csum = update16(csum, old, new);
                    }
                    1 => {
                        let off = 2 * rng.below(len / 2 - 1);
                        let old = u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]);
                        let new = rng.next_u64() as u32;
                        buf[off..off + 4].copy_from_slice(&new.to_be_bytes());
                        csum = update32(csum, old, new);
                    }
                    _ => {
                        let off = 2 * rng.below(len / 2 - 8);
                        let mut old = [0u8; 16];
                        old.copy_from_slice(&buf[off..off + 16]);
                        let mut new = [0u8; 16];
                        rng.fill(&mut new);
                        buf[off..off + 16].copy_from_slice(&new);
                        csum = update_bytes(csum, &old, &new);
                    }
                }
                assert_eq!(csum, checksum(buf), "round {round}");
            }
        }
    }

    /// A rewrite that does not change the field leaves the checksum as it was.
    #[test]
    fn identity_update_keeps_checksum() {
        for c in [0x0000, 0x1234, 0xfffe] {
            assert_eq!(update16(c, 0xabcd, 0xabcd), c);
            assert_eq!(update32(c, 0xdead_beef, 0xdead_beef), c);
        }
    }
}
