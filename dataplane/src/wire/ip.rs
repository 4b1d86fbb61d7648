//! IP protocol numbers (the IPv4 `protocol` and IPv6 `next header` fields), shared by both
//! IP versions and the IPv6 extension-header walker.

use core::fmt;

/// An IANA "Assigned Internet Protocol Number". A newtype rather than an enum so any byte off
/// the wire is representable, while the constants still work as `match` patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpProtocol(pub u8);

impl IpProtocol {
    /// IPv6 Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: IpProtocol = IpProtocol(0);
    /// ICMP for IPv4 (RFC 792).
    pub const ICMP: IpProtocol = IpProtocol(1);
    /// IPv4 encapsulated in IP: IPIP (4in4) or 4in6 (RFC 2003, RFC 2473).
    pub const IPV4: IpProtocol = IpProtocol(4);
    /// Transmission Control Protocol.
    pub const TCP: IpProtocol = IpProtocol(6);
    /// User Datagram Protocol.
    pub const UDP: IpProtocol = IpProtocol(17);
    /// IPv6 encapsulated in IP: IP6IP6 or 6in4 (RFC 2473, RFC 4213).
    pub const IPV6: IpProtocol = IpProtocol(41);
    /// IPv6 Routing header (RFC 8200 §4.4).
    pub const IPV6_ROUTE: IpProtocol = IpProtocol(43);
    /// IPv6 Fragment header (RFC 8200 §4.5).
    pub const IPV6_FRAG: IpProtocol = IpProtocol(44);
    /// Encapsulating Security Payload (not walked: its payload is encrypted).
    pub const ESP: IpProtocol = IpProtocol(50);
    /// Authentication Header (RFC 4302; length in 4-byte units minus 2).
    pub const AH: IpProtocol = IpProtocol(51);
    /// ICMP for IPv6 (RFC 4443).
    pub const ICMPV6: IpProtocol = IpProtocol(58);
    /// IPv6 "No Next Header".
    pub const IPV6_NO_NEXT: IpProtocol = IpProtocol(59);
    /// IPv6 Destination Options (RFC 8200 §4.6).
    pub const IPV6_OPTS: IpProtocol = IpProtocol(60);

    /// A short name for logs (`tcp`, `udp`, ...) or `None` for numbers we do not name.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            IpProtocol::HOP_BY_HOP => "hopopt",
            IpProtocol::ICMP => "icmp",
            IpProtocol::IPV4 => "ipip",
            IpProtocol::TCP => "tcp",
            IpProtocol::UDP => "udp",
            IpProtocol::IPV6 => "ipv6",
            IpProtocol::IPV6_ROUTE => "ipv6-route",
            IpProtocol::IPV6_FRAG => "ipv6-frag",
            IpProtocol::ESP => "esp",
            IpProtocol::AH => "ah",
            IpProtocol::ICMPV6 => "icmp6",
            IpProtocol::IPV6_NO_NEXT => "ipv6-nonxt",
            IpProtocol::IPV6_OPTS => "ipv6-opts",
            _ => return None,
        })
    }
}

impl fmt::Display for IpProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "proto-{}", self.0),
        }
    }
}

/// The start of the packet an ICMP error quotes ("invoking packet"): its IP header and the first
/// bytes of its upper layer, enough to find the flow it belongs to.
///
/// The quoted header's length fields describe the original packet, which is longer than the
/// quote, so a quote cannot go through `Ipv4Packet::new_checked`; this type checks only what a
/// quote must contain: a whole IP header (IPv6: and its extension headers) and at least
/// [`QuotedPacket::MIN_L4_LEN`] bytes of the upper layer (RFC 792 requires 64 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedPacket<'a> {
    /// Source address of the invoking packet (our side, for traffic we sent).
    pub src_addr: std::net::IpAddr,
    /// Destination address of the invoking packet.
    pub dst_addr: std::net::IpAddr,
    /// Upper-layer protocol of the invoking packet.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer bytes from the start of the quote.
    pub l4_offset: usize,
    /// The quoted upper-layer bytes (at least [`QuotedPacket::MIN_L4_LEN`]).
    pub l4: &'a [u8],
}

impl<'a> QuotedPacket<'a> {
    /// Upper-layer bytes a quote must hold: ports and (for TCP) the sequence number.
    pub const MIN_L4_LEN: usize = 8;

    /// Reads a quoted IPv4 packet. `Malformed` for a version or IHL that cannot be IPv4;
    /// `Truncated` if the header or 8 upper-layer bytes are missing.
    pub fn parse_ipv4(quote: &'a [u8]) -> super::Result<QuotedPacket<'a>> {
        use super::Error;
        let first = *quote.first().ok_or(Error::Truncated)?;
        let header_len = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header_len < 20 {
            return Err(Error::Malformed);
        }
        if quote.len() < header_len {
            return Err(Error::Truncated);
        }
        let hdr = super::Ipv4Packet::new_unchecked(&quote[..header_len]);
        Self::finish(hdr.src_addr().into(), hdr.dst_addr().into(), hdr.next_header(), quote, header_len)
    }

    /// Reads a quoted IPv6 packet, walking its extension headers (bounded as in
    /// [`super::Ipv6ExtHeaders`]). A quoted non-first fragment is `Unsupported` (it has no
    /// upper-layer header to match a flow with).
    pub fn parse_ipv6(quote: &'a [u8]) -> super::Result<QuotedPacket<'a>> {
        use super::{ipv6, Error, Ipv6ExtHeaders};
        if quote.len() < ipv6::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hdr = super::Ipv6Packet::new_unchecked(&quote[..ipv6::HEADER_LEN]);
        if hdr.version() != 6 {
            return Err(Error::Malformed);
        }
        let mut walk = Ipv6ExtHeaders::new(hdr.next_header(), &quote[ipv6::HEADER_LEN..]);
        for ext in &mut walk {
            if ext?.fragment().is_some_and(|f| f.offset != 0) {
                return Err(Error::Unsupported);
            }
        }
        let l4_offset = ipv6::HEADER_LEN + walk.offset();
        Self::finish(hdr.src_addr().into(), hdr.dst_addr().into(), walk.next_header(), quote, l4_offset)
    }

    fn finish(
        src_addr: std::net::IpAddr,
        dst_addr: std::net::IpAddr,
        protocol: IpProtocol,
        quote: &'a [u8],
        l4_offset: usize,
    ) -> super::Result<QuotedPacket<'a>> {
        let l4 = quote.get(l4_offset..).unwrap_or(&[]);
        if l4.len() < Self::MIN_L4_LEN {
            return Err(super::Error::Truncated);
        }
        Ok(QuotedPacket { src_addr, dst_addr, protocol, l4_offset, l4 })
    }

    /// Source and destination ports of a quoted TCP or UDP header.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.protocol {
            IpProtocol::TCP | IpProtocol::UDP => {
                let p = self.l4.get(..4)?;
                Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
            }
            _ => None,
        }
    }
}
