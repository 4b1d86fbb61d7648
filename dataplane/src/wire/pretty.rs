//! A packet pretty-printer for logs and failing tests: one line per header, tcpdump-like.
//!
//! `format!("{}", pretty::frame(bytes))` prints an Ethernet frame; [`ip`] starts at an IP
//! header. Printing never fails and never panics: a header that does not parse ends the output
//! with a `!! <error>` line, and checksums are shown as `bad cksum` rather than rejected, since
//! a broken packet is exactly what one wants to look at. Tunnels are followed (IPIP, IP6IP6,
//! 4in6, GUE on the conventional ports) up to [`MAX_DEPTH`] nested IP headers.
//!
//! ```text
//! ether 52:54:00:12:34:56 > 02:00:00:00:00:01 type IPv4
//! ip 10.0.0.2 > 10.0.0.1 tcp len 40 ttl 64 DF
//! tcp 43210 > 80 [S] seq 795557402 ack 0 win 64240 len 0 options [mss 1460,sackOK,TS val 169552957 ecr 0,nop,wscale 7]
//! ```

use core::fmt;

use super::arp::{ArpPacket, ArpRepr};
use super::ethernet::{EtherType, EthernetFrame};
use super::gue::{self, GueHeader, GueRepr, GueVariant};
use super::icmpv4::{Icmpv4Message, Icmpv4Packet};
use super::icmpv6::{Icmpv6Message, Icmpv6Packet, NdiscOption};
use super::ip::IpProtocol;
use super::ipv4::Ipv4Packet;
use super::ipv6::Ipv6Packet;
use super::tcp::{self, TcpPacket};
use super::udp::UdpPacket;
use super::vlan::{VlanPacket, HEADER_LEN as VLAN_LEN};
use super::{checksum::PseudoHeader, Error};

/// Most nested IP headers followed through tunnels (the outer one counts).
pub const MAX_DEPTH: usize = 4;

/// Display adapter for an Ethernet frame; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a>(pub &'a [u8]);

/// Display adapter for a packet starting at an IPv4 or IPv6 header.
#[derive(Debug, Clone, Copy)]
pub struct Ip<'a>(pub &'a [u8]);

/// Pretty-prints an Ethernet frame.
pub fn frame(bytes: &[u8]) -> Frame<'_> {
    Frame(bytes)
}

/// Pretty-prints an IP packet (version taken from the first nibble).
pub fn ip(bytes: &[u8]) -> Ip<'_> {
    Ip(bytes)
}

fn err_line(f: &mut fmt::Formatter<'_>, what: &str, e: Error) -> fmt::Result {
    let tag = match e {
        Error::Truncated => "truncated",
        Error::Malformed => "malformed",
        Error::BadChecksum => "bad checksum",
        Error::ExtHeaderLimit => "ext header limit",
        Error::Unsupported => "unsupported",
    };
    write!(f, "!! {what} {tag}")
}

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eth = match EthernetFrame::new_checked(self.0) {
            Ok(e) => e,
            Err(e) => return err_line(f, "ether", e),
        };
        write!(f, "ether {} > {} type {}", eth.src_addr(), eth.dst_addr(), eth.ethertype())?;
        let mut ethertype = eth.ethertype();
        let mut rest = eth.into_payload();
        if ethertype == EtherType::VLAN {
            let tag = match VlanPacket::new_checked(rest) {
                Ok(t) => t,
                Err(e) => {
                    f.write_str("\n")?;
                    return err_line(f, "vlan", e);
                }
            };
            write!(f, "\nvlan {} p {} type {}", tag.vid(), tag.pcp(), tag.ethertype())?;
            ethertype = tag.ethertype();
            rest = &rest[VLAN_LEN..];
        }
        match ethertype {
            EtherType::ARP => {
                f.write_str("\n")?;
                match ArpPacket::new_checked(rest).and_then(|p| ArpRepr::parse(&p)) {
                    Ok(r) => write!(f, "{r}"),
                    Err(e) => err_line(f, "arp", e),
                }
            }
            EtherType::IPV4 | EtherType::IPV6 => {
                f.write_str("\n")?;
                fmt_ip(f, rest, 1)
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Ip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ip(f, self.0, 1)
    }
}

