//! ICMP for IPv4 (RFC 792, RFC 1191 for "fragmentation needed" with the next-hop MTU).
//!
//! [`Icmpv4Packet::check_len`] guarantees the 8-byte header; the message body (echo data or the
//! quoted invoking packet) is everything after it, up to the end of the IP payload. The checksum
//! covers the whole message and has no pseudo-header.

use core::fmt;

use super::checksum;
use super::ip::QuotedPacket;
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::{Field, Rest};

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    // Echo request/reply.
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    // Destination unreachable, code 4 (RFC 1191): unused, then next-hop MTU.
    pub const UNUSED: Field = 4..6;
    pub const NEXT_HOP_MTU: Field = 6..8;
    pub const DATA: Rest = 8..;
}

/// Length of the ICMPv4 header (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = field::DATA.start;

/// An ICMPv4 message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Icmpv4Message(pub u8);

impl Icmpv4Message {
    /// Echo reply.
    pub const ECHO_REPLY: Icmpv4Message = Icmpv4Message(0);
    /// Destination unreachable (code 4 = fragmentation needed and DF set).
    pub const DST_UNREACHABLE: Icmpv4Message = Icmpv4Message(3);
    /// Redirect.
    pub const REDIRECT: Icmpv4Message = Icmpv4Message(5);
    /// Echo request.
    pub const ECHO_REQUEST: Icmpv4Message = Icmpv4Message(8);
    /// Time exceeded (code 0 = TTL exceeded in transit).
    pub const TIME_EXCEEDED: Icmpv4Message = Icmpv4Message(11);
    /// Parameter problem.
    pub const PARAM_PROBLEM: Icmpv4Message = Icmpv4Message(12);

    /// Whether this type quotes an invoking packet (an error message).
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Icmpv4Message::DST_UNREACHABLE | Icmpv4Message::REDIRECT | Icmpv4Message::TIME_EXCEEDED | Icmpv4Message::PARAM_PROBLEM
        )
    }
}

/// Destination-unreachable code: fragmentation needed and DF set (RFC 1191).
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Destination-unreachable code: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;
/// Time-exceeded code: TTL exceeded in transit.
pub const CODE_TTL_EXCEEDED: u8 = 0;

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Icmpv4Packet<T> {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Icmpv4Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the 8-byte header does not fit.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message(self.buffer.as_ref()[field::TYPE])
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum as on the wire.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier (meaningful for echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Echo sequence number (meaningful for echo request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// Next-hop MTU (meaningful for destination unreachable, code 4; 0 from pre-RFC 1191
    /// routers).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Everything after the header: echo data, or the quoted invoking packet.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::DATA]
    }

    /// The quoted invoking packet of an error message, located and checked
    /// ([`QuotedPacket::parse_ipv4`]). `Unsupported` for non-error types.
    pub fn quoted(&self) -> Result<QuotedPacket<'_>> {
        if !self.msg_type().is_error() {
            return Err(Error::Unsupported);
        }
        QuotedPacket::parse_ipv4(self.data())
    }

    /// Whether the checksum over the whole message is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, value: Icmpv4Message) {
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
    /// Sets the unused half and the next-hop MTU of a destination unreachable.
    pub fn set_next_hop_mtu(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::UNUSED, 0);
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU, value);
    }
    /// Recomputes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
    /// Turns an echo request into its reply in place (type 8 → 0, checksum patched
    /// incrementally; identifier, sequence number and data stay). Returns false (nothing
    /// changed) if this is not an echo request.
    pub fn echo_request_into_reply(&mut self) -> bool {
        if self.msg_type() != Icmpv4Message::ECHO_REQUEST {
            return false;
        }
        let code = u16::from(self.msg_code());
        let old = (u16::from(Icmpv4Message::ECHO_REQUEST.0) << 8) | code;
        let new = (u16::from(Icmpv4Message::ECHO_REPLY.0) << 8) | code;
        let mut c = checksum::update16(self.checksum(), old, new);
        self.set_msg_type(Icmpv4Message::ECHO_REPLY);
        self.set_checksum(0);
        if c == 0 && self.buffer.as_ref().iter().all(|&b| b == 0) {
            // RFC 1624 §3's corner: eq. 3 yields +0 when every other byte is zero, but such a
            // message's checksum is !sum(zeros) = 0xffff (ICMPv4 has no pseudo-header to make
            // the data nonzero, unlike TCP/UDP/ICMPv6 and the IPv4 header).
            c = 0xffff;
        }
        self.set_checksum(c);
        true
    }
    /// The body, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DATA]
    }
}

