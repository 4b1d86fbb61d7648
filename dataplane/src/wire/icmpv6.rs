//! ICMPv6 (RFC 4443) and Neighbor Discovery's NS/NA (RFC 4861).
//!
//! [`Icmpv6Packet::check_len`] guarantees the 8-byte header, and for Neighbor Solicitation and
//! Advertisement the 24 bytes up to the end of the target address. The checksum covers an IPv6
//! pseudo-header, so verifying and filling it takes a [`PseudoHeader`].
//!
//! RFC 4861 §7.1 also requires a hop limit of 255 on NS/NA; that is a property of the IPv6
//! header and is checked by the pipeline, not here.

use core::fmt;
use std::net::Ipv6Addr;

use super::checksum::{self, PseudoHeader};
use super::ethernet::EthernetAddress;
use super::ip::{IpProtocol, QuotedPacket};
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

mod field {
    use crate::wire::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    // Echo.
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    // Packet too big: MTU; other errors: unused or pointer.
    pub const MTU: Field = 4..8;
    pub const DATA: Rest = 8..;
    // Neighbor solicitation/advertisement.
    pub const NDISC_FLAGS: usize = 4;
    pub const NDISC_RESERVED: Field = 4..8;
    pub const TARGET: Field = 8..24;
    pub const NDISC_OPTIONS: Rest = 24..;
}

/// Length of the ICMPv6 header (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = field::DATA.start;
/// Length of an NS/NA up to the end of the target address.
pub const NDISC_HEADER_LEN: usize = field::NDISC_OPTIONS.start;
/// Length of a link-layer address option for Ethernet (type, length 1, six address bytes).
pub const LLADDR_OPTION_LEN: usize = 8;
/// The minimum IPv6 MTU (RFC 8200 §5); an ICMPv6 error must fit in it, quote included.
pub const IPV6_MIN_MTU: usize = 1280;

/// An ICMPv6 message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Icmpv6Message(pub u8);

impl Icmpv6Message {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: Icmpv6Message = Icmpv6Message(1);
    /// Packet too big (carries the MTU).
    pub const PKT_TOO_BIG: Icmpv6Message = Icmpv6Message(2);
    /// Time exceeded.
    pub const TIME_EXCEEDED: Icmpv6Message = Icmpv6Message(3);
    /// Parameter problem.
    pub const PARAM_PROBLEM: Icmpv6Message = Icmpv6Message(4);
    /// Echo request.
    pub const ECHO_REQUEST: Icmpv6Message = Icmpv6Message(128);
    /// Echo reply.
    pub const ECHO_REPLY: Icmpv6Message = Icmpv6Message(129);
    /// Router solicitation.
    pub const ROUTER_SOLICIT: Icmpv6Message = Icmpv6Message(133);
    /// Router advertisement.
    pub const ROUTER_ADVERT: Icmpv6Message = Icmpv6Message(134);
    /// Neighbor solicitation.
    pub const NEIGHBOR_SOLICIT: Icmpv6Message = Icmpv6Message(135);
    /// Neighbor advertisement.
    pub const NEIGHBOR_ADVERT: Icmpv6Message = Icmpv6Message(136);
    /// Redirect.
    pub const REDIRECT: Icmpv6Message = Icmpv6Message(137);

    /// Error messages have types below 128 and quote the invoking packet.
    pub fn is_error(self) -> bool {
        self.0 < 128
    }

    /// NS or NA (their layout has a target address at bytes 8..24).
    pub fn is_ndisc_neighbor(self) -> bool {
        matches!(self, Icmpv6Message::NEIGHBOR_SOLICIT | Icmpv6Message::NEIGHBOR_ADVERT)
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv6Packet<T> {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Icmpv6Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the header (24 bytes for NS/NA, else 8) does not fit.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.msg_type().is_ndisc_neighbor() && len < NDISC_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as on the wire.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// MTU of a packet-too-big message.
    pub fn mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::MTU)
    }

