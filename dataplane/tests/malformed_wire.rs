//! Malformed-frame table for the wire layer.
//!
//! `parse_stack` walks a frame the way the pipeline does (Ethernet, optional 802.1Q, ARP or
//! IPv4/IPv6 with extension headers, then TCP/UDP/ICMP/GUE, verifying checksums) using only the
//! public `dataplane::wire` API. The tests feed it (1) every prefix of two complete frames, so
//! every header boundary is crossed, and (2) a table of hand-made malformed frames; each must
//! give the named error (and thus the named drop counter), and none may panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::pipeline::DropReason;
use dataplane::wire::{
    ArpOperation, ArpPacket, ArpRepr, Error, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    GueHeader, GueVariant, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv4Packet,
    Ipv4Repr, Ipv6Packet, Ipv6Repr, L2Info, PseudoHeader, TcpFlags, TcpPacket, UdpPacket, UdpRepr,
    VlanPacket, VlanRepr, MAX_IPV6_EXT_HEADERS,
};

const CLIENT_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const LB_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);

/// What the stack parse found at the top.
#[derive(Debug, PartialEq, Eq)]
enum Top {
    Arp,
    Tcp,
    Udp,
    Gue,
    Icmp,
    Other,
}

fn parse_l4(proto: IpProtocol, l4: &[u8], ph: &PseudoHeader) -> Result<Top, Error> {
    match proto {
        IpProtocol::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            if !t.verify_checksum(ph) {
                return Err(Error::BadChecksum);
            }
            for opt in t.option_iter() {
                opt?;
            }
            Ok(Top::Tcp)
        }
        IpProtocol::UDP => {
            let u = UdpPacket::new_checked(l4)?;
            UdpRepr::parse(&u, ph)?;
            if u.dst_port() == 6080 {
                if GueVariant::of(u.payload())? == GueVariant::Header {
                    GueHeader::new_checked(u.payload())?;
                }
                return Ok(Top::Gue);
            }
            Ok(Top::Udp)
        }
        IpProtocol::ICMP => {
            Icmpv4Repr::parse(&Icmpv4Packet::new_checked(l4)?)?;
            Ok(Top::Icmp)
        }
        IpProtocol::ICMPV6 => {
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(l4)?, ph)?;
            Ok(Top::Icmp)
        }
        _ => Ok(Top::Other),
    }
}

fn parse_stack(frame: &[u8]) -> Result<Top, Error> {
    let l2 = L2Info::parse(frame)?;
    let l3 = &frame[l2.l3_offset..];
    match l2.ethertype {
        EtherType::ARP => {
            ArpRepr::parse(&ArpPacket::new_checked(l3)?)?;
            Ok(Top::Arp)
        }
        EtherType::IPV4 => {
            let ip = Ipv4Packet::new_checked(l3)?;
            Ipv4Repr::parse(&ip)?;
            parse_l4(ip.next_header(), ip.payload(), &ip.pseudo_header())
        }
        EtherType::IPV6 => {
            let ip = Ipv6Packet::new_checked(l3)?;
            let up = ip.upper_layer()?;
            let end = 40 + usize::from(ip.payload_len());
            parse_l4(up.protocol, &l3[up.offset..end], &ip.pseudo_header())
        }
        _ => Ok(Top::Other),
    }
}

fn eth_header(ethertype: EtherType) -> Vec<u8> {
    let mut v = vec![0xa5u8; 14];
    EthernetRepr { src_addr: CLIENT_MAC, dst_addr: LB_MAC, ethertype }.emit(&mut EthernetFrame::new_unchecked(&mut v[..]));
    v
}

