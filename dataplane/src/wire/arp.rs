//! ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types are `Unsupported`.
//!
//! The address fields' offsets depend on the declared hardware and protocol lengths, so
//! [`ArpPacket::check_len`] requires them to be 6 and 4 (anything else is `Malformed`): after
//! that every field sits at a fixed offset.

use core::fmt;
use std::net::Ipv4Addr;

use super::ethernet::{EtherType, EthernetAddress};
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    // Offsets below hold for HLEN = 6 and PLEN = 4, which check_len enforces.
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of the fixed part that declares the address lengths.
const FIXED_LEN: usize = field::OPER.end;
/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::TPA.end;
/// `htype` for Ethernet.
pub const HTYPE_ETHERNET: u16 = 1;

/// An ARP opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpOperation(pub u16);

impl ArpOperation {
    /// "Who has TPA? Tell SPA."
    pub const REQUEST: ArpOperation = ArpOperation(1);
    /// "SPA is at SHA."
    pub const REPLY: ArpOperation = ArpOperation(2);
}

/// A view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> ArpPacket<T> {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<ArpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated` if the buffer ends before the fixed part or the addresses;
    /// `Malformed` if the hardware/protocol lengths are not 6/4.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        if data[field::HLEN] != 6 || data[field::PLEN] != 4 {
            return Err(Error::Malformed);
        }
        if data.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type (1 = Ethernet).
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE)
    }

    /// Protocol type (an EtherType; 0x0800 for IPv4).
    pub fn protocol_type(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::PTYPE))
    }

    /// Declared hardware address length (6 after `check_len`).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Declared protocol address length (4 after `check_len`).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Opcode.
    pub fn operation(&self) -> ArpOperation {
        ArpOperation(read_u16(self.buffer.as_ref(), field::OPER))
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        mac_at(self.buffer.as_ref(), field::SHA)
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::SPA)
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        mac_at(self.buffer.as_ref(), field::THA)
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ip_at(self.buffer.as_ref(), field::TPA)
    }
}

fn mac_at(data: &[u8], f: super::Field) -> EthernetAddress {
    let mut a = [0u8; 6];
    a.copy_from_slice(&data[f]);
    EthernetAddress(a)
}

fn ip_at(data: &[u8], f: super::Field) -> Ipv4Addr {
    let b = &data[f];
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::HTYPE, value);
    }
    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PTYPE, value.0);
    }
    /// Sets the hardware address length.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }
    /// Sets the protocol address length.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }
    /// Sets the opcode.
    pub fn set_operation(&mut self, value: ArpOperation) {
        write_u16(self.buffer.as_mut(), field::OPER, value.0);
    }
    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&value.0);
    }
    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&value.octets());
    }
    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&value.0);
    }
    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&value.octets());
    }
}

/// An Ethernet/IPv4 ARP message as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request or reply (other opcodes parse as-is).
    pub operation: ArpOperation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in requests).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a checked packet. Non-Ethernet hardware or non-IPv4 protocol: `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET || packet.protocol_type() != EtherType::IPV4 {
            return Err(Error::Unsupported);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The reply to this request from `our_mac`, which owns `target_protocol_addr`.
    pub fn reply(&self, our_mac: EthernetAddress) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::REPLY,
            source_hardware_addr: our_mac,
            source_protocol_addr: self.target_protocol_addr,
            target_hardware_addr: self.source_hardware_addr,
            target_protocol_addr: self.source_protocol_addr,
        }
    }

    /// Packet length: 28.
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes all 28 bytes; `packet` must be at least [`Self::buffer_len`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(EtherType::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

impl fmt::Display for ArpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            ArpOperation::REQUEST => write!(
                f,
                "arp who-has {} tell {} ({})",
                self.target_protocol_addr, self.source_protocol_addr, self.source_hardware_addr
            ),
            ArpOperation::REPLY => {
                write!(f, "arp reply {} is-at {}", self.source_protocol_addr, self.source_hardware_addr)
            }
            ArpOperation(op) => write!(
                f,
                "arp op {op} {} ({}) > {} ({})",
                self.source_protocol_addr,
                self.source_hardware_addr,
                self.target_protocol_addr,
                self.target_hardware_addr
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real request (as `arping -I eth0 10.0.0.1` sends it): who-has 10.0.0.1 tell 10.0.0.2.
    pub(crate) static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0,
        0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
    ];

    /// The fixture parses to the request it is, and its reply swaps the roles.
    #[test]
    fn parse_request_and_build_reply() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        let req = ArpRepr::parse(&p).unwrap();
        assert_eq!(req.operation, ArpOperation::REQUEST);
        assert_eq!(req.source_protocol_addr, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(req.target_protocol_addr, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(req.to_string(), "arp who-has 10.0.0.1 tell 10.0.0.2 (52:54:00:12:34:56)");
        let mac = EthernetAddress([2, 0, 0, 0, 0, 9]);
        let rep = req.reply(mac);
        assert_eq!(rep.operation, ArpOperation::REPLY);
        assert_eq!((rep.source_hardware_addr, rep.source_protocol_addr), (mac, req.target_protocol_addr));
        assert_eq!((rep.target_hardware_addr, rep.target_protocol_addr), (req.source_hardware_addr, req.source_protocol_addr));
    }

    /// Round trip: emit over 0xa5 garbage reproduces the fixture byte for byte.
    #[test]
    fn repr_round_trip_over_garbage() {
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&REQUEST[..]).unwrap()).unwrap();
        let mut buf = [0xa5u8; PACKET_LEN];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    /// Lengths other than 6/4 are `Malformed` even when the buffer would be long enough;
    /// short buffers are `Truncated`; non-Ethernet hardware is `Unsupported`.
    #[test]
    fn rejects() {
        for len in 0..PACKET_LEN {
            assert_eq!(ArpPacket::new_checked(&REQUEST[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        for (hlen, plen) in [(0, 4), (6, 0), (8, 4), (6, 16), (255, 255)] {
            let mut bad = [0u8; 64];
            bad[..28].copy_from_slice(&REQUEST);
            bad[4] = hlen;
            bad[5] = plen;
            assert_eq!(ArpPacket::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        }
        let mut ieee802 = REQUEST;
        ieee802[1] = 6;
        let p = ArpPacket::new_checked(&ieee802[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Err(Error::Unsupported));
    }
}