    /// Everything after the 8-byte header: echo data, or the quoted invoking packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted invoking packet of an error message ([`QuotedPacket::parse_ipv6`]).
    /// `Unsupported` for informational types.
    pub fn quoted(&self) -> Result<QuotedPacket<'_>> {
        if !self.msg_type().is_error() {
            return Err(Error::Unsupported);
        }
        QuotedPacket::parse_ipv6(self.data())
    }

    /// NA router flag.
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::NDISC_FLAGS] & 0x80 != 0
    }

    /// NA solicited flag.
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::NDISC_FLAGS] & 0x40 != 0
    }

    /// NA override flag.
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::NDISC_FLAGS] & 0x20 != 0
    }

    /// Target address of an NS/NA. Only meaningful for those types, which `check_len` made
    /// long enough; for a short message of another type it returns the unspecified address.
    pub fn target_addr(&self) -> Ipv6Addr {
        match self.buffer.as_ref().get(field::TARGET) {
            Some(b) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ipv6Addr::from(a)
            }
            None => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// The options of an NS/NA (empty for other types or short messages).
    pub fn ndisc_options(&self) -> NdiscOptions<'_> {
        let data = if self.msg_type().is_ndisc_neighbor() {
            self.buffer.as_ref().get(field::NDISC_OPTIONS).unwrap_or(&[])
        } else {
            &[]
        };
        NdiscOptions::new(data)
    }

    /// Whether the checksum over `pseudo` and the whole message is correct.
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        checksum::verify_upper_layer(pseudo, IpProtocol::ICMPV6, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, value: Icmpv6Message) {
        self.buffer.as_mut()[field::TYPE] = value.0;
    }
    /// Sets the code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, value);
    }
    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO, value);
    }
    /// Sets the 4-byte rest-of-header (MTU of packet-too-big, zero for other errors).
    pub fn set_mtu(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::MTU, value);
    }
    /// Sets NA flags (and zeroes the reserved bits).
    pub fn set_ndisc_flags(&mut self, router: bool, solicited: bool, override_: bool) {
        write_u32(self.buffer.as_mut(), field::NDISC_RESERVED, 0);
        let f = (u8::from(router) << 7) | (u8::from(solicited) << 6) | (u8::from(override_) << 5);
        self.buffer.as_mut()[field::NDISC_FLAGS] = f;
    }
    /// Sets the NS/NA target address.
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&value.octets());
    }
    /// Recomputes the checksum over `pseudo` and the whole buffer.
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let c = checksum::upper_layer(pseudo, IpProtocol::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Turns an echo request into its reply in place (type 128 → 129, checksum patched; the
    /// pseudo-header sum does not change when the caller swaps source and destination).
    /// Returns false (nothing changed) if this is not an echo request.
    pub fn echo_request_into_reply(&mut self) -> bool {
        if self.msg_type() != Icmpv6Message::ECHO_REQUEST {
            return false;
        }
        let code = u16::from(self.msg_code());
        let old = (u16::from(Icmpv6Message::ECHO_REQUEST.0) << 8) | code;
        let new = (u16::from(Icmpv6Message::ECHO_REPLY.0) << 8) | code;
        let c = checksum::update16(self.checksum(), old, new);
        self.set_msg_type(Icmpv6Message::ECHO_REPLY);
        self.set_checksum(c);
        true
    }
    /// The body after the 8-byte header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// A Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscOption<'a> {
    /// Source link-layer address (type 1).
    SourceLinkLayerAddr(EthernetAddress),
    /// Target link-layer address (type 2).
    TargetLinkLayerAddr(EthernetAddress),
    /// Any other option, with its data (after type and length).
    Unknown {
        /// Option type.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_TARGET_LLADDR: u8 = 2;

/// Iterator over ND options. A zero length (RFC 4861 §4.6: "MUST silently discard"), a length
/// beyond the message, or a link-layer address option that is not 8 bytes yields one
/// `Err(Malformed)` and ends the walk. Every option advances by at least 8 bytes.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    rest: &'a [u8],
}

impl<'a> NdiscOptions<'a> {
    /// Iterates over `options`.
    pub fn new(options: &'a [u8]) -> NdiscOptions<'a> {
        NdiscOptions { rest: options }
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = Result<NdiscOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = match self.rest.get(1) {
            Some(&units) if units != 0 && usize::from(units) * 8 <= self.rest.len() => usize::from(units) * 8,
            _ => {
                self.rest = &[];
                return Some(Err(Error::Malformed));
            }
        };
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        let kind = opt[0];
        Some(match kind {
            OPT_SOURCE_LLADDR | OPT_TARGET_LLADDR => {
                let Some(mac) = EthernetAddress::from_bytes(&opt[2..]) else {
                    self.rest = &[];
                    return Some(Err(Error::Malformed));
                };
                Ok(if kind == OPT_SOURCE_LLADDR {
                    NdiscOption::SourceLinkLayerAddr(mac)
                } else {
                    NdiscOption::TargetLinkLayerAddr(mac)
                })
            }
            _ => Ok(NdiscOption::Unknown { kind, data: &opt[2..] }),
        })
    }
}

/// Neighbor solicitation / advertisement as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscRepr {
    /// "Who has `target_addr`?" (with the asker's MAC, absent in DAD probes).
    NeighborSolicit {
        /// The address being resolved.
        target_addr: Ipv6Addr,
        /// Source link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
    /// "`target_addr` is at `lladdr`."
    NeighborAdvert {
        /// Sender is a router.
        router: bool,
        /// Sent in answer to a solicitation.
        solicited: bool,
        /// Override existing cache entries.
        override_: bool,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// Target link-layer address option.
        lladdr: Option<EthernetAddress>,
    },
}

impl NdiscRepr {
    /// Reads an NS/NA (checksum already verified by the caller). `Malformed` for a nonzero
    /// code, a multicast target, or bad options (RFC 4861 §7.1).
    fn parse<T: AsRef<[u8]>>(packet: &Icmpv6Packet<T>) -> Result<NdiscRepr> {
        if packet.msg_code() != 0 || packet.target_addr().is_multicast() {
            return Err(Error::Malformed);
        }
        let mut source = None;
        let mut target = None;
        for opt in packet.ndisc_options() {
            match opt? {
                NdiscOption::SourceLinkLayerAddr(m) => source = Some(m),
                NdiscOption::TargetLinkLayerAddr(m) => target = Some(m),
                NdiscOption::Unknown { .. } => {}
            }
        }
        Ok(if packet.msg_type() == Icmpv6Message::NEIGHBOR_SOLICIT {
            NdiscRepr::NeighborSolicit { target_addr: packet.target_addr(), lladdr: source }
        } else {
            NdiscRepr::NeighborAdvert {
                router: packet.router_flag(),
                solicited: packet.solicited_flag(),
                override_: packet.override_flag(),
                target_addr: packet.target_addr(),
                lladdr: target,
            }
        })
    }

    /// The advertisement answering this solicitation from `our_mac` (solicited, override, not a
    /// router). `None` if this is not a solicitation.
    pub fn advert_for(&self, our_mac: EthernetAddress) -> Option<NdiscRepr> {
        match *self {
            NdiscRepr::NeighborSolicit { target_addr, .. } => Some(NdiscRepr::NeighborAdvert {
                router: false,
                solicited: true,
                override_: true,
                target_addr,
                lladdr: Some(our_mac),
            }),
            NdiscRepr::NeighborAdvert { .. } => None,
        }
    }

    fn buffer_len(&self) -> usize {
        let lladdr = match self {
            NdiscRepr::NeighborSolicit { lladdr, .. } | NdiscRepr::NeighborAdvert { lladdr, .. } => lladdr,
        };
        NDISC_HEADER_LEN + if lladdr.is_some() { LLADDR_OPTION_LEN } else { 0 }
    }

    fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>) {
        let (ty, kind, target_addr, lladdr) = match *self {
            NdiscRepr::NeighborSolicit { target_addr, lladdr } => {
                packet.set_ndisc_flags(false, false, false);
                (Icmpv6Message::NEIGHBOR_SOLICIT, OPT_SOURCE_LLADDR, target_addr, lladdr)
            }
            NdiscRepr::NeighborAdvert { router, solicited, override_, target_addr, lladdr } => {
                packet.set_ndisc_flags(router, solicited, override_);
                (Icmpv6Message::NEIGHBOR_ADVERT, OPT_TARGET_LLADDR, target_addr, lladdr)
            }
        };
        packet.set_msg_type(ty);
        packet.set_msg_code(0);
        packet.set_target_addr(target_addr);
        if let Some(mac) = lladdr {
            let opt = &mut packet.buffer.as_mut()[NDISC_HEADER_LEN..NDISC_HEADER_LEN + LLADDR_OPTION_LEN];
            opt[0] = kind;
            opt[1] = 1;
            opt[2..].copy_from_slice(&mac.0);
        }
    }
}

/// The ICMPv6 messages the data plane reads and builds, as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code.
        code: u8,
        /// The invoking packet.
        quoted: &'a [u8],
    },
    /// Packet too big.
    PacketTooBig {
        /// The MTU of the next-hop link.
        mtu: u32,
        /// The invoking packet.
        quoted: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0 = hop limit exceeded in transit).
        code: u8,
        /// The invoking packet.
        quoted: &'a [u8],
    },
    /// Neighbor solicitation or advertisement.
    Ndisc(NdiscRepr),
}

