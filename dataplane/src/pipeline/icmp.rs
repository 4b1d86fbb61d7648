//! ICMP and ICMPv6 addressed to a VIP: echo answered in place, errors routed to the backend of
//! the flow they quote, and the errors the pipeline sends itself ([`error_reply`]: too big for
//! the tunnel, TTL / hop limit expired) built in place.
//!
//! Rate: the errors we send are not rate limited (neither too-big nor time-exceeded): each is
//! one answer to one received packet, no larger than ICMPV4_ERROR_MAX / ICMPV6_ERROR_MAX, sent
//! back out of the port the packet came in on, so they never outnumber the packets that caused
//! them. RFC 4443 §2.4 (f) asks
//! IPv6 nodes to limit ICMPv6 errors; a per-lcore token bucket would be the place to add it.
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
    Icmpv6Packet, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, L2Info,
};

/// Largest IPv4 ICMP error we send: RFC 1812 §4.3.2.3, "as much as possible without the ICMP
/// datagram exceeding 576 bytes".
pub const ICMPV4_ERROR_MAX: usize = 576;

/// Largest ICMPv6 error we send: the IPv6 minimum MTU (RFC 4443 §2.4 (c)).
pub const ICMPV6_ERROR_MAX: usize = icmpv6::IPV6_MIN_MTU;

