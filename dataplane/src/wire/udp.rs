//! UDP (RFC 768; IPv6 rules from RFC 8200 §8.1).
//!
//! [`UdpPacket::check_len`] guarantees `8 ≤ length field ≤ buffer length`; the payload ends at
//! the length field. A zero checksum means "none" over IPv4 and is invalid over IPv6 (we do not
//! implement the RFC 6935 tunnel exception on receive).

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{self, PseudoHeader};
use super::ip::IpProtocol;
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> UdpPacket<T> {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<UdpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated`: fewer than 8 bytes. `Malformed`: length field below 8 or beyond the buffer.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let declared = usize::from(self.len());
        if declared < HEADER_LEN || declared > len {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field: header plus payload.
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum as on the wire (0 = none, IPv4 only).
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload (`8..length`).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum is correct. A zero checksum passes over IPv4 (sender did not
    /// compute one) and fails over IPv6.
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        if self.checksum() == 0 {
            return !pseudo.is_v6();
        }
        checksum::verify_upper_layer(pseudo, IpProtocol::UDP, &self.buffer.as_ref()[..usize::from(self.len())])
    }
}

impl<'a> UdpPacket<&'a [u8]> {
    /// The payload with the buffer's lifetime (to chain views, e.g. into GUE).
    pub fn into_payload(self) -> &'a [u8] {
        let end = usize::from(self.len());
        &self.buffer[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port (checksum not updated; see [`Self::rewrite_src_port`]).
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }
    /// Sets the destination port (checksum not updated; see [`Self::rewrite_dst_port`]).
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }
    /// Sets the length field.
    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH, value);
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Computes the checksum over `pseudo` and `0..length`. A computed 0 is sent as 0xffff
    /// (RFC 768: 0 means "no checksum").
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let end = usize::from(self.len()).min(self.buffer.as_ref().len());
        let c = checksum::upper_layer(pseudo, IpProtocol::UDP, &self.buffer.as_ref()[..end]);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Applies an RFC 1624 update unless the datagram carries no checksum (0 stays 0).
    fn patch_checksum(&mut self, update: impl FnOnce(u16) -> u16) {
        let old = self.checksum();
        if old == 0 {
            return;
        }
        let c = update(old);
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Replaces the source port and patches the checksum incrementally.
    pub fn rewrite_src_port(&mut self, value: u16) {
        let old = self.src_port();
        self.patch_checksum(|c| checksum::update16(c, old, value));
        self.set_src_port(value);
    }

    /// Replaces the destination port and patches the checksum incrementally.
    pub fn rewrite_dst_port(&mut self, value: u16) {
        let old = self.dst_port();
        self.patch_checksum(|c| checksum::update16(c, old, value));
        self.set_dst_port(value);
    }

    /// Patches the checksum for an IPv4 address change in the pseudo-header.
    pub fn update_checksum_for_ipv4_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.patch_checksum(|c| checksum::update_ipv4_addr(c, old, new));
    }

    /// Patches the checksum for an IPv6 address change in the pseudo-header.
    pub fn update_checksum_for_ipv6_addr(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        self.patch_checksum(|c| checksum::update_ipv6_addr(c, old, new));
    }

    /// The payload (`8..length`), writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A UDP header as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Reads a checked datagram and verifies its checksum against `pseudo` (`BadChecksum`).
    pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>, pseudo: &PseudoHeader) -> Result<UdpRepr> {
        packet.check_len()?;
        if !packet.verify_checksum(pseudo) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr { src_port: packet.src_port(), dst_port: packet.dst_port() })
    }

    /// Header length: 8.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes all 8 header bytes for a datagram of `payload_len` bytes, checksum 0. Fill the
    /// payload, then call [`UdpPacket::fill_checksum`] (or keep 0 over IPv4, or for an IPv6
    /// tunnel under RFC 6935). `Malformed` (nothing written) if the length does not fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>, payload_len: usize) -> Result<()> {
        let len = u16::try_from(HEADER_LEN + payload_len).map_err(|_| Error::Malformed)?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

impl fmt::Display for UdpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp {} > {}", self.src_port, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS query for example.com A, 10.0.0.2:53000 → 10.0.0.1:53. Checksum 0x3ac2 computed with
    /// a python3 RFC 1071 one-liner over the pseudo-header and datagram.
    pub(crate) static DNS: [u8; 37] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0x3a, 0xc2, // header
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, b'e', b'x',
        b'a', b'm', b'p', b'l', b'e', 0x03, b'c', b'o', b'm', 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    fn ph() -> PseudoHeader {
        PseudoHeader::V4 { src: Ipv4Addr::new(10, 0, 0, 2), dst: Ipv4Addr::new(10, 0, 0, 1) }
    }

    /// Ports, length, payload and a known-answer checksum.
    #[test]
    fn parse_dns_query() {
        let p = UdpPacket::new_checked(&DNS[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (53000, 53, 37));
        assert_eq!(p.payload().len(), 29);
        assert!(p.verify_checksum(&ph()), "checksum 0x{:04x}", p.checksum());
        assert_eq!(UdpRepr::parse(&p, &ph()).unwrap(), UdpRepr { src_port: 53000, dst_port: 53 });
    }

    /// Zero checksum: accepted over IPv4, rejected over IPv6; corruption is `BadChecksum`.
    #[test]
    fn checksum_rules() {
        let mut none = DNS;
        none[6..8].copy_from_slice(&[0, 0]);
        let p = UdpPacket::new_checked(&none[..]).unwrap();
        assert!(p.verify_checksum(&ph()));
        let v6 = PseudoHeader::V6 { src: Ipv6Addr::LOCALHOST, dst: Ipv6Addr::LOCALHOST };
        assert!(!p.verify_checksum(&v6));
        let mut bad = DNS;
        bad[20] ^= 1;
        assert_eq!(UdpRepr::parse(&UdpPacket::new_checked(&bad[..]).unwrap(), &ph()), Err(Error::BadChecksum));
    }

    /// Length field below 8 or beyond the buffer is `Malformed`; short buffers `Truncated`;
    /// trailing bytes after the length are not payload.
    #[test]
    fn lengths() {
        for len in 0..8 {
            assert_eq!(UdpPacket::new_checked(&DNS[..len]).unwrap_err(), Error::Truncated);
        }
        for len in 8..37 {
            assert_eq!(UdpPacket::new_checked(&DNS[..len]).unwrap_err(), Error::Malformed);
        }
        let mut short = DNS;
        short[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(UdpPacket::new_checked(&short[..]).unwrap_err(), Error::Malformed);
        let mut trailing = [0u8; 40];
        trailing[..37].copy_from_slice(&DNS);
        assert_eq!(UdpPacket::new_checked(&trailing[..]).unwrap().payload().len(), 29);
    }

    /// Emit over garbage + fill_checksum reproduces the fixture.
    #[test]
    fn repr_round_trip_over_garbage() {
        let repr = UdpRepr { src_port: 53000, dst_port: 53 };
        let mut buf = [0xa5u8; 37];
        buf[8..].copy_from_slice(&DNS[8..]);
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        repr.emit(&mut p, 29).unwrap();
        p.fill_checksum(&ph());
        assert_eq!(buf, DNS);
        let mut small = [0u8; 8];
        assert_eq!(repr.emit(&mut UdpPacket::new_unchecked(&mut small[..]), 65_528), Err(Error::Malformed));
    }

    /// Port/address rewrites keep the checksum equal to a recomputation; a datagram without a
    /// checksum keeps none.
    #[test]
    fn incremental_rewrites() {
        let mut buf = DNS;
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        p.rewrite_dst_port(5353);
        p.update_checksum_for_ipv4_addr(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 9, 9, 9));
        let ph2 = PseudoHeader::V4 { src: Ipv4Addr::new(10, 0, 0, 2), dst: Ipv4Addr::new(10, 9, 9, 9) };
        assert!(p.verify_checksum(&ph2));
        let c = p.checksum();
        p.fill_checksum(&ph2);
        assert_eq!(c, p.checksum());
        p.set_checksum(0);
        p.rewrite_src_port(1);
        assert_eq!(p.checksum(), 0);
    }
}
