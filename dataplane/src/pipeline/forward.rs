//! Stage 5: sending a VIP packet to its backend, and the too-big answer when it cannot go.
//!
//! - `dsr-l2`: destination MAC := backend next-hop MAC, source MAC := the NIC's MAC. Nothing
//!   else changes (no TTL decrement: the backend is on the same L2 segment).
//! - `tunnel`: the inner packet's TTL / hop limit is decremented (checksum patched per RFC
//!   1624), then an outer header is put in front of it, growing the frame into its headroom;
//!   Ethernet (and the VLAN tag, kept) move to the new front.
//!   - outer IPv4 (backend IPv4): TTL 64, TOS copied from the inner packet, DF copied from the
//!     inner IPv4 packet (always set for an inner IPv6 packet), ident 0 (RFC 6864: atomic
//!     datagrams), header checksum computed;
//!   - outer IPv6 (backend IPv6): hop limit 64, traffic class copied, flow label = 20 bits of the
//!     flow hash (RFC 6438, so routers and backends spread flows);
//!   - outer source from the service's [`SourceRange`](super::SourceRange): fixed, or varying
//!     per flow in the low bits when configured as a prefix (Katran's 172.16/16 trick), so
//!     backends' RSS spreads tunnelled flows;
//!   - GUE: UDP to the service's port with source port `0x8000 | (hash & 0x7fff)` (GLB), then a
//!     4-byte GUE variant 0 header (version 0, no options, proto = 4 or 41), then the inner
//!     packet. UDP checksum 0 over IPv4 (RFC 768), computed over IPv6 (RFC 8200 §8.1).
//! - The outer header of each backend is prepared when the snapshot is built ([`OuterHeader`]):
//!   per packet the tunnel copies it and sets only the fields that depend on the packet.
//! - Too big: when `inner + overhead > MTU`, an IPv6 packet or an IPv4 packet with DF gets an
//!   ICMP packet-too-big / frag-needed carrying `MTU - overhead`, built in place over the frame
//!   and sent back (`Reply`); an IPv4 packet without DF is dropped (`too_big`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::icmp::{self, IcmpError};
use super::{Ctx, DropReason, Flow, Mode, PacketBuf, Verdict};
use crate::pipeline::snapshot::{Encap, SourceRange};
use crate::wire::{
    checksum, gue, ipv4, ipv6, udp, EtherType, EthernetFrame, GueHeader, GueRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet,
    Ipv6Repr, UdpPacket, UdpRepr, VlanPacket,
};

/// TTL / hop limit of outer headers and of packets we originate.
pub const OUTER_TTL: u8 = 64;

/// GUE's UDP source port: the high bit set (so it is never a well-known port) and 15 bits of
/// the flow hash, as GLB does.
#[inline]
pub fn gue_source_port(hash: u64) -> u16 {
    0x8000 | (hash as u16 & 0x7fff)
}

/// Sets the EtherType of the L3 payload (the VLAN tag's when tagged).
pub(crate) fn set_l3_ethertype(frame: &mut [u8], tagged: bool, ethertype: EtherType) {
    let mut eth = EthernetFrame::new_unchecked(&mut *frame);
    if tagged {
        let mut tag = VlanPacket::new_unchecked(&mut frame[crate::wire::ethernet::HEADER_LEN..]);
        tag.set_ethertype(ethertype);
    } else {
        eth.set_ethertype(ethertype);
    }
}

/// Longest outer header a tunnel puts in front of a packet: IPv6 + UDP + GUE (52 bytes).
pub const OUTER_MAX: usize = ipv6::HEADER_LEN + udp::HEADER_LEN + gue::HEADER_LEN;

/// Longest Ethernet + 802.1Q header the pipeline handles (one tag).
const L2_MAX: usize = crate::wire::ethernet::HEADER_LEN + crate::wire::vlan::HEADER_LEN;

/// The outer source of a tunnel whose service varies it per flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VaryingSource {
    V4(SourceRange<Ipv4Addr>),
    V6(SourceRange<Ipv6Addr>),
}

