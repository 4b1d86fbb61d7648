//! ARP and IPv6 neighbor discovery: answering for VIPs, learning next hops, soliciting them.
//!
//! - An ARP request for a VIP gets an ARP reply from the NIC's MAC, built over the request
//!   (`Reply`). An IPv6 neighbor solicitation for a VIP gets a neighbor advertisement
//!   (solicited, override, target link-layer address option), built in place (`Reply`).
//! - ARP replies and neighbor advertisements are pushed to the control plane's learned queue
//!   (it decides whether a next hop changed) and passed on to the kernel, which keeps its own
//!   neighbor cache for the host's traffic.
//! - Everything else (requests for the host's address, router discovery...) is the kernel's.
//! - [`build_solicit`] writes the ARP request / NS the lcore sends for an unresolved backend next
//!   hop, from the host's own address.

use std::net::{IpAddr, Ipv6Addr};

use super::{Ctx, DropReason, PacketBuf, Snapshot, Verdict};
use crate::wire::{
    arp, ethernet, icmpv6, ipv6, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, L2Info, NdiscRepr,
};

/// Hop limit of every ND message (RFC 4861 §7.1: receivers drop anything else).
pub const ND_HOP_LIMIT: u8 = 255;

/// Minimum Ethernet frame without FCS: shorter frames we build are zero-padded to it.
pub const ETHERNET_MIN_FRAME: usize = 60;

/// Length of the neighbor advertisement we send: header + target link-layer address option.
const NA_LEN: usize = icmpv6::NDISC_HEADER_LEN + icmpv6::LLADDR_OPTION_LEN;

/// An ARP frame on a NIC port.
pub(crate) fn arp<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, l2: &L2Info) -> Verdict {
    let l3 = l2.l3_offset;
    let repr = match ArpPacket::new_checked(&buf.data()[l3..]).and_then(|p| ArpRepr::parse(&p)) {
        Ok(r) => r,
        Err(e) => return Verdict::Drop(e.into()),
    };
    match repr.operation {
        ArpOperation::REPLY => {
            ctx.learn(IpAddr::V4(repr.source_protocol_addr), repr.source_hardware_addr);
            ctx.to_kernel()
        }
        ArpOperation::REQUEST if ctx.snap.is_vip(IpAddr::V4(repr.target_protocol_addr)) => {
            let nic_mac = ctx.nic_mac();
            let data = buf.data_mut();
            repr.reply(nic_mac).emit(&mut ArpPacket::new_unchecked(&mut data[l3..l3 + arp::PACKET_LEN]));
            let mut eth = EthernetFrame::new_unchecked(data);
            eth.set_dst_addr(repr.source_hardware_addr);
            eth.set_src_addr(nic_mac);
            Verdict::Reply
        }
        _ => ctx.to_kernel(),
    }
}

/// An NS or NA (ICMPv6 at `upper` bytes after the IPv6 header start).
pub(crate) fn ndisc<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, l2: L2Info, upper: usize) -> Verdict {
    let l3 = l2.l3_offset;
    let (nd, src, src_mac) = {
        let frame = buf.data();
        let ip = Ipv6Packet::new_unchecked(&frame[l3..]);
        let end = l3 + ipv6::HEADER_LEN + usize::from(ip.payload_len());
        let Some(body) = frame.get(l3 + upper..end) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let pkt = match Icmpv6Packet::new_checked(body) {
            Ok(p) => p,
            Err(e) => return Verdict::Drop(e.into()),
        };
        if !pkt.msg_type().is_ndisc_neighbor() {
            return ctx.to_kernel();
        }
        if ip.hop_limit() != ND_HOP_LIMIT {
            return Verdict::Drop(DropReason::Malformed);
        }
        let nd = match Icmpv6Repr::parse(&pkt, &ip.pseudo_header()) {
            Ok(Icmpv6Repr::Ndisc(nd)) => nd,
            Ok(_) => return ctx.to_kernel(),
            Err(e) => return Verdict::Drop(e.into()),
        };
        (nd, ip.src_addr(), EthernetFrame::new_unchecked(frame).src_addr())
    };
    match nd {
        NdiscRepr::NeighborAdvert { target_addr, lladdr, .. } => {
            if let Some(mac) = lladdr {
                ctx.learn(IpAddr::V6(target_addr), mac);
            }
            ctx.to_kernel()
        }
        NdiscRepr::NeighborSolicit { target_addr, .. } if ctx.snap.is_vip(IpAddr::V6(target_addr)) => {
            advertise(ctx, buf, &l2, target_addr, src, src_mac)
        }
        NdiscRepr::NeighborSolicit { .. } => ctx.to_kernel(),
    }
}

