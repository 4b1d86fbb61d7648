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
//! - Too big: when `inner + overhead > MTU`, an IPv6 packet or an IPv4 packet with DF gets an
//!   ICMP packet-too-big / frag-needed carrying `MTU - overhead`, built in place over the frame
//!   and sent back (`Reply`); an IPv4 packet without DF is dropped (`too_big`).

use std::net::IpAddr;

use super::icmp::{self, IcmpError};
use super::{Ctx, DropReason, Flow, Mode, PacketBuf, Verdict};
use crate::pipeline::snapshot::Encap;
use crate::wire::{
    gue, ipv4, ipv6, udp, EtherType, EthernetFrame, GueHeader, GueRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet,
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

/// Bytes a service's encapsulation adds in front of the inner packet for a backend.
pub fn overhead(encap: Encap, backend: IpAddr) -> usize {
    let ip = if backend.is_ipv4() { ipv4::HEADER_LEN } else { ipv6::HEADER_LEN };
    match encap {
        Encap::Ipip => ip,
        Encap::Gue { .. } => ip + udp::HEADER_LEN + gue::HEADER_LEN,
    }
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
    let l3 = flow.l2.l3_offset;
    let encap = match svc.mode {
        Mode::DsrL2 => {
            let mut eth = EthernetFrame::new_unchecked(buf.data_mut());
            eth.set_dst_addr(mac);
            eth.set_src_addr(nic_mac);
            return Verdict::Forward(ctx.in_port);
        }
        Mode::Tunnel(encap) => encap,
    };
    let inner_v6 = flow.dst.is_ipv6();
    let inner_len = buf.data().len() - l3;
    // TTL first: an expiring packet gets time-exceeded, not too-big.
    let (tos, dont_frag) = {
        let data = &buf.data()[l3..];
        if inner_v6 {
            let ip = Ipv6Packet::new_unchecked(data);
            if ip.hop_limit() <= 1 {
                return icmp::error_reply(ctx, buf, flow, IcmpError::TimeExceeded);
            }
            (ip.traffic_class(), true)
        } else {
            let ip = Ipv4Packet::new_unchecked(data);
            if ip.ttl() <= 1 {
                return icmp::error_reply(ctx, buf, flow, IcmpError::TimeExceeded);
            }
            (ip.tos(), ip.dont_frag())
        }
    };
    let over = overhead(encap, be.addr);
    let mtu = usize::from(snap.host.mtu);
    if inner_len + over > mtu {
        if !dont_frag {
            return Verdict::Drop(DropReason::TooBig);
        }
        return icmp::error_reply(ctx, buf, flow, IcmpError::TooBig((mtu - over) as u16));
    }
    {
        let data = &mut buf.data_mut()[l3..];
        if inner_v6 {
            Ipv6Packet::new_unchecked(data).decrement_hop_limit();
        } else {
            Ipv4Packet::new_unchecked(data).decrement_ttl();
        }
    }
    if !buf.prepend(over) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    let data = buf.data_mut();
    data.copy_within(over..over + l3, 0);
    let outer_v6 = be.addr.is_ipv6();
    set_l3_ethertype(data, flow.l2.vid.is_some(), if outer_v6 { EtherType::IPV6 } else { EtherType::IPV4 });
    {
        let mut eth = EthernetFrame::new_unchecked(&mut *data);
        eth.set_dst_addr(mac);
        eth.set_src_addr(nic_mac);
    }
    let inner_proto = if inner_v6 { IpProtocol::IPV6 } else { IpProtocol::IPV4 };
    let (outer_proto, ip_len) = match encap {
        Encap::Ipip => (inner_proto, if outer_v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN }),
        Encap::Gue { .. } => (IpProtocol::UDP, if outer_v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN }),
    };
    let payload_len = over - ip_len + inner_len;
    let outer = &mut data[l3..];
    let emitted = match be.addr {
        IpAddr::V4(dst) => {
            let src = svc.source4.map(|s| s.pick(hash)).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            let repr = Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: outer_proto,
                payload_len,
                ttl: OUTER_TTL,
                tos,
                ident: 0,
                dont_frag,
                more_frags: false,
                frag_offset: 0,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut *outer)).map(|_| repr.pseudo_header())
        }
        IpAddr::V6(dst) => {
            let src = svc.source6.map(|s| s.pick(hash)).unwrap_or(std::net::Ipv6Addr::UNSPECIFIED);
            let repr = Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: outer_proto,
                payload_len,
                hop_limit: OUTER_TTL,
                traffic_class: tos,
                flow_label: (hash as u32) & 0x000f_ffff,
            };
            repr.emit(&mut Ipv6Packet::new_unchecked(&mut *outer)).map(|_| repr.pseudo_header())
        }
    };
    let Ok(pseudo) = emitted else {
        return Verdict::Drop(DropReason::TooBig);
    };
    if let Encap::Gue { port } = encap {
        let u = &mut outer[ip_len..];
        let mut dgram = UdpPacket::new_unchecked(&mut *u);
        let udp_repr = UdpRepr { src_port: gue_source_port(hash), dst_port: port };
        if udp_repr.emit(&mut dgram, gue::HEADER_LEN + inner_len).is_err() {
            return Verdict::Drop(DropReason::TooBig);
        }
        if GueRepr::data(inner_proto).emit(&mut GueHeader::new_unchecked(&mut u[udp::HEADER_LEN..])).is_err() {
            return Verdict::Drop(DropReason::Malformed);
        }
        if outer_v6 {
            UdpPacket::new_unchecked(&mut *u).fill_checksum(&pseudo);
        }
    }
    Verdict::Forward(ctx.in_port)
}