/// One backend's tunnel header, prepared when the snapshot is built, so that encapsulating a
/// packet is a copy plus the fields that change per packet.
///
/// `bytes` holds the outer IP header (and the UDP and GUE headers for GUE) as the wire module's
/// `emit`s write them, with every field that is the same for all of the backend's packets:
/// version, TTL [`OUTER_TTL`], protocol, addresses (the source when the service's range is a
/// single address), ident 0, the GUE port and header. [`OuterHeader::write`] then sets, per
/// packet, only what depends on it: the lengths, TOS / traffic class, DF, the flow label, the
/// source when it varies per flow, the GUE source port, and the checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    bytes: [u8; OUTER_MAX],
    /// Bytes in use: what the encapsulation adds in front of the inner packet.
    len: u8,
    /// The outer IP header is IPv6.
    v6: bool,
    /// GUE (UDP + GUE header after the IP header).
    gue: bool,
    /// Set when the service's source range varies the outer source per flow.
    vary: Option<VaryingSource>,
    /// IPv4 outer header: the one's-complement sum of `bytes`' header with the per-packet
    /// fields (TOS, total length, DF, and the source when it varies) and the checksum at zero,
    /// so [`OuterHeader::write`] completes the checksum from the fields it sets instead of
    /// summing the header again.
    sum4: u16,
}