/// The ICMPv4 messages the data plane reads and builds, as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data echoed back.
        data: &'a [u8],
    },
    /// Destination unreachable; `next_hop_mtu` is meaningful for code 4 (frag needed).
    DstUnreachable {
        /// Code (4 = fragmentation needed).
        code: u8,
        /// Next-hop MTU (0 unless code is 4).
        next_hop_mtu: u16,
        /// The invoking packet: its IP header and at least 8 bytes after it.
        quoted: &'a [u8],
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code (0 = TTL exceeded in transit).
        code: u8,
        /// The invoking packet.
        quoted: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a checked message, verifying its checksum (`BadChecksum`). Other message types
    /// are `Unsupported`; an error message whose quote lacks an IPv4 header and 8 bytes is
    /// `Truncated`/`Malformed`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = &packet.buffer.as_ref()[field::DATA];
        Ok(match packet.msg_type() {
            Icmpv4Message::ECHO_REQUEST => {
                Icmpv4Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::ECHO_REPLY => {
                Icmpv4Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data }
            }
            Icmpv4Message::DST_UNREACHABLE => {
                QuotedPacket::parse_ipv4(data)?;
                let code = packet.msg_code();
                let next_hop_mtu = if code == CODE_FRAG_NEEDED { packet.next_hop_mtu() } else { 0 };
                Icmpv4Repr::DstUnreachable { code, next_hop_mtu, quoted: data }
            }
            Icmpv4Message::TIME_EXCEEDED => {
                QuotedPacket::parse_ipv4(data)?;
                Icmpv4Repr::TimeExceeded { code: packet.msg_code(), quoted: data }
            }
            _ => return Err(Error::Unsupported),
        })
    }

    /// Message length: 8 plus the data or quote.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data.len(),
                Icmpv4Repr::DstUnreachable { quoted, .. } | Icmpv4Repr::TimeExceeded { quoted, .. } => quoted.len(),
            }
    }

    /// Writes the whole message (header, body, checksum). `packet` must be exactly
    /// [`Self::buffer_len`] long, since the checksum covers the whole buffer; `Truncated`
    /// (nothing written) otherwise.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) -> Result<()> {
        if packet.buffer.as_ref().len() != self.buffer_len() {
            return Err(Error::Truncated);
        }
        let body = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } | Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                let ty = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    Icmpv4Message::ECHO_REQUEST
                } else {
                    Icmpv4Message::ECHO_REPLY
                };
                packet.set_msg_type(ty);
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                data
            }
            Icmpv4Repr::DstUnreachable { code, next_hop_mtu, quoted } => {
                packet.set_msg_type(Icmpv4Message::DST_UNREACHABLE);
                packet.set_msg_code(code);
                packet.set_next_hop_mtu(next_hop_mtu);
                quoted
            }
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                packet.set_msg_type(Icmpv4Message::TIME_EXCEEDED);
                packet.set_msg_code(code);
                packet.set_next_hop_mtu(0);
                quoted
            }
        };
        packet.data_mut().copy_from_slice(body);
        packet.fill_checksum();
        Ok(())
    }
}