fn fmt_ip(f: &mut fmt::Formatter<'_>, bytes: &[u8], depth: usize) -> fmt::Result {
    if depth > MAX_DEPTH {
        return f.write_str("!! tunnel nesting too deep");
    }
    match bytes.first().map(|b| b >> 4) {
        Some(4) => fmt_ipv4(f, bytes, depth),
        Some(6) => fmt_ipv6(f, bytes, depth),
        _ => err_line(f, "ip", if bytes.is_empty() { Error::Truncated } else { Error::Malformed }),
    }
}

fn fmt_ipv4(f: &mut fmt::Formatter<'_>, bytes: &[u8], depth: usize) -> fmt::Result {
    let p = match Ipv4Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return err_line(f, "ip", e),
    };
    write!(
        f,
        "ip {} > {} {} len {} ttl {}",
        p.src_addr(),
        p.dst_addr(),
        p.next_header(),
        p.payload().len(),
        p.ttl()
    )?;
    if p.tos() != 0 {
        write!(f, " tos 0x{:02x}", p.tos())?;
    }
    if p.dont_frag() {
        f.write_str(" DF")?;
    }
    if p.is_fragment() {
        write!(f, " frag id {} off {}{}", p.ident(), p.frag_offset(), if p.more_frags() { "+" } else { "" })?;
    }
    if !p.options().is_empty() {
        write!(f, " options {}B", p.options().len())?;
    }
    if !p.verify_checksum() {
        f.write_str(" bad cksum")?;
    }
    if p.frag_offset() != 0 {
        return Ok(());
    }
    let ph = p.pseudo_header();
    let proto = p.next_header();
    fmt_l4(f, proto, p.into_payload(), &ph, depth)
}

fn fmt_ipv6(f: &mut fmt::Formatter<'_>, bytes: &[u8], depth: usize) -> fmt::Result {
    let p = match Ipv6Packet::new_checked(bytes) {
        Ok(p) => p,
        Err(e) => return err_line(f, "ip6", e),
    };
    write!(f, "ip6 {} > {} {} len {} hlim {}", p.src_addr(), p.dst_addr(), p.next_header(), p.payload_len(), p.hop_limit())?;
    if p.flow_label() != 0 {
        write!(f, " flow 0x{:05x}", p.flow_label())?;
    }
    for ext in p.ext_headers() {
        match ext {
            Ok(h) => {
                write!(f, "\next {} len {} next {}", h.kind, h.data.len(), h.next_header)?;
                if let Some(frag) = h.fragment() {
                    write!(f, " frag id {} off {}{}", frag.ident, frag.offset, if frag.more_frags { "+" } else { "" })?;
                }
            }
            Err(e) => {
                f.write_str("\n")?;
                return err_line(f, "ip6 ext", e);
            }
        }
    }
    let up = match p.upper_layer() {
        Ok(u) => u,
        Err(_) => return Ok(()),
    };
    if up.fragment.is_some_and(|fr| fr.offset != 0) {
        return Ok(());
    }
    let ph = p.pseudo_header();
    let end = super::ipv6::HEADER_LEN + usize::from(p.payload_len());
    let whole = p.into_inner();
    let l4 = whole.get(up.offset..end).unwrap_or(&[]);
    fmt_l4(f, up.protocol, l4, &ph, depth)
}

fn fmt_l4(f: &mut fmt::Formatter<'_>, proto: IpProtocol, l4: &[u8], ph: &PseudoHeader, depth: usize) -> fmt::Result {
    f.write_str("\n")?;
    match proto {
        IpProtocol::TCP => match TcpPacket::new_checked(l4) {
            Ok(t) => {
                tcp::summarize(&t, f)?;
                if !t.verify_checksum(ph) {
                    f.write_str(" bad cksum")?;
                }
                Ok(())
            }
            Err(e) => err_line(f, "tcp", e),
        },
        IpProtocol::UDP => match UdpPacket::new_checked(l4) {
            Ok(u) => {
                write!(f, "udp {} > {} len {}", u.src_port(), u.dst_port(), u.payload().len())?;
                if !u.verify_checksum(ph) {
                    f.write_str(" bad cksum")?;
                }
                let dport = u.dst_port();
                if dport == gue::GUE_PORT_KATRAN || dport == gue::GUE_PORT_GLB {
                    f.write_str("\n")?;
                    fmt_gue(f, u.into_payload(), depth)?;
                }
                Ok(())
            }
            Err(e) => err_line(f, "udp", e),
        },
        IpProtocol::ICMP => fmt_icmpv4(f, l4),
        IpProtocol::ICMPV6 => fmt_icmpv6(f, l4, ph),
        IpProtocol::IPV4 | IpProtocol::IPV6 => fmt_ip(f, l4, depth + 1),
        other => write!(f, "{other} len {}", l4.len()),
    }
}

