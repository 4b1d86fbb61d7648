//! IPv6 (RFC 8200) and a bounded extension-header walker.
//!
//! [`Ipv6Packet::check_len`] guarantees version 6 and `40 + payload length ≤ buffer length`;
//! the payload ends at the payload length (Ethernet padding excluded). Jumbograms (RFC 2675)
//! are not supported: a zero payload length is an empty payload.
//!
//! The upper-layer header is found by walking the extension-header chain with
//! [`Ipv6ExtHeaders`] (or [`Ipv6Packet::upper_layer`], which does the whole walk). The walk is
//! bounded twice: every header advances at least 8 bytes through a finite buffer, and at most
//! [`MAX_IPV6_EXT_HEADERS`] headers are accepted before [`Error::ExtHeaderLimit`]. A chain that
//! "references itself" (a Destination Options header whose next header is again Destination
//! Options, repeated) is just a long chain and hits the same limit; the walker can never loop.

use core::fmt;
use std::net::Ipv6Addr;

use super::checksum::PseudoHeader;
use super::ip::IpProtocol;
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// Most extension headers accepted in one packet before dropping it with
/// [`Error::ExtHeaderLimit`].
///
/// RFC 8200 §4.1 recommends at most one of each kind, in order (Hop-by-Hop, Destination
/// Options, Routing, Fragment, AH, ESP, Destination Options): 7 headers. 8 admits every
/// legitimate chain while bounding per-packet parsing work to 8 header reads; it costs no
/// memory (the walk keeps no state beyond a counter).
pub const MAX_IPV6_EXT_HEADERS: usize = 8;

mod field {
    use crate::wire::Field;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;

