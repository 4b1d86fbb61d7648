//! IPv4 (RFC 791), options allowed.
//!
//! [`Ipv4Packet::check_len`] guarantees: version 4, IHL ≥ 5, the header (with options) inside
//! the buffer, and `header_len ≤ total_len ≤ buffer length`. The payload is
//! `header_len..total_len`, so Ethernet padding after the datagram is never taken for payload.
//! Fragments parse like any other datagram; the pipeline decides what to do with them
//! ([`Ipv4Packet::is_fragment`]).

use core::fmt;
use std::net::Ipv4Addr;

use super::checksum::{self, PseudoHeader};
use super::ip::IpProtocol;
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::Field;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLG_OFF: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Longest header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The don't-fragment flag in the flags / fragment offset word.
pub const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv4Packet<T> {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated`: fewer than 20 bytes, or options beyond the buffer. `Malformed`: version not
    /// 4, IHL < 5, total length shorter than the header or longer than the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len || total_len > len {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (4 after `check_len`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes, options included (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The whole second byte: DSCP (6 bits) and ECN (2 bits). Tunnels copy it to the outer
    /// header.
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.tos() >> 2
    }

    /// Explicit congestion notification.
    pub fn ecn(&self) -> u8 {
        self.tos() & 0x03
    }

    /// Total length: header plus payload.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes (the field × 8).
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// A fragment: more fragments follow, or this is not the first.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum as on the wire.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        self.header_sum() == 0xffff
    }

    /// The one's-complement sum of the header, options included. Nearly every header has no
    /// options: that case sums a constant 20 bytes, which the compiler unrolls.
    #[inline]
    fn header_sum(&self) -> u16 {
        let b = self.buffer.as_ref();
        match self.header_len() {
            HEADER_LEN => checksum::sum(&b[..HEADER_LEN]),
            n => checksum::sum(&b[..n]),
        }
    }

    /// The options bytes (empty when IHL is 5).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: `header_len..total_len` (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// The pseudo-header for this packet's upper-layer checksum.
    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::V4 { src: self.src_addr(), dst: self.dst_addr() }
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// The payload with the buffer's lifetime (to chain views).
    pub fn into_payload(self) -> &'a [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &self.buffer[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version (4) and IHL from a header length in bytes (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    /// Sets DSCP and ECN at once.
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = value;
    }
    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }
    /// Sets the identification.
    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT, value);
    }
    /// Sets DF, MF and the fragment offset (in bytes; must be a multiple of 8) at once.
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), field::FLG_OFF, v);
    }
    /// Sets the TTL (checksum not updated; see [`Self::decrement_ttl`]).
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }
    /// Sets the protocol.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.0;
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
    /// Sets the source address (checksum not updated; see [`Self::rewrite_src_addr`]).
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }
    /// Sets the destination address (checksum not updated; see [`Self::rewrite_dst_addr`]).
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Recomputes the header checksum over `0..header_len`.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !self.header_sum();
        self.set_checksum(c);
    }

    /// Decrements the TTL and patches the checksum incrementally (RFC 1624). Returns the new
    /// TTL; a TTL already at 0 is left alone and 0 is returned (the caller drops the packet).
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        // TTL is the high byte of the word it shares with the protocol number.
        let proto = u16::from(self.buffer.as_ref()[field::PROTOCOL]);
        let old = (u16::from(ttl) << 8) | proto;
        let new = (u16::from(ttl - 1) << 8) | proto;
        self.set_ttl(ttl - 1);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
        ttl - 1
    }

    /// Replaces the source address and patches the header checksum incrementally. Upper-layer
    /// checksums cover the address too: patch them with
    /// [`checksum::update_ipv4_addr`] (e.g. `TcpPacket::update_checksum_for_addr`).
    pub fn rewrite_src_addr(&mut self, value: Ipv4Addr) {
        let c = checksum::update_ipv4_addr(self.checksum(), self.src_addr(), value);
        self.set_src_addr(value);
        self.set_checksum(c);
    }

    /// Replaces the destination address and patches the header checksum incrementally (see
    /// [`Self::rewrite_src_addr`] for upper-layer checksums).
    pub fn rewrite_dst_addr(&mut self, value: Ipv4Addr) {
        let c = checksum::update_ipv4_addr(self.checksum(), self.dst_addr(), value);
        self.set_dst_addr(value);
        self.set_checksum(c);
    }

    /// The options, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload (`header_len..total_len`), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4 header without options, as a value. Used to build outer tunnel headers and the IP
/// headers of ICMP errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub next_header: IpProtocol,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't fragment.
    pub dont_frag: bool,
    /// More fragments.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
}

impl Ipv4Repr {
    /// Reads a checked packet and verifies its header checksum (`BadChecksum`). Options are
    /// skipped: `payload_len` is measured from the end of the options.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// A plain header: DF set, not a fragment, ident 0, TOS 0.
    pub fn new(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, next_header: IpProtocol, payload_len: usize, ttl: u8) -> Ipv4Repr {
        Ipv4Repr {
            src_addr,
            dst_addr,
            next_header,
            payload_len,
            ttl,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    /// Header length: 20 (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The total length this header declares, or `Malformed` if the payload does not fit the
    /// 16-bit field.
    pub fn total_len(&self) -> Result<u16> {
        u16::try_from(HEADER_LEN + self.payload_len).map_err(|_| Error::Malformed)
    }

    /// The pseudo-header for the payload's checksum.
    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::V4 { src: self.src_addr, dst: self.dst_addr }
    }

    /// Writes all 20 header bytes, checksum included. `packet` must be at least
    /// [`Self::buffer_len`] long. `Malformed` (nothing written) if `payload_len` is too large.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) -> Result<()> {
        let total_len = self.total_len()?;
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_tos(self.tos);
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

impl fmt::Display for Ipv4Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ip {} > {} {} len {} ttl {}", self.src_addr, self.dst_addr, self.next_header, self.payload_len, self.ttl)?;
        if self.tos != 0 {
            write!(f, " tos 0x{:02x}", self.tos)?;
        }
        if self.dont_frag {
            f.write_str(" DF")?;
        }
        if self.more_frags || self.frag_offset != 0 {
            write!(f, " frag id {} off {}{}", self.ident, self.frag_offset, if self.more_frags { "+" } else { "" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A real SYN to 10.0.0.1:80 from 10.0.0.2:43210 as Linux 6.x sends it (MSS 1460, SACK-OK,
    /// timestamps, NOP, window scale 7). The IPv4 (0x0a74) and TCP (0xec14) checksums were
    /// computed with a `python3` RFC 1071 one-liner and reported correct by
    /// `tshark -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE` on the same bytes.
    pub(crate) static SYN_V4: [u8; 60] = [
        // IPv4: 45 00 003c ident 1c46 DF ttl 64 tcp csum ... 10.0.0.2 > 10.0.0.1
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x74, 0x0a, 0x00, 0x00,
        0x02, 0x0a, 0x00, 0x00, 0x01, //
        // TCP: 43210 > 80 seq 0x2f6b3e1a ack 0 doff 10 SYN win 64240 csum urg 0
        0xa8, 0xca, 0x00, 0x50, 0x2f, 0x6b, 0x3e, 0x1a, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0xec, 0x14, 0x00, 0x00, //
        // options: MSS 1460, SACK permitted, TS val 0x0a1b2c3d ecr 0, NOP, WS 7
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x0a, 0x1b, 0x2c, 0x3d, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    /// The SYN fixture's IPv4 header: fields, checksum, payload boundaries.
    #[test]
    fn parse_real_syn_header() {
        let p = Ipv4Packet::new_checked(&SYN_V4[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.next_header(), IpProtocol::TCP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert!(p.verify_checksum(), "checksum 0x{:04x}", p.checksum());
        assert_eq!(p.checksum(), 0x0a74);
        assert_eq!(p.payload().len(), 40);
        assert!(p.options().is_empty());
    }

    /// Trailing Ethernet padding is not payload: the payload ends at total length.
    #[test]
    fn padding_is_not_payload() {
        let mut padded = [0u8; 80];
        padded[..60].copy_from_slice(&SYN_V4);
        let p = Ipv4Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload().len(), 40);
    }

    /// IHL 6 (one option word) is accepted and the payload starts after it; IHL < 5 is
    /// `Malformed` whatever the buffer length; version 6 in an IPv4 view is `Malformed`.
    #[test]
    fn options_and_bad_ihl() {
        let mut with_opt = [0u8; 64];
        with_opt[..20].copy_from_slice(&SYN_V4[..20]);
        with_opt[0] = 0x46;
        with_opt[2..4].copy_from_slice(&64u16.to_be_bytes());
        with_opt[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]); // router alert
        with_opt[24..].copy_from_slice(&SYN_V4[20..]);
        let mut p = Ipv4Packet::new_checked(&mut with_opt[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &SYN_V4[20..]);
        assert!(Ipv4Repr::parse(&p).is_ok());
        for ihl in 0..5u8 {
            let mut bad = SYN_V4;
            bad[0] = 0x40 | ihl;
            assert_eq!(Ipv4Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed, "ihl {ihl}");
        }
        let mut v6 = SYN_V4;
        v6[0] = 0x65;
        assert_eq!(Ipv4Packet::new_checked(&v6[..]).unwrap_err(), Error::Malformed);
    }

    /// Total length beyond the buffer or below the header is `Malformed`; options beyond the
    /// buffer are `Truncated`.
    #[test]
    fn bad_lengths() {
        let mut long = SYN_V4;
        long[2..4].copy_from_slice(&61u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&long[..]).unwrap_err(), Error::Malformed);
        let mut short = SYN_V4;
        short[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Ipv4Packet::new_checked(&short[..]).unwrap_err(), Error::Malformed);
        let mut opts = [0u8; 22];
        opts.copy_from_slice(&SYN_V4[..22]);
        opts[0] = 0x46;
        assert_eq!(Ipv4Packet::new_checked(&opts[..]).unwrap_err(), Error::Truncated);
    }

    /// A corrupted header fails `Ipv4Repr::parse` with `BadChecksum`.
    #[test]
    fn bad_checksum() {
        let mut bad = SYN_V4;
        bad[8] = 63;
        let p = Ipv4Packet::new_checked(&bad[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadChecksum));
    }

    /// Fragment fields: MF and offsets in bytes both make a fragment.
    #[test]
    fn fragment_fields() {
        let mut buf = SYN_V4;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        p.set_frag(false, true, 0);
        assert!(p.is_fragment() && p.more_frags() && !p.dont_frag());
        p.set_frag(false, false, 1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
    }

    /// `emit` over garbage writes the whole header and parse gives back the same value; the
    /// fixture's own header re-emits byte-identically.
    #[test]
    fn repr_round_trip_over_garbage() {
        let repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&SYN_V4[..]).unwrap()).unwrap();
        let mut buf = [0xa5u8; 60];
        buf[20..].copy_from_slice(&SYN_V4[20..]);
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, SYN_V4);
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
        let frag = Ipv4Repr { more_frags: true, frag_offset: 2960, dont_frag: false, ident: 7, tos: 0xb8, ..repr };
        frag.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()).unwrap(), frag);
        let huge = Ipv4Repr { payload_len: 65_516, ..repr };
        assert_eq!(huge.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])), Err(Error::Malformed));
    }

    /// TTL decrement and address rewrites patch the checksum to exactly what a full
    /// recomputation gives.
    #[test]
    fn incremental_rewrites_match_recompute() {
        let mut buf = SYN_V4;
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        for _ in 0..70 {
            p.decrement_ttl();
            p.rewrite_dst_addr(Ipv4Addr::new(192, 168, p.ttl(), 7));
            p.rewrite_src_addr(Ipv4Addr::new(172, 16, 0, p.ttl()));
            let c = p.checksum();
            p.fill_checksum();
            assert_eq!(c, p.checksum());
        }
        assert_eq!(p.ttl(), 0);
        assert_eq!(p.decrement_ttl(), 0);
    }
}
