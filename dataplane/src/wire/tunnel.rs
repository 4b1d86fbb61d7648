//! Outer headers for tunnel-mode DSR: IPIP (4in4), IP6IP6, 4in6 and 6in4 are an outer IPv4/IPv6
//! header with protocol 4 or 41; GUE adds UDP (and, for variant 0, a GUE header) in between.
//!
//! The pipeline prepends [`TunnelRepr::header_len`] bytes to the frame's IP packet and calls
//! [`TunnelRepr::emit`] over the grown buffer: it writes every outer byte (the space may hold
//! garbage) and leaves the inner packet untouched. The outer source address and the UDP source
//! port are chosen by the caller per flow, so backends' RSS spreads the flows (Katran, GLB).

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::PseudoHeader;
use super::gue::{GueHeader, GueRepr};
use super::ip::IpProtocol;
use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr};
use super::udp::{self, UdpPacket, UdpRepr};
use super::{Error, Result};

/// Outer addresses of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OuterAddrs {
    /// IPv4 outer header (IPIP, 6in4, GUE over IPv4).
    V4 {
        /// Balancer-side source (varied per flow for RSS).
        src: Ipv4Addr,
        /// The backend.
        dst: Ipv4Addr,
    },
    /// IPv6 outer header (IP6IP6, 4in6, GUE over IPv6).
    V6 {
        /// Balancer-side source (varied per flow for RSS).
        src: Ipv6Addr,
        /// The backend.
        dst: Ipv6Addr,
    },
}

/// What sits between the outer IP header and the inner packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encap<'a> {
    /// Nothing: plain IP-in-IP.
    Ip,
    /// UDP, then the inner packet directly (GUE variant 1, Katran).
    GueDirect {
        /// Per-flow source port.
        src_port: u16,
        /// The backends' GUE port.
        dst_port: u16,
    },
    /// UDP, then a variant-0 GUE header with `fields` (GLB's hop list), then the inner packet.
    Gue {
        /// Per-flow source port.
        src_port: u16,
        /// The backends' GUE port.
        dst_port: u16,
        /// Extension fields and private data (multiple of 4 bytes).
        fields: &'a [u8],
    },
}

/// Everything needed to write a tunnel's outer headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRepr<'a> {
    /// Outer addresses.
    pub outer: OuterAddrs,
    /// Encapsulation between outer IP and inner packet.
    pub encap: Encap<'a>,
    /// The inner packet's version: [`IpProtocol::IPV4`] or [`IpProtocol::IPV6`]
    /// (see [`inner_protocol`]).
    pub inner: IpProtocol,
    /// Outer TTL / hop limit.
    pub hop_limit: u8,
    /// Outer DSCP/ECN; RFC 6040 "normal mode" copies the inner value.
    pub tos: u8,
    /// Outer IPv6 flow label (flow entropy for ECMP; ignored for IPv4).
    pub flow_label: u32,
    /// Compute the UDP checksum. Optional over IPv4; over IPv6 a zero checksum needs the
    /// receiver to allow it (RFC 6935; Linux `udp6zerocsumrx`), so set this unless it does.
    pub udp_checksum: bool,
}

/// The encapsulation protocol for an inner IP packet, read from its version nibble:
/// `IPV4` (protocol 4) or `IPV6` (41). `Truncated` if empty, `Malformed` for other versions.
pub fn inner_protocol(inner: &[u8]) -> Result<IpProtocol> {
    match inner.first().map(|b| b >> 4) {
        None => Err(Error::Truncated),
        Some(4) => Ok(IpProtocol::IPV4),
        Some(6) => Ok(IpProtocol::IPV6),
        Some(_) => Err(Error::Malformed),
    }
}