/// ICMP (v4) to a VIP.
pub(crate) fn icmpv4<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: Flow) -> Verdict {
    let pkt = match Icmpv4Packet::new_checked(&buf.data()[flow.l4()..flow.end()]) {
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
    let l3 = flow.l3();
    let (pkt, pseudo) = {
        let frame = buf.data();
        let pseudo = Ipv6Packet::new_unchecked(&frame[l3..]).pseudo_header();
        match Icmpv6Packet::new_checked(&frame[flow.l4()..flow.end()]) {
            Ok(p) => (p, pseudo),
            Err(e) => return Verdict::Drop(e.into()),
        }
    };
    let ty = pkt.msg_type();
    if ty.is_ndisc_neighbor() {
        // Neighbor discovery needs the asker's MAC: the L2 header parsed again (a rare path).
        return match L2Info::parse(buf.data()) {
            Ok(l2) => super::neighbor::ndisc(ctx, buf, l2, flow.l4() - l3),
            Err(e) => Verdict::Drop(e.into()),
        };
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
    if vip != flow.dst(buf.data()) {
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
    buf.truncate(flow.end());
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
    let l3 = flow.l3();
    buf.truncate(flow.end());
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    answer_ethernet(data, nic_mac);
    {
        let mut ip = Ipv4Packet::new_unchecked(&mut data[l3..flow.end()]);
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
    Icmpv4Packet::new_unchecked(&mut data[flow.l4()..flow.end()]).echo_request_into_reply();
    Verdict::Reply
}

fn echo_reply_v6<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow) -> Verdict {
    let l3 = flow.l3();
    buf.truncate(flow.end());
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    answer_ethernet(data, nic_mac);
    {
        let mut ip = Ipv6Packet::new_unchecked(&mut data[l3..flow.end()]);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_hop_limit(forward::OUTER_TTL);
    }
    // The pseudo-header sum is symmetric in source and destination: only the type changes.
    Icmpv6Packet::new_unchecked(&mut data[flow.l4()..flow.end()]).echo_request_into_reply();
    Verdict::Reply
}

/// An ICMP error the pipeline itself sends back to a client about one of its packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpError {
    /// The packet does not fit the tunnel: IPv4 "fragmentation needed" (type 3 code 4) or
    /// ICMPv6 "packet too big" (type 2), carrying this MTU.
    TooBig(u16),
    /// The TTL / hop limit ran out at this routing hop: IPv4 "time exceeded in transit"
    /// (type 11 code 0) or ICMPv6 "hop limit exceeded in transit" (type 3 code 0).
    TimeExceeded,
}

impl IcmpError {
    /// What the packet is dropped as when no error may be sent for it.
    fn drop_reason(self) -> DropReason {
        match self {
            IcmpError::TooBig(_) => DropReason::TooBig,
            IcmpError::TimeExceeded => DropReason::TtlExceeded,
        }
    }
}

/// True if the packet of `flow` is itself an ICMP or ICMPv6 error message.
fn is_icmp_error(frame: &[u8], flow: &Flow) -> bool {
    let Some(&t) = frame.get(flow.l4()) else { return false };
    match flow.proto {
        1 => Icmpv4Message(t).is_error(),
        58 => t < 128,
        _ => false,
    }
}

/// True if `ip` names one host an error can go back to: not unspecified, multicast or (IPv4)
/// broadcast (RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)).
fn is_unicast_host(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// Turns the packet of `flow` (frame already cut at `flow.end()`) into the ICMP or ICMPv6 error
/// `kind`, from the VIP back to the client through the port it came in on, and marks it for
/// the counters. Built in place: the frame grows by the new IP and ICMP headers at the front
/// and is cut after the quote, which is as much of the packet as fits in
/// [`ICMPV4_ERROR_MAX`] (RFC 1812 §4.3.2.3, more than RFC 792's header + 8 bytes) or
/// [`ICMPV6_ERROR_MAX`] (RFC 4443 §2.4 (c)).
///
/// Never answers an ICMP error with an error (RFC 1122 §3.2.2, RFC 4443 §2.4 (e)), nor a packet
/// from an unspecified, multicast or broadcast source: such a packet is dropped with `kind`'s
/// reason. Not rate limited: every packet that qualifies is
/// answered, one answer per packet at most (RFC 4443 §2.4 (f) asks for a limit; see the
/// module docs).
pub(crate) fn error_reply<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: &Flow, kind: IcmpError) -> Verdict {
    let (src, dst) = (flow.src(buf.data()), flow.dst(buf.data()));
    if is_icmp_error(buf.data(), flow) || !is_unicast_host(src) {
        return Verdict::Drop(kind.drop_reason());
    }
    let l3 = flow.l3();
    let (ip_len, icmp_len, max) = match dst {
        IpAddr::V4(_) => (ipv4::HEADER_LEN, icmpv4::HEADER_LEN, ICMPV4_ERROR_MAX),
        IpAddr::V6(_) => (ipv6::HEADER_LEN, icmpv6::HEADER_LEN, ICMPV6_ERROR_MAX),
    };
    let grow = ip_len + icmp_len;
    let quote = (flow.end() - l3).min(max - grow);
    if !buf.prepend(grow) {
        return Verdict::Drop(DropReason::Unsupported);
    }
    buf.truncate(l3 + grow + quote);
    let nic_mac = ctx.nic_mac();
    let data = buf.data_mut();
    data.copy_within(grow..grow + l3, 0);
    answer_ethernet(data, nic_mac);
    let ip = &mut data[l3..];
    match (dst, src) {
        (IpAddr::V4(vip), IpAddr::V4(client)) => {
            let mut repr = Ipv4Repr::new(vip, client, IpProtocol::ICMP, icmp_len + quote, forward::OUTER_TTL);
            repr.dont_frag = false;
            if repr.emit(&mut Ipv4Packet::new_unchecked(&mut *ip)).is_err() {
                return Verdict::Drop(DropReason::Malformed);
            }
            let mut icmp = Icmpv4Packet::new_unchecked(&mut ip[ip_len..]);
            let (ty, code, mtu) = match kind {
                IcmpError::TooBig(mtu) => (Icmpv4Message::DST_UNREACHABLE, icmpv4::CODE_FRAG_NEEDED, mtu),
                IcmpError::TimeExceeded => (Icmpv4Message::TIME_EXCEEDED, icmpv4::CODE_TTL_EXCEEDED, 0),
            };
            icmp.set_msg_type(ty);
            icmp.set_msg_code(code);
            // The second word: next-hop MTU for frag-needed, unused (zero) otherwise.
            icmp.set_next_hop_mtu(mtu);
            icmp.fill_checksum();
        }
        (IpAddr::V6(vip), IpAddr::V6(client)) => {
            let repr = Ipv6Repr {
                src_addr: vip,
                dst_addr: client,
                next_header: IpProtocol::ICMPV6,
                payload_len: icmp_len + quote,
                hop_limit: forward::OUTER_TTL,
                traffic_class: 0,
                flow_label: 0,
            };
            if repr.emit(&mut Ipv6Packet::new_unchecked(&mut *ip)).is_err() {
                return Verdict::Drop(DropReason::Malformed);
            }
            let mut icmp = Icmpv6Packet::new_unchecked(&mut ip[ip_len..]);
            let (ty, mtu) = match kind {
                IcmpError::TooBig(mtu) => (Icmpv6Message::PKT_TOO_BIG, u32::from(mtu)),
                IcmpError::TimeExceeded => (Icmpv6Message::TIME_EXCEEDED, 0),
            };
            icmp.set_msg_type(ty);
            // Code 0 for both: packet-too-big has no other; "hop limit exceeded in transit".
            icmp.set_msg_code(0);
            // The second word: the MTU for packet-too-big, unused (zero) for time exceeded.
            icmp.set_mtu(mtu);
            icmp.fill_checksum(&repr.pseudo_header());
        }
        // A flow's addresses share one family (the parser reads both from one header).
        _ => return Verdict::Drop(DropReason::Malformed),
    }
    match kind {
        IcmpError::TooBig(_) => ctx.mark_pmtu(),
        IcmpError::TimeExceeded => ctx.mark_time_exceeded(),
    }
    Verdict::Reply
}
