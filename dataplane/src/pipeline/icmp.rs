//! ICMP and ICMPv6 addressed to a VIP: echo answered in place, errors routed to the backend of
//! the flow they quote, and the too-big answers built in place when a tunnel cannot carry a
//! packet.
//!
//! Error routing: in DSR the backend answers the client directly from the VIP, so a router on
//! the way back reports a problem (frag-needed, packet-too-big, unreachable, time exceeded)
//! *to the VIP*, quoting the backend's packet: quoted source = VIP:vport, quoted destination =
//! client:cport. The flow is therefore looked up with the quote reversed — client → VIP — which
//! is exactly the key of the client's packets, so the error follows the connection-table entry
//! or the same Maglev choice (the 8-byte quote of RFC 792 is enough: only ports are read). The
//! whole ICMP packet is then forwarded like a data packet of that flow (encapsulated or
//! MAC-rewritten), never answered, and never creates a connection-table entry.

use std::net::IpAddr;

use super::{forward, Ctx, DropReason, Flow, PacketBuf, Verdict};
use crate::conntrack::FlowKey;
use crate::wire::{
    checksum, icmpv4, icmpv6, ipv4, ipv6, EthernetFrame, IpProtocol, Icmpv4Message, Icmpv4Packet, Icmpv6Message,
    Icmpv6Packet, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
};

/// Largest IPv4 ICMP error we send: RFC 1812 §4.3.2.3, "as much as possible without the ICMP
/// datagram exceeding 576 bytes".
pub const ICMPV4_ERROR_MAX: usize = 576;

/// Largest ICMPv6 error we send: the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
pub const ICMPV6_ERROR_MAX: usize = icmpv6::IPV6_MIN_MTU;

/// ICMP (v4) to a VIP.
pub(crate) fn icmpv4<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: Flow) -> Verdict {
    let pkt = match Icmpv4Packet::new_checked(&buf.data()[flow.l4..flow.end]) {
        Ok(p) => p,
        Err(e) => return Verdict::Drop(e.into()),
    };
    if !pkt.verify_checksum() {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    match pkt.msg_type() {
        Icmpv4Message::ECHO_REQUEST => echo_reply_v4(ctx, buf, &flow),
        Icmpv4Message::DST_UNREACHABLE | Icmpv4Message::TIME_EXCEEDED => {
            let q = match pkt.quoted() {
                Ok(q) => q,
                Err(e) => return Verdict::Drop(e.into()),
            };
            let (proto, vip, client, ports) = (q.protocol, q.src_addr, q.dst_addr, q.ports());
            route_error(ctx, buf, flow, proto, vip, client, ports)
        }
        _ => Verdict::Drop(DropReason::Unsupported),
    }
}

/// ICMPv6 to a VIP (neighbor discovery included).
pub(crate) fn icmpv6<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: Flow) -> Verdict {
    let l3 = flow.l2.l3_offset;
    let (pkt, pseudo) = {
        let frame = buf.data();
        let pseudo = Ipv6Packet::new_unchecked(&frame[l3..]).pseudo_header();
        match Icmpv6Packet::new_checked(&frame[flow.l4..flow.end]) {
            Ok(p) => (p, pseudo),
            Err(e) => return Verdict::Drop(e.into()),
        }
    };
    let ty = pkt.msg_type();
    if ty.is_ndisc_neighbor() {
        return super::neighbor::ndisc(ctx, buf, flow.l2, flow.l4 - l3);
    }
    if !pkt.verify_checksum(&pseudo) {
        return Verdict::Drop(DropReason::BadChecksum);
    }
    match ty {
        Icmpv6Message::ECHO_REQUEST => echo_reply_v6(ctx, buf, &flow),
        Icmpv6Message::DST_UNREACHABLE | Icmpv6Message::PKT_TOO_BIG | Icmpv6Message::TIME_EXCEEDED => {
            let q = match pkt.quoted() {
                Ok(q) => q,
                Err(e) => return Verdict::Drop(e.into()),
            };
            let (proto, vip, client, ports) = (q.protocol, q.src_addr, q.dst_addr, q.ports());
            route_error(ctx, buf, flow, proto, vip, client, ports)
        }
        _ => Verdict::Drop(DropReason::Unsupported),
    }
}

/// Forwards an ICMP error quoting `vip:vport → client:cport` to the backend of the flow
/// `client:cport → vip:vport`.
fn route_error<B: PacketBuf>(
    ctx: &mut Ctx<'_>,
    buf: &mut B,
    flow: Flow,
    proto: IpProtocol,
    vip: IpAddr,
    client: IpAddr,
    ports: Option<(u16, u16)>,
) -> Verdict {
    let Some((vport, cport)) = ports else {
        return Verdict::Drop(DropReason::NoService);
    };
    if vip != flow.dst {
        // The quote is not about traffic from the VIP this error was sent to.
        return Verdict::Drop(DropReason::NoService);
    }
    let Some(si) = ctx.snap.service_for(vip, proto.0, vport) else {
        return Verdict::Drop(DropReason::NoService);
    };
    ctx.set_service(si, None);
    let key = FlowKey::new(client, vip, cport, vport, proto.0);
    let hash = key.hash();
    let bi = match ctx.choose_backend(si, &key, hash, None, None) {
        Ok(bi) => bi,
        Err(r) => return Verdict::Drop(r),
    };
    ctx.set_service(si, Some(bi));
    ctx.mark_icmp_to_backend();
    buf.truncate(flow.end);
    forward::forward(ctx, buf, &flow, si, bi, hash)
}