    // Extension headers (generic): next header, then length.
    pub const EXT_NXT_HDR: usize = 0;
    pub const EXT_LEN: usize = 1;
    // Fragment header (RFC 8200 §4.5).
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
    pub const FRAG_HEADER_LEN: usize = 8;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Ipv6Packet<T> {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Ipv6Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated`: fewer than 40 bytes. `Malformed`: version not 6, or payload length beyond
    /// the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::Malformed);
        }
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (6 after `check_len`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        (read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload length (extension headers included).
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The first next-header value (an extension header or the upper layer).
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr_at(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// The payload: `40..40 + payload_len` (extension headers included).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }

    /// The extension headers of this packet, in order.
    pub fn ext_headers(&self) -> Ipv6ExtHeaders<'_> {
        Ipv6ExtHeaders::new(self.next_header(), self.payload())
    }

    /// Walks the whole extension-header chain and says where the upper layer starts.
    pub fn upper_layer(&self) -> Result<Ipv6Upper> {
        let mut walker = self.ext_headers();
        let mut fragment = None;
        for ext in &mut walker {
            let ext = ext?;
            if let Some(f) = ext.fragment() {
                fragment = Some(f);
            }
        }
        Ok(Ipv6Upper {
            protocol: walker.next_header(),
            offset: HEADER_LEN + walker.offset(),
            ext_headers: walker.headers_walked(),
            fragment,
        })
    }

    /// The pseudo-header for the upper layer's checksum (assumes no Routing header changes
    /// the final destination; packets with a Routing header are not VIP traffic we serve).
    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::V6 { src: self.src_addr(), dst: self.dst_addr() }
    }
}

fn addr_at(data: &[u8], f: super::Field) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&data[f]);
    Ipv6Addr::from(a)
}

impl<'a> Ipv6Packet<&'a [u8]> {
    /// The payload with the buffer's lifetime (to chain views).
    pub fn into_payload(self) -> &'a [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &self.buffer[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets version 6, traffic class and flow label (masked to 20 bits) at once.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        write_u32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = value.0;
    }
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value;
    }
    /// Sets the source address (upper-layer checksums cover it: patch them).
    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }
    /// Sets the destination address (upper-layer checksums cover it: patch them).
    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }
    /// Decrements the hop limit (IPv6 has no header checksum). Returns the new value; 0 stays
    /// 0 (the caller drops the packet).
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(h);
        h
    }
    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// What the extension-header walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Upper {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, IPIP...), or ESP / No Next Header where the
    /// walk must stop.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// How many extension headers were skipped.
    pub ext_headers: usize,
    /// The Fragment header's fields, if there was one. For a non-first fragment
    /// (`offset != 0`) the bytes at `offset` are fragment data, not an upper-layer header.
    pub fragment: Option<Ipv6Fragment>,
}

/// The fields of an IPv6 Fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Fragment offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more_frags: bool,
    /// Identification.
    pub ident: u32,
}

/// One extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6ExtHeader<'a> {
    /// Which extension header this is.
    pub kind: IpProtocol,
    /// The header that follows it.
    pub next_header: IpProtocol,
    /// Offset from the start of the IPv6 payload.
    pub offset: usize,
    /// The whole header (next header and length bytes included).
    pub data: &'a [u8],
}

impl Ipv6ExtHeader<'_> {
    /// The Fragment header's fields, if this is one.
    pub fn fragment(&self) -> Option<Ipv6Fragment> {
        if self.kind != IpProtocol::IPV6_FRAG {
            return None;
        }
        // The walker only yields Fragment headers of exactly 8 bytes.
        let off_m = read_u16(self.data, field::FRAG_OFF_M);
        Some(Ipv6Fragment {
            offset: off_m & 0xfff8,
            more_frags: off_m & 0x1 != 0,
            ident: read_u32(self.data, field::FRAG_IDENT),
        })
    }

    /// The options area of a Hop-by-Hop or Destination Options header (after the two fixed
    /// bytes); for other kinds, everything after the two fixed bytes.
    pub fn body(&self) -> &[u8] {
        &self.data[2..]
    }
}

/// Walks an extension-header chain: yields each header, then stops at the upper layer.
///
/// Errors (each ends the walk): `Truncated` if a header runs past the payload;
/// `Malformed` for a Hop-by-Hop header that is not first; `ExtHeaderLimit` after
/// [`MAX_IPV6_EXT_HEADERS`] headers. After the walk, [`Self::next_header`] and
/// [`Self::offset`] tell where the upper layer is.
#[derive(Debug, Clone)]
pub struct Ipv6ExtHeaders<'a> {
    payload: &'a [u8],
    next: IpProtocol,
    offset: usize,
    count: usize,
    done: bool,
}

impl<'a> Ipv6ExtHeaders<'a> {
    /// Starts a walk over `payload` (the bytes after the fixed IPv6 header), whose first header
    /// is `first`.
    pub fn new(first: IpProtocol, payload: &'a [u8]) -> Ipv6ExtHeaders<'a> {
        Ipv6ExtHeaders { payload, next: first, offset: 0, count: 0, done: false }
    }

    /// The protocol of the header at [`Self::offset`].
    pub fn next_header(&self) -> IpProtocol {
        self.next
    }

    /// Offset of the next header from the start of the payload.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Extension headers walked so far.
    pub fn headers_walked(&self) -> usize {
        self.count
    }

    /// Whether `proto` is an extension header this walker steps over.
    pub fn is_ext_header(proto: IpProtocol) -> bool {
        matches!(
            proto,
            IpProtocol::HOP_BY_HOP
                | IpProtocol::IPV6_ROUTE
                | IpProtocol::IPV6_FRAG
                | IpProtocol::IPV6_OPTS
                | IpProtocol::AH
        )
    }

    fn fail(&mut self, err: Error) -> Option<Result<Ipv6ExtHeader<'a>>> {
        self.done = true;
        Some(Err(err))
    }
}

impl<'a> Iterator for Ipv6ExtHeaders<'a> {
    type Item = Result<Ipv6ExtHeader<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || !Self::is_ext_header(self.next) {
            self.done = true;
            return None;
        }
        if self.count >= MAX_IPV6_EXT_HEADERS {
            return self.fail(Error::ExtHeaderLimit);
        }
        if self.next == IpProtocol::HOP_BY_HOP && self.count != 0 {
            // RFC 8200 §4.3: Hop-by-Hop may only follow the IPv6 header.
            return self.fail(Error::Malformed);
        }
        let rest = self.payload.get(self.offset..).unwrap_or(&[]);
        if rest.len() < 2 {
            return self.fail(Error::Truncated);
        }
        let len = match self.next {
            IpProtocol::IPV6_FRAG => field::FRAG_HEADER_LEN,
            // RFC 4302: AH length is in 4-byte units, minus 2.
            IpProtocol::AH => (usize::from(rest[field::EXT_LEN]) + 2) * 4,
            _ => (usize::from(rest[field::EXT_LEN]) + 1) * 8,
        };
        if rest.len() < len {
            return self.fail(Error::Truncated);
        }
        let header = Ipv6ExtHeader {
            kind: self.next,
            next_header: IpProtocol(rest[field::EXT_NXT_HDR]),
            offset: self.offset,
            data: &rest[..len],
        };
        self.count += 1;
        self.offset += len;
        self.next = header.next_header;
        if header.fragment().is_some_and(|f| f.offset != 0) {
            // A later fragment: what follows is data, not headers.
            self.done = true;
        }
        Some(Ok(header))
    }
}

/// An IPv6 header as a value (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Payload length in bytes.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits; tunnels put flow entropy here).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Reads the fixed header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Header length: 40.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The pseudo-header for the payload's checksum.
    pub fn pseudo_header(&self) -> PseudoHeader {
        PseudoHeader::V6 { src: self.src_addr, dst: self.dst_addr }
    }

    /// Writes all 40 header bytes; `packet` must be at least [`Self::buffer_len`] long.
    /// `Malformed` (nothing written) if the payload does not fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) -> Result<()> {
        let len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        packet.set_version_tc_flow(self.traffic_class, self.flow_label);
        packet.set_payload_len(len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

impl fmt::Display for Ipv6Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ip6 {} > {} {} len {} hlim {}", self.src_addr, self.dst_addr, self.next_header, self.payload_len, self.hop_limit)?;
        if self.flow_label != 0 {
            write!(f, " flow 0x{:05x}", self.flow_label)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// IPv6 + Hop-by-Hop (router alert, padded to 8) + Destination Options (PadN) + UDP
    /// 2001:db8::2:40000 → 2001:db8::1:53 with 4 bytes of data. UDP checksum 0x6a4e from a
    /// python3 RFC 1071 one-liner over the IPv6 pseudo-header.
    pub(crate) static V6_EXT_UDP: [u8; 68] = [
        0x60, 0x00, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x40, // ver, len 28, next HBH, hlim 64
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // src
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // dst
        0x3c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, // HBH: next dst-opts, router alert, PadN
        0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // dst opts: next UDP, PadN(4)
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x6a, 0x4e, // UDP 40000 > 53 len 12
        0xde, 0xad, 0xbe, 0xef,
    ];

    /// The fixture's fixed header and chain: two ext headers, UDP at offset 56.
    #[test]
    fn parse_and_walk() {
        let p = Ipv6Packet::new_checked(&V6_EXT_UDP[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 28);
        assert_eq!(p.next_header(), IpProtocol::HOP_BY_HOP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        let kinds: Vec<_> = p.ext_headers().map(|h| h.unwrap().kind).collect();
        assert_eq!(kinds, [IpProtocol::HOP_BY_HOP, IpProtocol::IPV6_OPTS]);
        let up = p.upper_layer().unwrap();
        assert_eq!(up, Ipv6Upper { protocol: IpProtocol::UDP, offset: 56, ext_headers: 2, fragment: None });
        let udp = crate::wire::UdpPacket::new_checked(&V6_EXT_UDP[up.offset..]).unwrap();
        assert!(udp.verify_checksum(&p.pseudo_header()), "checksum 0x{:04x}", udp.checksum());
    }

    /// A first fragment walks on to the upper layer; a later fragment stops at the fragment
    /// data and reports the offset.
    #[test]
    fn fragments() {
        let mut buf = [0u8; 40 + 8 + 8];
        let repr = Ipv6Repr {
            src_addr: Ipv6Addr::LOCALHOST,
            dst_addr: Ipv6Addr::LOCALHOST,
            next_header: IpProtocol::IPV6_FRAG,
            payload_len: 16,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        };
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
        buf[40..48].copy_from_slice(&[6, 0, 0x00, 0x01, 0xca, 0xfe, 0xba, 0xbe]);
        let up = Ipv6Packet::new_checked(&buf[..]).unwrap().upper_layer().unwrap();
        assert_eq!(up.protocol, IpProtocol::TCP);
        assert_eq!(up.offset, 48);
        assert_eq!(up.fragment, Some(Ipv6Fragment { offset: 0, more_frags: true, ident: 0xcafe_babe }));
        // Offset 1480 (0x05c8), and the "data" looks like another ext header: not walked.
        buf[40..48].copy_from_slice(&[0x3c, 0, 0x05, 0xc8, 0, 0, 0, 1]);
        let up = Ipv6Packet::new_checked(&buf[..]).unwrap().upper_layer().unwrap();
        assert_eq!(up.protocol, IpProtocol::IPV6_OPTS);
        assert_eq!(up.fragment.map(|f| (f.offset, f.more_frags)), Some((1480, false)));
        assert_eq!(up.ext_headers, 1);
    }

    /// Chains longer than the limit, and a self-referencing Destination Options chain filling a
    /// jumbo-sized buffer, end in `ExtHeaderLimit`; exactly the limit is accepted.
    #[test]
    fn ext_header_limit() {
        let mut payload = [0u8; 8 * (MAX_IPV6_EXT_HEADERS + 1)];
        for i in 0..=MAX_IPV6_EXT_HEADERS {
            payload[i * 8] = if i == MAX_IPV6_EXT_HEADERS { 59 } else { 60 };
        }
        let mut exact = payload;
        exact[8 * (MAX_IPV6_EXT_HEADERS - 1)] = 17;
        let mut w = Ipv6ExtHeaders::new(IpProtocol::IPV6_OPTS, &exact);
        assert!(w.by_ref().all(|h| h.is_ok()));
        assert_eq!((w.headers_walked(), w.next_header()), (MAX_IPV6_EXT_HEADERS, IpProtocol::UDP));
        let errs: Vec<_> = Ipv6ExtHeaders::new(IpProtocol::IPV6_OPTS, &payload).filter_map(|h| h.err()).collect();
        assert_eq!(errs, [Error::ExtHeaderLimit]);
        let looping = [60u8, 0, 0, 0, 0, 0, 0, 0].repeat(8000);
        let items = Ipv6ExtHeaders::new(IpProtocol::IPV6_OPTS, &looping).count();
        assert_eq!(items, MAX_IPV6_EXT_HEADERS + 1, "the walk stops right after the limit");
    }

    /// A header running past the payload is `Truncated`; Hop-by-Hop after another header is
    /// `Malformed`; payload length beyond the buffer `Malformed`; short buffers `Truncated`.
    #[test]
    fn rejects() {
        for len in 0..40 {
            assert_eq!(Ipv6Packet::new_checked(&V6_EXT_UDP[..len]).unwrap_err(), Error::Truncated);
        }
        for len in 40..68 {
            assert_eq!(Ipv6Packet::new_checked(&V6_EXT_UDP[..len]).unwrap_err(), Error::Malformed);
        }
        let mut long_ext = V6_EXT_UDP;
        long_ext[41] = 4; // HBH claims 40 bytes
        let p = Ipv6Packet::new_checked(&long_ext[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Truncated));
        let mut hbh_late = V6_EXT_UDP;
        hbh_late[48] = 0; // dst-opts says next is HBH
        let p = Ipv6Packet::new_checked(&hbh_late[..]).unwrap();
        assert_eq!(p.upper_layer(), Err(Error::Malformed));
        let mut v4 = V6_EXT_UDP;
        v4[0] = 0x45;
        assert_eq!(Ipv6Packet::new_checked(&v4[..]).unwrap_err(), Error::Malformed);
    }

    /// Emit over garbage writes all 40 bytes; parse gives back the same value.
    #[test]
    fn repr_round_trip_over_garbage() {
        let p = Ipv6Packet::new_checked(&V6_EXT_UDP[..]).unwrap();
        let repr = Ipv6Repr::parse(&p).unwrap();
        let mut buf = [0xa5u8; 68];
        buf[40..].copy_from_slice(&V6_EXT_UDP[40..]);
        repr.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, V6_EXT_UDP);
        let tc = Ipv6Repr { traffic_class: 0xb8, flow_label: 0xabcde, ..repr };
        tc.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).unwrap()).unwrap(), tc);
        let huge = Ipv6Repr { payload_len: 65_536, ..repr };
        assert_eq!(huge.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])), Err(Error::Malformed));
    }
}