impl fmt::Display for Icmpv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv4Repr::EchoRequest { ident, seq_no, data } => {
                write!(f, "icmp echo request id {ident} seq {seq_no} len {}", data.len())
            }
            Icmpv4Repr::EchoReply { ident, seq_no, data } => {
                write!(f, "icmp echo reply id {ident} seq {seq_no} len {}", data.len())
            }
            Icmpv4Repr::DstUnreachable { code: CODE_FRAG_NEEDED, next_hop_mtu, .. } => {
                write!(f, "icmp unreachable need-frag mtu {next_hop_mtu}")
            }
            Icmpv4Repr::DstUnreachable { code, .. } => write!(f, "icmp unreachable code {code}"),
            Icmpv4Repr::TimeExceeded { code, .. } => write!(f, "icmp time exceeded code {code}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip::IpProtocol;
    use crate::wire::ipv4::tests::SYN_V4;
    use std::net::{IpAddr, Ipv4Addr};

    /// A frag-needed (type 3 code 4, MTU 1400) quoting the first 28 bytes of the SYN fixture
    /// (IP header + 8 bytes of TCP), as a router on the path would send it.
    fn frag_needed() -> [u8; 36] {
        let mut m = [0u8; 36];
        m[0] = 3;
        m[1] = 4;
        m[6..8].copy_from_slice(&1400u16.to_be_bytes());
        m[8..].copy_from_slice(&SYN_V4[..28]);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    /// The quote yields the flow: addresses, protocol and ports of the SYN; the MTU is read.
    #[test]
    fn frag_needed_quotes_tcp_flow() {
        let m = frag_needed();
        let p = Icmpv4Packet::new_checked(&m[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!((p.msg_type(), p.msg_code(), p.next_hop_mtu()), (Icmpv4Message::DST_UNREACHABLE, 4, 1400));
        let q = p.quoted().unwrap();
        assert_eq!(q.src_addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(q.dst_addr, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(q.protocol, IpProtocol::TCP);
        assert_eq!(q.ports(), Some((43210, 80)));
        assert_eq!(q.l4_offset, 20);
        let repr = Icmpv4Repr::parse(&p).unwrap();
        assert_eq!(repr, Icmpv4Repr::DstUnreachable { code: 4, next_hop_mtu: 1400, quoted: &SYN_V4[..28] });
        assert_eq!(repr.to_string(), "icmp unreachable need-frag mtu 1400");
    }

    /// A quote with fewer than 8 bytes after the IP header is `Truncated`; IHL < 5 in the
    /// quote `Malformed`; a bad checksum `BadChecksum`.
    #[test]
    fn rejects() {
        let m = frag_needed();
        for len in 8..36 {
            let p = Icmpv4Packet::new_unchecked(&m[..len]);
            assert_eq!(p.quoted().unwrap_err(), Error::Truncated, "len {len}");
        }
        for len in 0..8 {
            assert_eq!(Icmpv4Packet::new_checked(&m[..len]).unwrap_err(), Error::Truncated);
        }
        let mut bad_ihl = m;
        bad_ihl[8] = 0x44;
        assert_eq!(Icmpv4Packet::new_unchecked(&bad_ihl[..]).quoted().unwrap_err(), Error::Malformed);
        let mut bad_sum = m;
        bad_sum[30] ^= 0x40;
        assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&bad_sum[..]).unwrap()), Err(Error::BadChecksum));
    }

    /// Every message kind round-trips through emit (over garbage) and parse, byte-exact for
    /// the fixture.
    #[test]
    fn repr_round_trip_over_garbage() {
        let m = frag_needed();
        let mut buf = [0xa5u8; 36];
        let repr = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&m[..]).unwrap()).unwrap();
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(buf, m);
        let data = [1u8, 2, 3, 4, 5];
        for r in [
            Icmpv4Repr::EchoRequest { ident: 0x1234, seq_no: 7, data: &data },
            Icmpv4Repr::EchoReply { ident: 0x1234, seq_no: 7, data: &data },
            Icmpv4Repr::TimeExceeded { code: 0, quoted: &SYN_V4[..28] },
        ] {
            let mut buf = [0xa5u8; 64];
            let buf = &mut buf[..r.buffer_len()];
            r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
            assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap(), r);
        }
        let mut wrong = [0u8; 10];
        assert_eq!(repr.emit(&mut Icmpv4Packet::new_unchecked(&mut wrong[..])), Err(Error::Truncated));
    }

    /// In-place echo reply: only the type changes, and the checksum stays valid.
    #[test]
    fn echo_request_into_reply() {
        let data = [9u8; 56];
        let req = Icmpv4Repr::EchoRequest { ident: 1, seq_no: 2, data: &data };
        let mut buf = [0u8; 64];
        req.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
        let mut p = Icmpv4Packet::new_checked(&mut buf[..]).unwrap();
        assert!(p.echo_request_into_reply());
        assert!(p.verify_checksum());
        assert!(!p.echo_request_into_reply());
        // A request whose identifier, sequence and data are all zero: the reply is all zeros
        // but for the checksum, which must then be 0xffff, not 0.
        let zero = Icmpv4Repr::EchoRequest { ident: 0, seq_no: 0, data: &[0; 4] };
        let mut zbuf = [0u8; 12];
        zero.emit(&mut Icmpv4Packet::new_unchecked(&mut zbuf[..])).unwrap();
        let mut z = Icmpv4Packet::new_checked(&mut zbuf[..]).unwrap();
        assert!(z.echo_request_into_reply());
        assert_eq!(z.checksum(), 0xffff);
        assert!(z.verify_checksum());
        let reply = Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(reply, Icmpv4Repr::EchoReply { ident: 1, seq_no: 2, data: &data });
    }
}