/// Rewrites the frame into the neighbor advertisement answering a solicitation for `target`
/// from `asker` (unspecified for duplicate address detection: then to all-nodes, unsolicited).
fn advertise<B: PacketBuf>(
    ctx: &mut Ctx<'_>,
    buf: &mut B,
    l2: &L2Info,
    target: Ipv6Addr,
    asker: Ipv6Addr,
    asker_mac: EthernetAddress,
) -> Verdict {
    let l3 = l2.l3_offset;
    let len = l3 + ipv6::HEADER_LEN + NA_LEN;
    let have = buf.data().len();
    if have < len && !buf.append(len - have) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    buf.truncate(len);
    let dad = asker.is_unspecified();
    let (dst, dst_mac) = if dad {
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        (all_nodes, EthernetAddress::ipv6_multicast(&all_nodes))
    } else {
        (asker, asker_mac)
    };
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    {
        let mut eth = EthernetFrame::new_unchecked(&mut *data);
        eth.set_dst_addr(dst_mac);
        eth.set_src_addr(nic_mac);
    }
    let repr = Ipv6Repr {
        src_addr: target,
        dst_addr: dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: NA_LEN,
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
    };
    if repr.emit(&mut Ipv6Packet::new_unchecked(&mut data[l3..])).is_err() {
        return Verdict::Drop(DropReason::Malformed);
    }
    let na = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        router: false,
        solicited: !dad,
        override_: true,
        target_addr: target,
        lladdr: Some(nic_mac),
    });
    let body = &mut data[l3 + ipv6::HEADER_LEN..len];
    if na.emit(&mut Icmpv6Packet::new_unchecked(body), &repr.pseudo_header()).is_err() {
        return Verdict::Drop(DropReason::Malformed);
    }
    Verdict::Reply
}

/// The solicited-node multicast address of `ip` (RFC 4291 §2.7.1).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15]])
}

/// Writes an ARP request (IPv4) or neighbor solicitation (IPv6) for `ip` from `mac` and the
/// host's address of that family into the empty `buf`. False if the host has no address of
/// that family or the buffer has no room.
pub(crate) fn build_solicit<B: PacketBuf>(snap: &Snapshot, buf: &mut B, ip: IpAddr, mac: EthernetAddress) -> bool {
    buf.truncate(0);
    match ip {
        IpAddr::V4(target) => {
            let Some(host) = snap.host_ipv4() else { return false };
            if !buf.append(ETHERNET_MIN_FRAME) {
                return false;
            }
            let data = buf.data_mut();
            data.fill(0);
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst_addr(EthernetAddress::BROADCAST);
            eth.set_src_addr(mac);
            eth.set_ethertype(EtherType::ARP);
            let repr = ArpRepr {
                operation: ArpOperation::REQUEST,
                source_hardware_addr: mac,
                source_protocol_addr: host,
                target_hardware_addr: EthernetAddress::UNSPECIFIED,
                target_protocol_addr: target,
            };
            let off = ethernet::HEADER_LEN;
            repr.emit(&mut ArpPacket::new_unchecked(&mut data[off..off + arp::PACKET_LEN]));
            true
        }
        IpAddr::V6(target) => {
            let Some(host) = snap.host_ipv6() else { return false };
            let ns_len = icmpv6::NDISC_HEADER_LEN + icmpv6::LLADDR_OPTION_LEN;
            let len = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ns_len;
            if !buf.append(len) {
                return false;
            }
            let group = solicited_node(target);
            let data = buf.data_mut();
            let mut eth = EthernetFrame::new_unchecked(&mut *data);
            eth.set_dst_addr(EthernetAddress::ipv6_multicast(&group));
            eth.set_src_addr(mac);
            eth.set_ethertype(EtherType::IPV6);
            let repr = Ipv6Repr {
                src_addr: host,
                dst_addr: group,
                next_header: IpProtocol::ICMPV6,
                payload_len: ns_len,
                hop_limit: ND_HOP_LIMIT,
                traffic_class: 0,
                flow_label: 0,
            };
            let l3 = ethernet::HEADER_LEN;
            if repr.emit(&mut Ipv6Packet::new_unchecked(&mut data[l3..])).is_err() {
                return false;
            }
            let ns = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr: target, lladdr: Some(mac) });
            let body = &mut data[l3 + ipv6::HEADER_LEN..len];
            // Reserved bytes must be zero whatever the buffer held before.
            body.fill(0);
            ns.emit(&mut Icmpv6Packet::new_unchecked(body), &repr.pseudo_header()).is_ok()
        }
    }
}
