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