impl OuterHeader {
    /// The header for `backend` of a service with `encap`, VIP family `inner_v6` and outer
    /// sources `source4` / `source6`. `None` when the backend's family has no source (the
    /// snapshot refuses such a service before asking).
    pub fn new(encap: Encap, inner_v6: bool, backend: IpAddr, source4: Option<SourceRange<Ipv4Addr>>, source6: Option<SourceRange<Ipv6Addr>>) -> Option<OuterHeader> {
        let inner_proto = if inner_v6 { IpProtocol::IPV6 } else { IpProtocol::IPV4 };
        let gue = matches!(encap, Encap::Gue { .. });
        let next_header = if gue { IpProtocol::UDP } else { inner_proto };
        let mut h = OuterHeader { bytes: [0; OUTER_MAX], len: 0, v6: backend.is_ipv6(), gue, vary: None, sum4: 0 };
        let ip_len = match backend {
            IpAddr::V4(dst) => {
                let src = source4?;
                h.vary = (src.len < 32).then_some(VaryingSource::V4(src));
                let repr = Ipv4Repr {
                    src_addr: src.pick(0),
                    dst_addr: dst,
                    next_header,
                    payload_len: 0,
                    ttl: OUTER_TTL,
                    tos: 0,
                    ident: 0,
                    dont_frag: false,
                    more_frags: false,
                    frag_offset: 0,
                };
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut h.bytes[..])).ok()?;
                let mut fixed = Ipv4Packet::new_unchecked(h.bytes);
                fixed.set_checksum(0);
                fixed.set_total_len(0);
                if h.vary.is_some() {
                    fixed.set_src_addr(Ipv4Addr::UNSPECIFIED);
                }
                h.sum4 = checksum::sum(&fixed.into_inner()[..ipv4::HEADER_LEN]);
                ipv4::HEADER_LEN
            }
            IpAddr::V6(dst) => {
                let src = source6?;
                h.vary = (src.len < 128).then_some(VaryingSource::V6(src));
                let repr = Ipv6Repr {
                    src_addr: src.pick(0),
                    dst_addr: dst,
                    next_header,
                    payload_len: 0,
                    hop_limit: OUTER_TTL,
                    traffic_class: 0,
                    flow_label: 0,
                };
                repr.emit(&mut Ipv6Packet::new_unchecked(&mut h.bytes[..])).ok()?;
                ipv6::HEADER_LEN
            }
        };
        h.len = ip_len as u8;
        if let Encap::Gue { port } = encap {
            let u = &mut h.bytes[ip_len..];
            UdpRepr { src_port: 0, dst_port: port }.emit(&mut UdpPacket::new_unchecked(&mut *u), gue::HEADER_LEN).ok()?;
            GueRepr::data(inner_proto).emit(&mut GueHeader::new_unchecked(&mut u[udp::HEADER_LEN..])).ok()?;
            h.len += (udp::HEADER_LEN + gue::HEADER_LEN) as u8;
        }
        Some(h)
    }

    /// Bytes the encapsulation adds in front of the inner packet.
    #[inline]
    pub fn overhead(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the outer header is IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// Writes the header into `out` (at least [`Self::overhead`] bytes, directly followed by the
    /// `inner_len` bytes of the inner packet) for a packet with TOS / traffic class `tos`, DF
    /// `dont_frag` (IPv4 outer) and flow hash `hash`. The caller checked `len + inner_len`
    /// against the MTU, so every length fits 16 bits. The IPv4 checksum is the prepared `sum4` plus
    /// the fields set here (RFC 1071's sum is order-free), not a second pass over the header.
    #[inline]
    pub fn write(&self, out: &mut [u8], inner_len: usize, tos: u8, dont_frag: bool, hash: u64) {
        // `forward` prepended the overhead in front of an inner IP header, so `out` holds it.
        debug_assert!(out.len() >= self.overhead(), "outer header does not fit: {} < {}", out.len(), self.overhead());
        let ip_len;
        if self.v6 {
            ip_len = ipv6::HEADER_LEN;
            let Some(hdr) = out.get_mut(..ipv6::HEADER_LEN) else { return };
            hdr.copy_from_slice(&self.bytes[..ipv6::HEADER_LEN]);
            let mut ip = Ipv6Packet::new_unchecked(hdr);
            ip.set_version_tc_flow(tos, (hash as u32) & 0x000f_ffff);
            ip.set_payload_len((self.overhead() - ip_len + inner_len) as u16);
            if let Some(VaryingSource::V6(r)) = self.vary {
                ip.set_src_addr(r.pick(hash));
            }
        } else {
            ip_len = ipv4::HEADER_LEN;
            let Some(hdr) = out.get_mut(..ipv4::HEADER_LEN) else { return };
            hdr.copy_from_slice(&self.bytes[..ipv4::HEADER_LEN]);
            let mut ip = Ipv4Packet::new_unchecked(hdr);
            let total = (self.overhead() + inner_len) as u16;
            ip.set_tos(tos);
            ip.set_total_len(total);
            let frag = if dont_frag { ipv4::FLAG_DF } else { 0 };
            ip.set_frag(dont_frag, false, 0);
            let mut sum = [self.sum4, u16::from(tos), total, frag, 0, 0];
            if let Some(VaryingSource::V4(r)) = self.vary {
                let src = r.pick(hash);
                ip.set_src_addr(src);
                let a = u32::from(src);
                sum[4..].copy_from_slice(&[(a >> 16) as u16, a as u16]);
            }
            ip.set_checksum(!checksum::combine(&sum));
        }
        if self.gue {
            const GUE_LEN: usize = udp::HEADER_LEN + gue::HEADER_LEN;
            let Some(g) = out.get_mut(ip_len..ip_len + GUE_LEN) else { return };
            g.copy_from_slice(&self.bytes[ip_len..ip_len + GUE_LEN]);
            let mut dgram = UdpPacket::new_unchecked(g);
            dgram.set_src_port(gue_source_port(hash));
            dgram.set_len((GUE_LEN + inner_len) as u16);
        }
    }
}