fn fmt_gue(f: &mut fmt::Formatter<'_>, payload: &[u8], depth: usize) -> fmt::Result {
    match GueVariant::of(payload) {
        Ok(GueVariant::DirectIpv4 | GueVariant::DirectIpv6) => {
            f.write_str("gue direct\n")?;
            fmt_ip(f, payload, depth + 1)
        }
        Ok(GueVariant::Header) => match GueHeader::new_checked(payload).and_then(|h| GueRepr::parse(&h).map(|r| (h, r))) {
            Ok((h, r)) => {
                write!(f, "{r}")?;
                if !r.control {
                    f.write_str("\n")?;
                    fmt_ip(f, h.into_payload(), depth + 1)?;
                }
                Ok(())
            }
            Err(e) => err_line(f, "gue", e),
        },
        Err(e) => err_line(f, "gue", e),
    }
}

fn fmt_icmpv4(f: &mut fmt::Formatter<'_>, l4: &[u8]) -> fmt::Result {
    let p = match Icmpv4Packet::new_checked(l4) {
        Ok(p) => p,
        Err(e) => return err_line(f, "icmp", e),
    };
    match p.msg_type() {
        Icmpv4Message::ECHO_REQUEST | Icmpv4Message::ECHO_REPLY => write!(
            f,
            "icmp echo {} id {} seq {} len {}",
            if p.msg_type() == Icmpv4Message::ECHO_REQUEST { "request" } else { "reply" },
            p.echo_ident(),
            p.echo_seq_no(),
            p.data().len()
        )?,
        Icmpv4Message::DST_UNREACHABLE if p.msg_code() == super::icmpv4::CODE_FRAG_NEEDED => {
            write!(f, "icmp unreachable need-frag mtu {}", p.next_hop_mtu())?
        }
        t => write!(f, "icmp type {} code {}", t.0, p.msg_code())?,
    }
    if p.msg_type().is_error() {
        match p.quoted() {
            Ok(q) => {
                write!(f, " for {} {} > {}", q.protocol, q.src_addr, q.dst_addr)?;
                if let Some((s, d)) = q.ports() {
                    write!(f, " ports {s} > {d}")?;
                }
            }
            Err(_) => f.write_str(" (bad quote)")?,
        }
    }
    if !p.verify_checksum() {
        f.write_str(" bad cksum")?;
    }
    Ok(())
}