impl TunnelRepr<'_> {
    fn ip_len(&self) -> usize {
        match self.outer {
            OuterAddrs::V4 { .. } => ipv4::HEADER_LEN,
            OuterAddrs::V6 { .. } => ipv6::HEADER_LEN,
        }
    }

    fn udp_payload_extra(&self) -> Option<usize> {
        match self.encap {
            Encap::Ip => None,
            Encap::GueDirect { .. } => Some(0),
            Encap::Gue { fields, .. } => Some(super::gue::HEADER_LEN + fields.len()),
        }
    }

    /// Bytes the outer headers take in front of the inner packet.
    pub fn header_len(&self) -> usize {
        self.ip_len() + self.udp_payload_extra().map_or(0, |gue| udp::HEADER_LEN + gue)
    }

    /// Writes the outer headers into `packet[..header_len()]`; the inner packet is
    /// `packet[header_len()..]`. `Truncated` if `packet` is shorter than the headers;
    /// `Malformed` if the result would exceed 65535 bytes or the GUE fields are not a multiple
    /// of 4 (nothing useful is written in either case: drop the packet).
    pub fn emit(&self, packet: &mut [u8]) -> Result<()> {
        let hlen = self.header_len();
        if packet.len() < hlen {
            return Err(Error::Truncated);
        }
        let ip_len = self.ip_len();
        let ip_payload_len = packet.len() - ip_len;
        let next_header = match self.encap {
            Encap::Ip => self.inner,
            Encap::GueDirect { .. } | Encap::Gue { .. } => IpProtocol::UDP,
        };
        match self.outer {
            OuterAddrs::V4 { src, dst } => {
                let repr = Ipv4Repr {
                    tos: self.tos,
                    ..Ipv4Repr::new(src, dst, next_header, ip_payload_len, self.hop_limit)
                };
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut packet[..ip_len]))?;
            }
            OuterAddrs::V6 { src, dst } => {
                let repr = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header,
                    payload_len: ip_payload_len,
                    hop_limit: self.hop_limit,
                    traffic_class: self.tos,
                    flow_label: self.flow_label,
                };
                repr.emit(&mut Ipv6Packet::new_unchecked(&mut packet[..ip_len]))?;
            }
        }
        let (src_port, dst_port, fields) = match self.encap {
            Encap::Ip => return Ok(()),
            Encap::GueDirect { src_port, dst_port } => (src_port, dst_port, None),
            Encap::Gue { src_port, dst_port, fields } => (src_port, dst_port, Some(fields)),
        };
        let udp_buf = &mut packet[ip_len..];
        let udp_payload_len = udp_buf.len() - udp::HEADER_LEN;
        if let Some(fields) = fields {
            let gue = GueRepr { control: false, proto_ctype: self.inner.0, flags: 0, fields };
            gue.emit(&mut GueHeader::new_unchecked(&mut udp_buf[udp::HEADER_LEN..]))?;
        }
        let mut udp_packet = UdpPacket::new_unchecked(udp_buf);
        UdpRepr { src_port, dst_port }.emit(&mut udp_packet, udp_payload_len)?;
        if self.udp_checksum {
            udp_packet.fill_checksum(&outer_pseudo_header(&self.outer));
        }
        Ok(())
    }
}