/// Ethernet + 802.1Q (vid 42) + IPv4 + TCP SYN with MSS/SACK/WS options and 5 bytes of data.
fn vlan_ipv4_tcp() -> Vec<u8> {
    let mut f = eth_header(EtherType::VLAN);
    let mut tag = [0u8; 4];
    VlanRepr { pcp: 0, dei: false, vid: 42, ethertype: EtherType::IPV4 }.emit(&mut VlanPacket::new_unchecked(&mut tag[..]));
    f.extend_from_slice(&tag);
    let opts = [2u8, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7, 0, 0];
    let tcp_len = 20 + opts.len() + 5;
    let ip = Ipv4Repr::new(Ipv4Addr::new(198, 51, 100, 9), Ipv4Addr::new(192, 0, 2, 10), IpProtocol::TCP, tcp_len, 64);
    let mut l3 = vec![0xa5u8; 20 + tcp_len];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut l3[..])).unwrap();
    {
        let mut t = TcpPacket::new_unchecked(&mut l3[20..]);
        t.set_src_port(50123);
        t.set_dst_port(443);
        t.set_seq_number(1);
        t.set_ack_number(0);
        t.set_header_len_and_flags(32, TcpFlags::SYN);
        t.set_window_len(65535);
        t.set_urgent_at(0);
        t.options_mut().copy_from_slice(&opts);
        t.payload_mut().copy_from_slice(b"hello");
        t.fill_checksum(&ip.pseudo_header());
    }
    f.extend_from_slice(&l3);
    f
}

/// Ethernet + IPv6 + Hop-by-Hop + Routing (type 4, segments left 0) + UDP with 4 bytes.
fn ipv6_ext_udp() -> Vec<u8> {
    let mut f = eth_header(EtherType::IPV6);
    let ext = [
        0x2b, 0, 1, 4, 0, 0, 0, 0, // HBH: next routing, PadN
        0x11, 0, 4, 0, 0, 0, 0, 0, // routing: next UDP, type 4, segments left 0
    ];
    let ip = Ipv6Repr {
        src_addr: "2001:db8::9".parse().unwrap(),
        dst_addr: "2001:db8::10".parse().unwrap(),
        next_header: IpProtocol::HOP_BY_HOP,
        payload_len: ext.len() + 12,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x1234,
    };
    let mut l3 = vec![0xa5u8; 40 + ip.payload_len];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut l3[..])).unwrap();
    l3[40..56].copy_from_slice(&ext);
    {
        let mut u = UdpPacket::new_unchecked(&mut l3[56..]);
        UdpRepr { src_port: 5353, dst_port: 53 }.emit(&mut u, 4).unwrap();
        u.payload_mut().copy_from_slice(&[1, 2, 3, 4]);
        u.fill_checksum(&ip.pseudo_header());
    }
    f.extend_from_slice(&l3);
    f
}

/// Recomputes the IPv4 header checksum of the IPv4 packet at `l3` (after a mutation).
fn fix_ipv4(frame: &mut [u8], l3: usize) {
    let hl = usize::from(frame[l3] & 0x0f) * 4;
    let mut p = Ipv4Packet::new_unchecked(&mut frame[l3..l3 + hl.max(20)]);
    p.fill_checksum();
}

/// Both base frames parse completely: the table below starts from valid packets.
#[test]
fn base_frames_are_valid() {
    assert_eq!(parse_stack(&vlan_ipv4_tcp()), Ok(Top::Tcp));
    assert_eq!(parse_stack(&ipv6_ext_udp()), Ok(Top::Udp));
}

/// Every prefix of the VLAN+IPv4+TCP frame: cut inside Ethernet, the tag or the IPv4 header is
/// `Truncated`; cut after the IPv4 header (so its total length reaches past the frame) is
/// `Malformed`; only the whole frame parses. No length panics.
#[test]
fn every_truncation_of_vlan_ipv4_tcp() {
    let f = vlan_ipv4_tcp();
    for len in 0..=f.len() {
        let expected = match len {
            0..=13 => Err(Error::Truncated),  // Ethernet header
            14..=17 => Err(Error::Truncated), // 802.1Q tag
            18..=37 => Err(Error::Truncated), // IPv4 header
            l if l < f.len() => Err(Error::Malformed),
            _ => Ok(Top::Tcp),
        };
        assert_eq!(parse_stack(&f[..len]), expected, "length {len} of {}", f.len());
    }
}

/// Every prefix of the IPv6+HBH+Routing+UDP frame, with the same boundaries.
#[test]
fn every_truncation_of_ipv6_ext_udp() {
    let f = ipv6_ext_udp();
    for len in 0..=f.len() {
        let expected = match len {
            0..=13 => Err(Error::Truncated),
            14..=53 => Err(Error::Truncated),
            l if l < f.len() => Err(Error::Malformed),
            _ => Ok(Top::Udp),
        };
        assert_eq!(parse_stack(&f[..len]), expected, "length {len} of {}", f.len());
    }
}