/// Swaps the Ethernet addresses for an answer: back to the sender, from our NIC.
fn answer_ethernet(frame: &mut [u8], nic_mac: crate::wire::EthernetAddress) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    let sender = eth.src_addr();
    eth.set_dst_addr(sender);
    eth.set_src_addr(nic_mac);
}

fn echo_reply_v4<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow) -> Verdict {
    let l3 = flow.l2.l3_offset;
    buf.truncate(flow.end);
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    answer_ethernet(data, nic_mac);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..flow.end]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        // Swapping the addresses leaves the header sum unchanged; the TTL word is patched.
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        let proto = u16::from(ip.next_header().0);
        let old = (u16::from(ip.ttl()) << 8) | proto;
        let new = (u16::from(forward::OUTER_TTL) << 8) | proto;
        let c = checksum::update16(ip.checksum(), old, new);
        ip.set_ttl(forward::OUTER_TTL);
        ip.set_checksum(c);
    }
    Icmpv4Packet::new_unchecked(&mut data[flow.l4..flow.end]).echo_request_into_reply();
    Verdict::Reply
}

fn echo_reply_v6<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow) -> Verdict {
    let l3 = flow.l2.l3_offset;
    buf.truncate(flow.end);
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    answer_ethernet(data, nic_mac);
    {
        let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..flow.end]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_hop_limit(forward::OUTER_TTL);
    }
    // The pseudo-header sum is symmetric in source and destination: only the type changes.
    Icmpv6Packet::new_unchecked(&mut data[flow.l4..flow.end]).echo_request_into_reply();
    Verdict::Reply
}

/// Turns the IPv4 packet of `flow` (frame already cut at `flow.end`) into an ICMP "fragmentation
/// needed" (type 3 code 4) from the VIP to the client, carrying `mtu`, quoting as much of the
/// packet as fits in [`ICMPV4_ERROR_MAX`]. Built in place: the frame grows by the new IP and
/// ICMP headers at the front and is cut after the quote.
pub(crate) fn frag_needed<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow, mtu: u16) -> Verdict {
    let l3 = flow.l2.l3_offset;
    let grow = ipv4::HEADER_LEN + icmpv4::HEADER_LEN;
    let quote = (flow.end - l3).min(ICMPV4_ERROR_MAX - grow);
    let (client, vip) = {
        let ip = Ipv4Packet::new_unchecked(&buf.data()[l3..]);
        (ip.src_addr(), ip.dst_addr())
    };
    if !buf.prepend(grow) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    buf.truncate(l3 + grow + quote);
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    data.copy_within(grow..grow + l3, 0);
    answer_ethernet(data, nic_mac);
    let mut repr = Ipv4Repr::new(vip, client, IpProtocol::ICMP, icmpv4::HEADER_LEN + quote, forward::OUTER_TTL);
    repr.dont_frag = false;
    if repr.emit(&mut Ipv4Packet::new_unchecked(&mut data[l3..])).is_err() {
        return Verdict::Drop(DropReason::Malformed);
    }
    let mut icmp = Icmpv4Packet::new_unchecked(&mut data[l3 + ipv4::HEADER_LEN..]);
    icmp.set_msg_type(Icmpv4Message::DST_UNREACHABLE);
    icmp.set_msg_code(icmpv4::CODE_FRAG_NEEDED);
    icmp.set_next_hop_mtu(mtu);
    icmp.fill_checksum();
    Verdict::Reply
}

/// The IPv6 counterpart of [`frag_needed`]: ICMPv6 packet-too-big (type 2) carrying `mtu`,
/// quoting as much as fits in [`ICMPV6_ERROR_MAX`].
pub(crate) fn packet_too_big<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow, mtu: u16) -> Verdict {
    let l3 = flow.l2.l3_offset;
    let grow = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
    let quote = (flow.end - l3).min(ICMPV6_ERROR_MAX - grow);
    let (client, vip) = {
        let ip = Ipv6Packet::new_unchecked(&buf.data()[l3..]);
        (ip.src_addr(), ip.dst_addr())
    };
    if !buf.prepend(grow) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    buf.truncate(l3 + grow + quote);
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    data.copy_within(grow..grow + l3, 0);
    answer_ethernet(data, nic_mac);
    let repr = Ipv6Repr {
        src_addr: vip,
        dst_addr: client,
        next_header: IpProtocol::ICMPV6,
        payload_len: icmpv6::HEADER_LEN + quote,
        hop_limit: forward::OUTER_TTL,
        traffic_class: 0,
        flow_label: 0,
    };
    if repr.emit(&mut Ipv6Packet::new_unchecked(&mut data[l3..])).is_err() {
        return Verdict::Drop(DropReason::Malformed);
    }
    let mut icmp = Icmpv6Packet::new_unchecked(&mut data[l3 + ipv6::HEADER_LEN..]);
    icmp.set_msg_type(Icmpv6Message::PKT_TOO_BIG);
    icmp.set_msg_code(0);
    icmp.set_mtu(u32::from(mtu));
    icmp.fill_checksum(&repr.pseudo_header());
    Verdict::Reply
}