fn fmt_icmpv6(f: &mut fmt::Formatter<'_>, l4: &[u8], ph: &PseudoHeader) -> fmt::Result {
    let p = match Icmpv6Packet::new_checked(l4) {
        Ok(p) => p,
        Err(e) => return err_line(f, "icmp6", e),
    };
    match p.msg_type() {
        Icmpv6Message::ECHO_REQUEST | Icmpv6Message::ECHO_REPLY => write!(
            f,
            "icmp6 echo {} id {} seq {} len {}",
            if p.msg_type() == Icmpv6Message::ECHO_REQUEST { "request" } else { "reply" },
            p.echo_ident(),
            p.echo_seq_no(),
            p.data().len()
        )?,
        Icmpv6Message::PKT_TOO_BIG => write!(f, "icmp6 packet too big mtu {}", p.mtu())?,
        Icmpv6Message::NEIGHBOR_SOLICIT | Icmpv6Message::NEIGHBOR_ADVERT => {
            let what = if p.msg_type() == Icmpv6Message::NEIGHBOR_SOLICIT { "solicitation" } else { "advertisement" };
            write!(f, "icmp6 neighbor {what} tgt {}", p.target_addr())?;
            for opt in p.ndisc_options() {
                match opt {
                    Ok(NdiscOption::SourceLinkLayerAddr(m)) => write!(f, " src-lladdr {m}")?,
                    Ok(NdiscOption::TargetLinkLayerAddr(m)) => write!(f, " tgt-lladdr {m}")?,
                    Ok(NdiscOption::Unknown { kind, .. }) => write!(f, " opt-{kind}")?,
                    Err(_) => f.write_str(" (bad option)")?,
                }
            }
        }
        t => write!(f, "icmp6 type {} code {}", t.0, p.msg_code())?,
    }
    if p.msg_type().is_error() {
        match p.quoted() {
            Ok(q) => {
                write!(f, " for {} {} > {}", q.protocol, q.src_addr, q.dst_addr)?;
                if let Some((s, d)) = q.ports() {
                    write!(f, " ports {s} > {d}")?;
                }
            }
            Err(_) => f.write_str(" (bad quote)")?,
        }
    }
    if !p.verify_checksum(ph) {
        f.write_str(" bad cksum")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::tests::SYN_V4;
    use crate::wire::ipv6::tests::V6_EXT_UDP;
    use crate::wire::tunnel::{Encap, OuterAddrs, TunnelRepr};

    fn eth(ethertype: [u8; 2], l3: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 0, 0, 0, 0, 1, 0x52, 0x54, 0, 0x12, 0x34, 0x56, ethertype[0], ethertype[1]];
        v.extend_from_slice(l3);
        v
    }

    /// The SYN prints as three tcpdump-like lines, options included.
    #[test]
    fn prints_syn() {
        let out = frame(&eth([8, 0], &SYN_V4)).to_string();
        assert_eq!(
            out,
            "ether 52:54:00:12:34:56 > 02:00:00:00:00:01 type IPv4\n\
             ip 10.0.0.2 > 10.0.0.1 tcp len 40 ttl 64 DF\n\
             tcp 43210 > 80 [S] seq 795557402 ack 0 win 64240 len 0 options [mss 1460,sackOK,TS val 169552957 ecr 0,nop,wscale 7]"
        );
    }

    /// IPv6 extension headers get a line each; a corrupted checksum is flagged, not fatal.
    #[test]
    fn prints_ipv6_ext_and_bad_checksum() {
        let mut p = V6_EXT_UDP;
        p[67] ^= 1;
        let out = ip(&p).to_string();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[1].starts_with("ext hopopt len 8 next ipv6-opts"));
        assert!(lines[2].starts_with("ext ipv6-opts len 8 next udp"));
        assert_eq!(lines[3], "udp 40000 > 53 len 4 bad cksum");
    }

    /// A GUE-encapsulated SYN shows the outer and inner stacks.
    #[test]
    fn prints_tunnel() {
        let repr = TunnelRepr {
            outer: OuterAddrs::V4 { src: "172.16.0.1".parse().unwrap(), dst: "10.1.0.5".parse().unwrap() },
            encap: Encap::Gue { src_port: 40000, dst_port: gue::GUE_PORT_GLB, fields: &[] },
            inner: IpProtocol::IPV4,
            hop_limit: 64,
            tos: 0,
            flow_label: 0,
            udp_checksum: false,
        };
        let mut buf = vec![0u8; repr.header_len() + SYN_V4.len()];
        buf[repr.header_len()..].copy_from_slice(&SYN_V4);
        repr.emit(&mut buf).unwrap();
        let out = ip(&buf).to_string();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines[0], "ip 172.16.0.1 > 10.1.0.5 udp len 72 ttl 64 DF");
        assert_eq!(lines[2], "gue ipip");
        assert!(lines[3].starts_with("ip 10.0.0.2 > 10.0.0.1 tcp"));
        assert!(lines[4].starts_with("tcp 43210 > 80 [S]"));
    }

    /// Every prefix of a frame prints without panicking and ends in an error line where a
    /// header is cut.
    #[test]
    fn prints_every_truncation() {
        let f = eth([8, 0], &SYN_V4);
        for len in 0..f.len() {
            let out = frame(&f[..len]).to_string();
            assert!(out.contains("!! "), "len {len}: {out}");
        }
        assert!(!frame(&f).to_string().contains("!! "));
        assert!(frame(&[]).to_string().starts_with("!! ether truncated"));
    }
}