impl<'a> Icmpv6Repr<'a> {
    /// Reads a checked message and verifies its checksum against `pseudo` (`BadChecksum`).
    /// Other types are `Unsupported`; error messages whose quote lacks an IPv6 header (and
    /// extension headers) plus 8 bytes are `Truncated`/`Malformed`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv6Packet<&'a T>,
        pseudo: &PseudoHeader,
    ) -> Result<Icmpv6Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(pseudo) {
            return Err(Error::BadChecksum);
        }
        let data = &packet.buffer.as_ref()[field::DATA];
        Ok(match packet.msg_type() {
            Icmpv6Message::ECHO_REQUEST => {
                Icmpv6Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv6Message::ECHO_REPLY => {
                Icmpv6Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv6Message::DST_UNREACHABLE => {
                QuotedPacket::parse_ipv6(data)?;
                Icmpv6Repr::DstUnreachable { code: packet.msg_code(), quoted: data }
            }
            Icmpv6Message::PKT_TOO_BIG => {
                QuotedPacket::parse_ipv6(data)?;
                Icmpv6Repr::PacketTooBig { mtu: packet.mtu(), quoted: data }
            }
            Icmpv6Message::TIME_EXCEEDED => {
                QuotedPacket::parse_ipv6(data)?;
                Icmpv6Repr::TimeExceeded { code: packet.msg_code(), quoted: data }
            }
            Icmpv6Message::NEIGHBOR_SOLICIT | Icmpv6Message::NEIGHBOR_ADVERT => {
                Icmpv6Repr::Ndisc(NdiscRepr::parse(packet)?)
            }
            _ => return Err(Error::Unsupported),
        })
    }

    /// Message length.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. } | Icmpv6Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::DstUnreachable { quoted, .. }
            | Icmpv6Repr::PacketTooBig { quoted, .. }
            | Icmpv6Repr::TimeExceeded { quoted, .. } => HEADER_LEN + quoted.len(),
            Icmpv6Repr::Ndisc(nd) => nd.buffer_len(),
        }
    }

    /// Writes the whole message and its checksum over `pseudo`. `packet` must be exactly
    /// [`Self::buffer_len`] long; `Truncated` (nothing written) otherwise.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>, pseudo: &PseudoHeader) -> Result<()> {
        if packet.buffer.as_ref().len() != self.buffer_len() {
            return Err(Error::Truncated);
        }
        let mut body: &[u8] = &[];
        match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, data } | Icmpv6Repr::EchoReply { ident, seq_no, data } => {
                let ty = if matches!(self, Icmpv6Repr::EchoRequest { .. }) {
                    Icmpv6Message::ECHO_REQUEST
                } else {
                    Icmpv6Message::ECHO_REPLY
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                body = data;
            }
            Icmpv6Repr::DstUnreachable { code, quoted } | Icmpv6Repr::TimeExceeded { code, quoted } => {
                let ty = if matches!(self, Icmpv6Repr::DstUnreachable { .. }) {
                    Icmpv6Message::DST_UNREACHABLE
                } else {
                    Icmpv6Message::TIME_EXCEEDED
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(code);
                packet.set_mtu(0);
                body = quoted;
            }
            Icmpv6Repr::PacketTooBig { mtu, quoted } => {
                packet.set_msg_type(Icmpv6Message::PKT_TOO_BIG);
                packet.set_msg_code(0);
                packet.set_mtu(mtu);
                body = quoted;
            }
            Icmpv6Repr::Ndisc(nd) => nd.emit(packet),
        }
        if !matches!(self, Icmpv6Repr::Ndisc(_)) {
            packet.data_mut().copy_from_slice(body);
        }
        packet.fill_checksum(pseudo);
        Ok(())
    }
}