/// The same truncations, with the IP length fields shrunk to match the cut (as a middlebox that
/// rewrote them would produce): now the *inner* headers are the ones cut short, and each must
/// still be `Truncated` or `Malformed`, never a panic or a success.
#[test]
fn truncations_with_consistent_ip_lengths() {
    let f = vlan_ipv4_tcp();
    for len in 38..f.len() {
        let mut g = f[..len].to_vec();
        g[20..22].copy_from_slice(&((len - 18) as u16).to_be_bytes());
        fix_ipv4(&mut g, 18);
        let r = parse_stack(&g);
        assert!(matches!(r, Err(Error::Truncated | Error::Malformed | Error::BadChecksum)), "len {len}: {r:?}");
    }
    let f = ipv6_ext_udp();
    for len in 54..f.len() {
        let mut g = f[..len].to_vec();
        g[18..20].copy_from_slice(&((len - 54) as u16).to_be_bytes());
        let r = parse_stack(&g);
        assert!(matches!(r, Err(Error::Truncated | Error::Malformed | Error::BadChecksum)), "len {len}: {r:?}");
    }
}

struct Case {
    what: &'static str,
    frame: Vec<u8>,
    expect: Error,
}

fn case(what: &'static str, frame: Vec<u8>, expect: Error) -> Case {
    Case { what, frame, expect }
}

fn mutate(base: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = base.to_vec();
    f(&mut v);
    v
}

fn arp_frame(hlen: u8, plen: u8, htype: u16) -> Vec<u8> {
    let mut f = eth_header(EtherType::ARP);
    let mut a = [0u8; 28];
    ArpRepr {
        operation: ArpOperation::REQUEST,
        source_hardware_addr: CLIENT_MAC,
        source_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: Ipv4Addr::new(192, 0, 2, 10),
    }
    .emit(&mut ArpPacket::new_unchecked(&mut a[..]));
    a[4] = hlen;
    a[5] = plen;
    a[0..2].copy_from_slice(&htype.to_be_bytes());
    f.extend_from_slice(&a);
    f.resize(60, 0); // Ethernet minimum: padding must not matter
    f
}

/// An IPv6 frame whose payload is `n` Destination Options headers then No Next Header; with
/// `self_ref` every header points at another Destination Options header forever (the last
/// one included), the "self-referencing" chain.
fn ipv6_opts_chain(n: usize, self_ref: bool) -> Vec<u8> {
    let mut f = eth_header(EtherType::IPV6);
    let ip = Ipv6Repr {
        src_addr: Ipv6Addr::LOCALHOST,
        dst_addr: Ipv6Addr::LOCALHOST,
        next_header: IpProtocol::IPV6_OPTS,
        payload_len: 8 * n,
        hop_limit: 1,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut l3 = vec![0u8; 40 + 8 * n];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut l3[..])).unwrap();
    for i in 0..n {
        let last = i + 1 == n;
        l3[40 + 8 * i] = if last && !self_ref { IpProtocol::IPV6_NO_NEXT.0 } else { IpProtocol::IPV6_OPTS.0 };
    }
    f.extend_from_slice(&l3);
    f
}

fn icmpv4_frag_needed(quote_len: usize) -> Vec<u8> {
    let inner = vlan_ipv4_tcp();
    let quoted = &inner[18..18 + quote_len];
    let icmp = Icmpv4Repr::DstUnreachable { code: 4, next_hop_mtu: 1400, quoted };
    let ip = Ipv4Repr::new(Ipv4Addr::new(203, 0, 113, 1), Ipv4Addr::new(192, 0, 2, 10), IpProtocol::ICMP, icmp.buffer_len(), 60);
    let mut f = eth_header(EtherType::IPV4);
    let mut l3 = vec![0u8; 20 + icmp.buffer_len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut l3[..])).unwrap();
    icmp.emit(&mut Icmpv4Packet::new_unchecked(&mut l3[20..])).unwrap();
    f.extend_from_slice(&l3);
    f
}