/// The pseudo-header of an outer IPv4/IPv6 header (for the GUE UDP checksum), from addresses.
pub fn outer_pseudo_header(outer: &OuterAddrs) -> PseudoHeader {
    match *outer {
        OuterAddrs::V4 { src, dst } => PseudoHeader::V4 { src, dst },
        OuterAddrs::V6 { src, dst } => PseudoHeader::V6 { src, dst },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::gue::GueVariant;
    use crate::wire::ipv4::tests::SYN_V4;
    use crate::wire::ipv6::tests::V6_EXT_UDP;

    fn v4() -> OuterAddrs {
        OuterAddrs::V4 { src: Ipv4Addr::new(172, 16, 1, 2), dst: Ipv4Addr::new(10, 1, 0, 5) }
    }
    fn v6() -> OuterAddrs {
        OuterAddrs::V6 { src: "fc00::1:2".parse().unwrap(), dst: "fc00::5".parse().unwrap() }
    }

    fn encap(repr: &TunnelRepr<'_>, inner: &[u8]) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.header_len() + inner.len()];
        buf[repr.header_len()..].copy_from_slice(inner);
        repr.emit(&mut buf).unwrap();
        assert_eq!(&buf[repr.header_len()..], inner, "inner packet untouched");
        buf
    }

    /// IPIP: a valid outer IPv4 header with protocol 4, the inner TOS, DF, and a total length
    /// covering the inner packet.
    #[test]
    fn ipip_4in4() {
        let repr = TunnelRepr {
            outer: v4(),
            encap: Encap::Ip,
            inner: inner_protocol(&SYN_V4).unwrap(),
            hop_limit: 64,
            tos: 0x10,
            flow_label: 0,
            udp_checksum: false,
        };
        assert_eq!(repr.header_len(), 20);
        let out = encap(&repr, &SYN_V4);
        let outer = Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap()).unwrap();
        assert_eq!(outer.next_header, IpProtocol::IPV4);
        assert_eq!(outer.payload_len, SYN_V4.len());
        assert_eq!((outer.tos, outer.ttl, outer.dont_frag), (0x10, 64, true));
    }

    /// 6in6 and 4in6: protocol 41 / 4 in an outer IPv6 header with the flow label.
    #[test]
    fn ip6ip6_and_4in6() {
        for (inner, proto) in [(&V6_EXT_UDP[..], IpProtocol::IPV6), (&SYN_V4[..], IpProtocol::IPV4)] {
            let repr = TunnelRepr {
                outer: v6(),
                encap: Encap::Ip,
                inner: inner_protocol(inner).unwrap(),
                hop_limit: 64,
                tos: 0,
                flow_label: 0x12345,
                udp_checksum: false,
            };
            let out = encap(&repr, inner);
            let p = Ipv6Packet::new_checked(&out[..]).unwrap();
            assert_eq!(p.next_header(), proto);
            assert_eq!(usize::from(p.payload_len()), inner.len());
            assert_eq!(p.flow_label(), 0x12345);
        }
    }

    /// GUE variant 1 over IPv4 (Katran) and variant 0 with a hop list over IPv6 (GLB-style):
    /// UDP lengths and checksum valid, the GUE header parses, the inner packet follows.
    #[test]
    fn gue_variants() {
        let direct = TunnelRepr {
            outer: v4(),
            encap: Encap::GueDirect { src_port: 0x8123, dst_port: 6080 },
            inner: IpProtocol::IPV4,
            hop_limit: 64,
            tos: 0,
            flow_label: 0,
            udp_checksum: true,
        };
        assert_eq!(direct.header_len(), 28);
        let out = encap(&direct, &SYN_V4);
        let ip = Ipv4Packet::new_checked(&out[..]).unwrap();
        assert_eq!(ip.next_header(), IpProtocol::UDP);
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!((u.src_port(), u.dst_port(), usize::from(u.len())), (0x8123, 6080, 8 + SYN_V4.len()));
        assert!(u.checksum() != 0 && u.verify_checksum(&ip.pseudo_header()));
        assert_eq!(GueVariant::of(u.payload()), Ok(GueVariant::DirectIpv4));

        let hops = [0u8, 0, 0, 1, 10, 0, 0, 12];
        let glb = TunnelRepr {
            outer: v6(),
            encap: Encap::Gue { src_port: 0x8001, dst_port: 19523, fields: &hops },
            inner: IpProtocol::IPV6,
            hop_limit: 64,
            tos: 0,
            flow_label: 7,
            udp_checksum: true,
        };
        assert_eq!(glb.header_len(), 40 + 8 + 4 + 8);
        let out = encap(&glb, &V6_EXT_UDP);
        let ip = Ipv6Packet::new_checked(&out[..]).unwrap();
        let u = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(u.verify_checksum(&ip.pseudo_header()));
        let g = GueHeader::new_checked(u.payload()).unwrap();
        assert_eq!((g.protocol(), g.fields()), (IpProtocol::IPV6, &hops[..]));
        assert_eq!(g.payload(), &V6_EXT_UDP[..]);
    }

    /// Too little room, an oversized result, bad GUE fields and a non-IP inner packet are
    /// errors, not panics.
    #[test]
    fn rejects() {
        let repr = TunnelRepr {
            outer: v4(),
            encap: Encap::Ip,
            inner: IpProtocol::IPV4,
            hop_limit: 1,
            tos: 0,
            flow_label: 0,
            udp_checksum: false,
        };
        assert_eq!(repr.emit(&mut [0u8; 19]), Err(Error::Truncated));
        assert_eq!(repr.emit(&mut vec![0u8; 65_536]), Err(Error::Malformed));
        let bad = TunnelRepr { encap: Encap::Gue { src_port: 1, dst_port: 2, fields: &[1, 2] }, ..repr };
        assert_eq!(bad.emit(&mut [0u8; 64]), Err(Error::Malformed));
        assert_eq!(inner_protocol(&[]), Err(Error::Truncated));
        assert_eq!(inner_protocol(&[0x50]), Err(Error::Malformed));
    }
}