impl fmt::Display for Icmpv6Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv6Repr::EchoRequest { ident, seq_no, data } => {
                write!(f, "icmp6 echo request id {ident} seq {seq_no} len {}", data.len())
            }
            Icmpv6Repr::EchoReply { ident, seq_no, data } => {
                write!(f, "icmp6 echo reply id {ident} seq {seq_no} len {}", data.len())
            }
            Icmpv6Repr::DstUnreachable { code, .. } => write!(f, "icmp6 unreachable code {code}"),
            Icmpv6Repr::PacketTooBig { mtu, .. } => write!(f, "icmp6 packet too big mtu {mtu}"),
            Icmpv6Repr::TimeExceeded { code, .. } => write!(f, "icmp6 time exceeded code {code}"),
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr, lladdr }) => {
                write!(f, "icmp6 neighbor solicitation who has {target_addr}")?;
                if let Some(m) = lladdr {
                    write!(f, " src-lladdr {m}")?;
                }
                Ok(())
            }
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert { router, solicited, override_, target_addr, lladdr }) => {
                write!(f, "icmp6 neighbor advertisement tgt {target_addr}")?;
                write!(f, " flags [{}{}{}]", if *router { "R" } else { "" }, if *solicited { "S" } else { "" }, if *override_ { "O" } else { "" })?;
                if let Some(m) = lladdr {
                    write!(f, " tgt-lladdr {m}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::tests::V6_EXT_UDP;

    fn ns_pseudo() -> PseudoHeader {
        PseudoHeader::V6 {
            src: "fe80::5054:ff:fe12:3456".parse().unwrap(),
            dst: "ff02::1:ff00:1".parse().unwrap(),
        }
    }

    /// A neighbor solicitation for 2001:db8::1 with a source link-layer address option, as
    /// Linux sends it from fe80::5054:ff:fe12:3456 to the solicited-node group. Checksum 0x42ea
    /// from a python3 RFC 1071 one-liner over the pseudo-header.
    static NS: [u8; 32] = [
        0x87, 0x00, 0x42, 0xea, 0x00, 0x00, 0x00, 0x00, // type 135, code 0, checksum, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // target
        0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // source lladdr option
    ];

    /// The NS fixture parses to its target and source MAC; the advertisement built from it
    /// round-trips through emit (over garbage) and parse.
    #[test]
    fn neighbor_solicitation_and_advert() {
        let p = Icmpv6Packet::new_checked(&NS[..]).unwrap();
        assert!(p.verify_checksum(&ns_pseudo()), "checksum 0x{:04x}", p.checksum());
        let repr = Icmpv6Repr::parse(&p, &ns_pseudo()).unwrap();
        let ns = NdiscRepr::NeighborSolicit {
            target_addr: "2001:db8::1".parse().unwrap(),
            lladdr: Some(EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])),
        };
        assert_eq!(repr, Icmpv6Repr::Ndisc(ns));
        let mut buf = [0xa5u8; 32];
        repr.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ns_pseudo()).unwrap();
        assert_eq!(buf, NS);

        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let na = Icmpv6Repr::Ndisc(ns.advert_for(mac).unwrap());
        let back = PseudoHeader::V6 { src: "2001:db8::1".parse().unwrap(), dst: "fe80::5054:ff:fe12:3456".parse().unwrap() };
        let mut buf = [0xa5u8; 32];
        na.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &back).unwrap();
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(p.solicited_flag() && p.override_flag() && !p.router_flag());
        assert_eq!(Icmpv6Repr::parse(&p, &back).unwrap(), na);
        assert_eq!(
            na.to_string(),
            "icmp6 neighbor advertisement tgt 2001:db8::1 flags [SO] tgt-lladdr 02:00:00:00:00:01"
        );
        // A DAD probe has no source lladdr option.
        let dad = Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit { target_addr: "2001:db8::1".parse().unwrap(), lladdr: None });
        let mut buf = [0xa5u8; 24];
        dad.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ns_pseudo()).unwrap();
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ns_pseudo()).unwrap(), dad);
    }

    /// NS shorter than 24 bytes is `Truncated`; a zero-length option, an option past the end,
    /// a nonzero code and a multicast target are `Malformed`.
    #[test]
    fn ndisc_rejects() {
        for len in 0..24 {
            assert_eq!(Icmpv6Packet::new_checked(&NS[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        let parse = |m: &[u8]| {
            let mut m = m.to_vec();
            let mut p = Icmpv6Packet::new_unchecked(&mut m[..]);
            p.fill_checksum(&ns_pseudo());
            Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&m[..]).unwrap(), &ns_pseudo()).map(|_| ())
        };
        let mut zero_len = NS;
        zero_len[25] = 0;
        assert_eq!(parse(&zero_len), Err(Error::Malformed));
        let mut past_end = NS;
        past_end[25] = 2;
        assert_eq!(parse(&past_end), Err(Error::Malformed));
        let mut code = NS;
        code[1] = 1;
        assert_eq!(parse(&code), Err(Error::Malformed));
        let mut mcast = NS;
        mcast[8] = 0xff;
        assert_eq!(parse(&mcast), Err(Error::Malformed));
        let mut bad_sum = NS;
        bad_sum[31] ^= 1;
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&bad_sum[..]).unwrap(), &ns_pseudo()), Err(Error::BadChecksum));
        let zero_opts: Vec<_> = NdiscOptions::new(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 1]).collect();
        assert_eq!(zero_opts, [Err(Error::Malformed)]);
    }

    /// A packet-too-big quoting the IPv6+ext+UDP fixture: MTU read, the quote's extension
    /// headers walked to the UDP ports; echo and errors round-trip over garbage.
    #[test]
    fn packet_too_big_and_round_trips() {
        let quoted = &V6_EXT_UDP[..64];
        let ptb = Icmpv6Repr::PacketTooBig { mtu: 1280, quoted };
        let ph = PseudoHeader::V6 { src: "2001:db8::fe".parse().unwrap(), dst: "2001:db8::2".parse().unwrap() };
        let mut buf = [0xa5u8; 72];
        ptb.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ph).unwrap();
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!((p.msg_type(), p.mtu()), (Icmpv6Message::PKT_TOO_BIG, 1280));
        let q = p.quoted().unwrap();
        assert_eq!(q.protocol, IpProtocol::UDP);
        assert_eq!(q.l4_offset, 56);
        assert_eq!(q.ports(), Some((40000, 53)));
        assert_eq!(Icmpv6Repr::parse(&p, &ph).unwrap(), ptb);
        // Cutting the quote inside the UDP header (fewer than 8 bytes) is Truncated.
        let short = Icmpv6Repr::PacketTooBig { mtu: 1280, quoted: &V6_EXT_UDP[..60] };
        let mut buf = [0u8; 68];
        short.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ph).unwrap();
        assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ph), Err(Error::Truncated));

        let data = [7u8; 10];
        for r in [
            Icmpv6Repr::EchoRequest { ident: 3, seq_no: 4, data: &data },
            Icmpv6Repr::EchoReply { ident: 3, seq_no: 4, data: &data },
            Icmpv6Repr::DstUnreachable { code: 4, quoted },
            Icmpv6Repr::TimeExceeded { code: 0, quoted },
        ] {
            let mut buf = [0xa5u8; 80];
            let buf = &mut buf[..r.buffer_len()];
            r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &ph).unwrap();
            assert_eq!(Icmpv6Repr::parse(&Icmpv6Packet::new_checked(&buf[..]).unwrap(), &ph).unwrap(), r);
        }
    }

    /// In-place echo reply keeps a valid checksum once source and destination are swapped.
    #[test]
    fn echo_request_into_reply() {
        let data = [1u8; 16];
        let req = Icmpv6Repr::EchoRequest { ident: 9, seq_no: 1, data: &data };
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
        let mut buf = [0u8; 24];
        req.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &PseudoHeader::V6 { src: a, dst: b }).unwrap();
        let mut p = Icmpv6Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.echo_request_into_reply());
        assert!(p.verify_checksum(&PseudoHeader::V6 { src: b, dst: a }));
    }
}