/// Sends the packet of `flow` (already truncated to its IP length) to backend `bi` of service
/// `si` in the service's mode.
pub(crate) fn forward<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow, si: u16, bi: u16, hash: u64) -> Verdict {
    let snap = ctx.snap;
    let svc = &snap.services[usize::from(si)];
    let be = &snap.backends[usize::from(bi)];
    let Some(mac) = be.mac else {
        return Verdict::Drop(DropReason::NoNeighbor);
    };
    let nic_mac = ctx.nic_mac();
    let l3 = flow.l3();
    let outer = match (svc.mode, &be.outer) {
        (Mode::Tunnel(_), Some(outer)) => outer,
        (Mode::Tunnel(_), None) => return Verdict::Drop(DropReason::Unsupported),
        (Mode::DsrL2, _) => {
            let mut eth = EthernetFrame::new_unchecked(buf.data_mut());
            eth.set_dst_addr(mac);
            eth.set_src_addr(nic_mac);
            return Verdict::Forward(ctx.in_port);
        }
    };
    let inner_v6 = flow.v6;
    let inner_len = buf.data().len() - l3;
    // The inner IP header through a fixed-size view: one bounds check for all its fields (the
    // IP stage checked that the frame holds it).
    let Some(inner) = buf.data_mut().get_mut(l3..l3 + if inner_v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN }) else {
        return Verdict::Drop(DropReason::Unsupported);
    };
    // TTL first: an expiring packet gets time-exceeded, not too-big.
    let (ttl, tos, dont_frag) = if inner_v6 {
        let ip = Ipv6Packet::new_unchecked(&*inner);
        (ip.hop_limit(), ip.traffic_class(), true)
    } else {
        let ip = Ipv4Packet::new_unchecked(&*inner);
        (ip.ttl(), ip.tos(), ip.dont_frag())
    };
    if ttl <= 1 {
        return icmp::error_reply(ctx, buf, flow, IcmpError::TimeExceeded);
    }
    let over = outer.overhead();
    let mtu = usize::from(snap.host.mtu);
    if inner_len + over > mtu {
        if !dont_frag {
            return Verdict::Drop(DropReason::TooBig);
        }
        return icmp::error_reply(ctx, buf, flow, IcmpError::TooBig((mtu - over) as u16));
    }
    if inner_v6 {
        Ipv6Packet::new_unchecked(inner).decrement_hop_limit();
    } else {
        Ipv4Packet::new_unchecked(inner).decrement_ttl();
    }
    if !buf.prepend(over) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let data = buf.data_mut();
    // The L2 header (and its VLAN tag) moves to the new front. Always the longest L2 header's
    // bytes, a fixed-size move (registers, not a `memmove` call): for an untagged frame the 4
    // bytes too many land where the outer header is written next. (The inner IP header starts
    // at `over + l3`, so they exist.)
    let mut l2 = [0u8; L2_MAX];
    l2.copy_from_slice(&data[over..over + L2_MAX]);
    data[..L2_MAX].copy_from_slice(&l2);
    set_l3_ethertype(data, flow.tagged, if outer.is_v6() { EtherType::IPV6 } else { EtherType::IPV4 });
    {
        let mut eth = EthernetFrame::new_unchecked(&mut *data);
        eth.set_dst_addr(mac);
        eth.set_src_addr(nic_mac);
    }
    outer.write(&mut data[l3..], inner_len, tos, dont_frag, hash);
    if outer.gue && outer.v6 {
        // UDP checksums are mandatory over IPv6 (RFC 8200 §8.1): over the whole inner packet.
        let (ip, dgram) = data[l3..].split_at_mut(ipv6::HEADER_LEN);
        UdpPacket::new_unchecked(dgram).fill_checksum(&Ipv6Packet::new_unchecked(&*ip).pseudo_header());
    }
    Verdict::Forward(ctx.in_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outer header as a full `emit` per packet writes it (what `forward` did before the
    /// prepared header): the reference [`OuterHeader::write`] must match byte for byte.
    #[allow(clippy::too_many_arguments)]
    fn emitted(encap: Encap, inner_v6: bool, backend: IpAddr, src4: SourceRange<Ipv4Addr>, src6: SourceRange<Ipv6Addr>, inner_len: usize, tos: u8, df: bool, hash: u64) -> Vec<u8> {
        let inner_proto = if inner_v6 { IpProtocol::IPV6 } else { IpProtocol::IPV4 };
        let gue = matches!(encap, Encap::Gue { .. });
        let next_header = if gue { IpProtocol::UDP } else { inner_proto };
        let udp_len = if gue { udp::HEADER_LEN + gue::HEADER_LEN } else { 0 };
        let mut out = vec![0u8; OUTER_MAX];
        let ip_len = match backend {
            IpAddr::V4(dst) => {
                let repr = Ipv4Repr {
                    src_addr: src4.pick(hash),
                    dst_addr: dst,
                    next_header,
                    payload_len: udp_len + inner_len,
                    ttl: OUTER_TTL,
                    tos,
                    ident: 0,
                    dont_frag: df,
                    more_frags: false,
                    frag_offset: 0,
                };
                repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..])).unwrap();
                ipv4::HEADER_LEN
            }
            IpAddr::V6(dst) => {
                let repr = Ipv6Repr {
                    src_addr: src6.pick(hash),
                    dst_addr: dst,
                    next_header,
                    payload_len: udp_len + inner_len,
                    hop_limit: OUTER_TTL,
                    traffic_class: tos,
                    flow_label: (hash as u32) & 0x000f_ffff,
                };
                repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..])).unwrap();
                ipv6::HEADER_LEN
            }
        };
        if let Encap::Gue { port } = encap {
            let u = &mut out[ip_len..];
            UdpRepr { src_port: gue_source_port(hash), dst_port: port }.emit(&mut UdpPacket::new_unchecked(&mut *u), gue::HEADER_LEN + inner_len).unwrap();
            GueRepr::data(inner_proto).emit(&mut GueHeader::new_unchecked(&mut u[udp::HEADER_LEN..])).unwrap();
        }
        out.truncate(ip_len + udp_len);
        out
    }

    /// For every encapsulation, outer family, fixed and per-flow sources, and a spread of
    /// lengths, TOS, DF and hashes, the prepared header plus its per-packet fields gives the same
    /// bytes (IPv4 checksum included) as emitting the whole header for that packet.
    #[test]
    fn prepared_header_matches_a_full_emit() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let sources4 = [SourceRange { addr: v4("10.0.0.1"), len: 32 }, SourceRange { addr: v4("172.16.0.0"), len: 16 }];
        let sources6 = [SourceRange { addr: v6("fd00::1"), len: 128 }, SourceRange { addr: v6("fd00:9::"), len: 96 }];
        let backends = [IpAddr::V4(v4("198.18.1.12")), IpAddr::V6(v6("fd00:1::12"))];
        let mut checked = 0;
        for encap in [Encap::Ipip, Encap::Gue { port: 6080 }] {
            for inner_v6 in [false, true] {
                for backend in backends {
                    for (s4, s6) in sources4.into_iter().zip(sources6) {
                        let outer = OuterHeader::new(encap, inner_v6, backend, Some(s4), Some(s6)).unwrap();
                        for (i, hash) in [0u64, 1, 0xdead_beef_cafe_f00d, u64::MAX, 0x0123_4567_89ab_cdef].into_iter().enumerate() {
                            let (inner_len, tos, df) = ([20usize, 40, 1400, 1480, 60][i], [0u8, 0xb8, 0x02, 0xff, 0x10][i], i % 2 == 0);
                            let mut out = vec![0xa5u8; OUTER_MAX];
                            outer.write(&mut out, inner_len, tos, df, hash);
                            let want = emitted(encap, inner_v6, backend, s4, s6, inner_len, tos, df, hash);
                            assert_eq!(outer.overhead(), want.len());
                            assert_eq!(&out[..outer.overhead()], &want[..], "{encap:?} inner_v6={inner_v6} {backend} {s4:?} hash={hash:#x}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 2 * 2 * 2 * 5);
    }

    /// A backend whose family has no tunnel source gets no prepared header.
    #[test]
    fn no_source_no_header() {
        let be = IpAddr::V6("fd00:1::12".parse().unwrap());
        assert!(OuterHeader::new(Encap::Ipip, false, be, Some(SourceRange { addr: Ipv4Addr::new(10, 0, 0, 1), len: 32 }), None).is_none());
    }
}