fn ns_frame(opt_len_units: u8) -> Vec<u8> {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let dst: Ipv6Addr = "ff02::1:ff00:10".parse().unwrap();
    let mut m = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&"2001:db8::10".parse::<Ipv6Addr>().unwrap().octets());
    m.extend_from_slice(&[1, opt_len_units, 0x52, 0x54, 0, 0x12, 0x34, 0x56]);
    Icmpv6Packet::new_unchecked(&mut m[..]).fill_checksum(&PseudoHeader::V6 { src, dst });
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: m.len(),
        hop_limit: 255,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut l3 = vec![0u8; 40];
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut l3[..])).unwrap();
    l3.extend_from_slice(&m);
    let mut f = eth_header(EtherType::IPV6);
    f.extend_from_slice(&l3);
    f
}

fn gue_frame(first: u8, hlen_claim: u8) -> Vec<u8> {
    let payload = [first | hlen_claim, 4, 0, 0, 0x45, 0, 0, 20];
    let ip = Ipv4Repr::new(Ipv4Addr::new(172, 16, 0, 1), Ipv4Addr::new(10, 1, 0, 5), IpProtocol::UDP, 8 + payload.len(), 64);
    let mut l3 = vec![0u8; 20 + 8 + payload.len()];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut l3[..])).unwrap();
    {
        let mut u = UdpPacket::new_unchecked(&mut l3[20..]);
        UdpRepr { src_port: 40000, dst_port: 6080 }.emit(&mut u, payload.len()).unwrap();
        u.payload_mut().copy_from_slice(&payload);
        u.fill_checksum(&ip.pseudo_header());
    }
    let mut f = eth_header(EtherType::IPV4);
    f.extend_from_slice(&l3);
    f
}

/// The hand-made malformed frames. Each row names the defect and the error it must produce;
/// the error's `DropReason` is the counter an operator would see move.
#[test]
fn malformed_table() {
    let v4 = vlan_ipv4_tcp();
    let v6 = ipv6_ext_udp();
    let mut cases = vec![
        case("ethernet header cut at 13 bytes", v4[..13].to_vec(), Error::Truncated),
        case("QinQ outer tag", mutate(&v4, |f| f[12..14].copy_from_slice(&[0x88, 0xa8])), Error::Unsupported),
        case("two stacked 802.1Q tags", mutate(&v4, |f| f[16..18].copy_from_slice(&[0x81, 0x00])), Error::Unsupported),
        case("reserved VLAN id 4095", mutate(&v4, |f| f[14..16].copy_from_slice(&[0x0f, 0xff])), Error::Malformed),
        case("IPv4 version 5", mutate(&v4, |f| { f[18] = 0x55; fix_ipv4(f, 18) }), Error::Malformed),
        case("IPv4 total length below IHL", mutate(&v4, |f| { f[20..22].copy_from_slice(&19u16.to_be_bytes()); fix_ipv4(f, 18) }), Error::Malformed),
        case("IPv4 total length beyond the frame", mutate(&v4, |f| { let n = (f.len() - 18 + 1) as u16; f[20..22].copy_from_slice(&n.to_be_bytes()); fix_ipv4(f, 18) }), Error::Malformed),
        case("IPv4 options beyond the frame", mutate(&v4, |f| { f[18] = 0x4f; f.truncate(18 + 40) }), Error::Truncated),
        case("IPv4 header checksum wrong", mutate(&v4, |f| f[26] ^= 0x01), Error::BadChecksum),
        case("TCP checksum wrong", mutate(&v4, |f| { let n = f.len(); f[n - 1] ^= 0x01 }), Error::BadChecksum),
        case("TCP data offset beyond the segment", mutate(&v4, |f| f[18 + 20 + 12] = 0xf0), Error::Truncated),
        case("TCP option with length 0", mutate(&v4, |f| {
            f[18 + 20 + 20 + 1] = 0;
            let ph = Ipv4Packet::new_unchecked(&f[18..]).pseudo_header();
            TcpPacket::new_unchecked(&mut f[38..]).fill_checksum(&ph);
        }), Error::Malformed),
        case("IPv6 version 4 under EtherType IPv6", mutate(&v6, |f| f[14] = 0x40), Error::Malformed),
        case("IPv6 payload length beyond the frame", mutate(&v6, |f| f[18..20].copy_from_slice(&100u16.to_be_bytes())), Error::Malformed),
        case("IPv6 ext header longer than the payload", mutate(&v6, |f| f[54 + 1] = 9), Error::Truncated),
        case("Hop-by-Hop after Routing", mutate(&v6, |f| f[54 + 8] = 0), Error::Malformed),
        case("UDP length below 8", mutate(&v6, |f| f[70 + 4..70 + 6].copy_from_slice(&7u16.to_be_bytes())), Error::Malformed),
        case("UDP length beyond the IP payload", mutate(&v6, |f| f[70 + 4..70 + 6].copy_from_slice(&13u16.to_be_bytes())), Error::Malformed),
        case("UDP over IPv6 with zero checksum", mutate(&v6, |f| f[70 + 6..70 + 8].copy_from_slice(&[0, 0])), Error::BadChecksum),
        case("IPv6 chain one past the limit", ipv6_opts_chain(MAX_IPV6_EXT_HEADERS + 1, false), Error::ExtHeaderLimit),
        case("IPv6 self-referencing Destination Options chain", ipv6_opts_chain(64, true), Error::ExtHeaderLimit),
        case("ICMP frag-needed quoting only 4 bytes of TCP", icmpv4_frag_needed(24), Error::Truncated),
        case("ICMP frag-needed quoting a bare IP header", icmpv4_frag_needed(20), Error::Truncated),
        case("NS with a zero-length option", ns_frame(0), Error::Malformed),
        case("NS with an option past the end", ns_frame(2), Error::Malformed),
        case("GUE Hlen beyond the datagram", gue_frame(0x00, 5), Error::Truncated),
        case("GUE reserved variant 2", gue_frame(0x80, 0), Error::Unsupported),
    ];
    for (hlen, plen) in [(0u8, 4u8), (6, 0), (6, 6), (8, 4), (16, 4), (255, 255)] {
        cases.push(case("ARP hardware/protocol length not 6/4", arp_frame(hlen, plen, 1), Error::Malformed));
    }
    cases.push(case("ARP over IEEE 802 hardware type", arp_frame(6, 4, 6), Error::Unsupported));
    cases.push(case("ARP cut inside the addresses", arp_frame(6, 4, 1)[..14 + 27].to_vec(), Error::Truncated));

    let mut failures = Vec::new();
    for c in &cases {
        let got = parse_stack(&c.frame);
        if got != Err(c.expect) {
            // The drop counter an operator would see is the error's one-to-one DropReason.
            let reason = DropReason::from(c.expect).as_str();
            failures.push(format!("{}: expected {:?} (counter {reason}), got {:?}", c.what, c.expect, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The chain limit is reached exactly at the limit, not before.
    assert_eq!(parse_stack(&ipv6_opts_chain(MAX_IPV6_EXT_HEADERS, false)), Ok(Top::Other));
    // Valid ARP with Ethernet padding still parses.
    assert_eq!(parse_stack(&arp_frame(6, 4, 1)), Ok(Top::Arp));
    assert_eq!(parse_stack(&gue_frame(0x00, 0)), Ok(Top::Gue));
    assert_eq!(parse_stack(&icmpv4_frag_needed(28)), Ok(Top::Icmp));
    assert_eq!(parse_stack(&ns_frame(1)), Ok(Top::Icmp));
}

/// Every single-bit flip of the IPv4+TCP frame from the IPv4 header on is caught: the
/// one's-complement checksums (or a length check) detect any single-bit error, so no flipped
/// frame parses as valid. Flips anywhere in either base frame never panic.
#[test]
fn every_bit_flip_is_handled() {
    let v4 = vlan_ipv4_tcp();
    for i in 0..v4.len() * 8 {
        let mut f = v4.clone();
        f[i / 8] ^= 1 << (i % 8);
        let r = parse_stack(&f);
        if i / 8 >= 18 {
            assert!(r.is_err(), "flip of bit {i} went unnoticed: {r:?}");
        }
    }
    let v6 = ipv6_ext_udp();
    for i in 0..v6.len() * 8 {
        let mut f = v6.clone();
        f[i / 8] ^= 1 << (i % 8);
        let _ = parse_stack(&f);
    }
}
