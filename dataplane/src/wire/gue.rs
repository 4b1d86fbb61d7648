//! Generic UDP Encapsulation (draft-ietf-intarea-gue-09), carried in UDP.
//!
//! Two variants share the UDP port and are told apart by the first two bits of the UDP payload
//! ([`GueVariant::of`]):
//! - variant 0: a GUE header, then the encapsulated packet (GLB puts its hop list in the
//!   header's private data):
//!   ```text
//!    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!   |0x0|C|   Hlen  |  Proto/ctype  |             Flags             |
//!   |          Extension fields and private data (Hlen words)       |
//!   ```
//! - variant 1: no GUE header, the UDP payload *is* an IPv4 or IPv6 packet (Katran's GUE
//!   mode, and Linux `fou` with `ipproto`).
//!
//! [`GueHeader::check_len`] guarantees a variant-0 header with its `Hlen` words inside the
//! buffer. Flags and extension fields are carried opaquely (`fields()`): we neither need nor
//! trust them. Control messages (`C` set) parse, and the pipeline does not forward them.

use core::fmt;

use super::ip::IpProtocol;
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::Field;

    /// Version (2 bits), C (1 bit), Hlen (5 bits, in 4-byte words).
    pub const VER_C_HLEN: usize = 0;
    pub const PROTO_CTYPE: usize = 1;
    pub const FLAGS: Field = 2..4;
    pub const FIELDS_START: usize = 4;
}

/// Length of the fixed GUE header.
pub const HEADER_LEN: usize = field::FIELDS_START;
/// Longest extension-fields area: Hlen is 5 bits of 4-byte words.
pub const MAX_FIELDS_LEN: usize = 31 * 4;
/// UDP destination port Katran and Linux `fou` deployments conventionally use for GUE.
pub const GUE_PORT_KATRAN: u16 = 6080;
/// UDP destination port GLB Director uses for GUE.
pub const GUE_PORT_GLB: u16 = 19523;

/// Which GUE variant a UDP payload is, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GueVariant {
    /// Variant 0: a [`GueHeader`] follows.
    Header,
    /// Variant 1 carrying IPv4 directly (first nibble 4).
    DirectIpv4,
    /// Variant 1 carrying IPv6 directly (first nibble 6).
    DirectIpv6,
}

impl GueVariant {
    /// Classifies a UDP payload. `Truncated` if empty; `Unsupported` for the reserved variants
    /// 2 and 3 and for variant 1 with a first nibble other than 4 or 6.
    pub fn of(udp_payload: &[u8]) -> Result<GueVariant> {
        let first = *udp_payload.first().ok_or(Error::Truncated)?;
        match first >> 6 {
            0 => Ok(GueVariant::Header),
            1 => match first >> 4 {
                4 => Ok(GueVariant::DirectIpv4),
                6 => Ok(GueVariant::DirectIpv6),
                _ => Err(Error::Unsupported),
            },
            _ => Err(Error::Unsupported),
        }
    }
}

/// A view of a variant-0 GUE header and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GueHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GueHeader<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> GueHeader<T> {
        GueHeader { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<GueHeader<T>> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// `Truncated`: fewer than 4 bytes, or Hlen words beyond the buffer. `Unsupported`: not
    /// variant 0 (check [`GueVariant::of`] first to handle variant 1).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 0 {
            return Err(Error::Unsupported);
        }
        if self.header_len() > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Variant (0 after `check_len`).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] >> 6
    }

    /// C bit: a control message rather than data.
    pub fn is_control(&self) -> bool {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x20 != 0
    }

    /// Hlen: length of the extension fields and private data in 4-byte words.
    pub fn hlen(&self) -> u8 {
        self.buffer.as_ref()[field::VER_C_HLEN] & 0x1f
    }

    /// Whole header length in bytes (4 + Hlen × 4).
    pub fn header_len(&self) -> usize {
        HEADER_LEN + usize::from(self.hlen()) * 4
    }

    /// Proto/ctype byte: the encapsulated IP protocol for data messages, the control type for
    /// control messages.
    pub fn proto_ctype(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO_CTYPE]
    }

    /// The encapsulated protocol of a data message (IPIP = 4, IPv6 = 41).
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.proto_ctype())
    }

    /// Flags word (carried opaquely).
    pub fn flags(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FLAGS)
    }

    /// Extension fields and private data (`4..header_len`).
    pub fn fields(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The encapsulated packet.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<'a> GueHeader<&'a [u8]> {
    /// The encapsulated packet with the buffer's lifetime.
    pub fn into_payload(self) -> &'a [u8] {
        let start = self.header_len();
        &self.buffer[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> GueHeader<T> {
    /// Sets variant 0, the C bit and Hlen (masked to 5 bits).
    pub fn set_version_control_hlen(&mut self, control: bool, hlen: u8) {
        self.buffer.as_mut()[field::VER_C_HLEN] = (u8::from(control) << 5) | (hlen & 0x1f);
    }
    /// Sets proto/ctype.
    pub fn set_proto_ctype(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTO_CTYPE] = value;
    }
    /// Sets the flags word.
    pub fn set_flags(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::FLAGS, value);
    }
    /// Extension fields and private data, writable.
    pub fn fields_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
    /// The encapsulated packet, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// A variant-0 GUE header as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GueRepr<'a> {
    /// Control message (C bit).
    pub control: bool,
    /// Encapsulated protocol (data) or control type.
    pub proto_ctype: u8,
    /// Flags word.
    pub flags: u16,
    /// Extension fields and private data: a multiple of 4 bytes, at most [`MAX_FIELDS_LEN`].
    pub fields: &'a [u8],
}

impl<'a> GueRepr<'a> {
    /// A data header for `protocol` with no flags or fields.
    pub fn data(protocol: IpProtocol) -> GueRepr<'static> {
        GueRepr { control: false, proto_ctype: protocol.0, flags: 0, fields: &[] }
    }

    /// Reads a checked header.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(header: &GueHeader<&'a T>) -> Result<GueRepr<'a>> {
        header.check_len()?;
        let buf = header.buffer.as_ref();
        Ok(GueRepr {
            control: header.is_control(),
            proto_ctype: header.proto_ctype(),
            flags: header.flags(),
            fields: &buf[HEADER_LEN..header.header_len()],
        })
    }

    /// Header length: 4 + fields.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.fields.len()
    }

    /// Writes the whole header (fixed part and fields); `header` must be at least
    /// [`Self::header_len`] long. `Malformed` (nothing written) if `fields` is not a multiple
    /// of 4 bytes or longer than [`MAX_FIELDS_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut GueHeader<T>) -> Result<()> {
        if self.fields.len() % 4 != 0 || self.fields.len() > MAX_FIELDS_LEN {
            return Err(Error::Malformed);
        }
        header.set_version_control_hlen(self.control, (self.fields.len() / 4) as u8);
        header.set_proto_ctype(self.proto_ctype);
        header.set_flags(self.flags);
        header.fields_mut().copy_from_slice(self.fields);
        Ok(())
    }
}

impl fmt::Display for GueRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.control {
            write!(f, "gue control ctype {}", self.proto_ctype)?;
        } else {
            write!(f, "gue {}", IpProtocol(self.proto_ctype))?;
        }
        if self.flags != 0 {
            write!(f, " flags 0x{:04x}", self.flags)?;
        }
        if !self.fields.is_empty() {
            write!(f, " hlen {}", self.fields.len() / 4)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GLB-style header: variant 0, Hlen 3, proto IPIP, flags 0, private data = hop list
    /// {type 0, next_hop 0, hop_count 2, two IPv4 hops}, then the inner packet's first bytes.
    static GLB: [u8; 20] = [
        0x03, 0x04, 0x00, 0x00, // ver 0, C 0, hlen 3, proto 4, flags 0
        0x00, 0x00, 0x00, 0x02, // private data: type, next hop, hop count
        10, 0, 0, 11, 10, 0, 0, 12, // hops
        0x45, 0x00, 0x00, 0x14,
    ];

    /// Fields, header length and payload of the GLB fixture; the variant detector.
    #[test]
    fn parse_glb_header() {
        assert_eq!(GueVariant::of(&GLB), Ok(GueVariant::Header));
        let h = GueHeader::new_checked(&GLB[..]).unwrap();
        assert_eq!((h.version(), h.is_control(), h.hlen(), h.header_len()), (0, false, 3, 16));
        assert_eq!(h.protocol(), IpProtocol::IPV4);
        assert_eq!(h.fields(), &GLB[4..16]);
        assert_eq!(h.payload(), &[0x45, 0x00, 0x00, 0x14]);
        assert_eq!(GueVariant::of(&[0x45]), Ok(GueVariant::DirectIpv4));
        assert_eq!(GueVariant::of(&[0x60]), Ok(GueVariant::DirectIpv6));
        assert_eq!(GueVariant::of(&[0x50]), Err(Error::Unsupported));
        assert_eq!(GueVariant::of(&[0x80]), Err(Error::Unsupported));
        assert_eq!(GueVariant::of(&[]), Err(Error::Truncated));
    }

    /// Hlen beyond the buffer is `Truncated`; variant 1 in a header view is `Unsupported`.
    #[test]
    fn rejects() {
        for len in 0..16 {
            assert_eq!(GueHeader::new_checked(&GLB[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        let mut big = GLB;
        big[0] = 0x1f;
        assert_eq!(GueHeader::new_checked(&big[..]).unwrap_err(), Error::Truncated);
        assert_eq!(GueHeader::new_checked(&[0x45u8, 0, 0, 0][..]).unwrap_err(), Error::Unsupported);
    }

    /// Emit over garbage reproduces the fixture's header; bad field lengths are refused.
    #[test]
    fn repr_round_trip_over_garbage() {
        let repr = GueRepr::parse(&GueHeader::new_checked(&GLB[..]).unwrap()).unwrap();
        assert_eq!(repr.to_string(), "gue ipip hlen 3");
        let mut buf = [0xa5u8; 16];
        repr.emit(&mut GueHeader::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(&buf[..], &GLB[..16]);
        let ctl = GueRepr { control: true, proto_ctype: 9, flags: 0x8001, fields: &[] };
        let mut buf = [0xa5u8; 4];
        ctl.emit(&mut GueHeader::new_unchecked(&mut buf[..])).unwrap();
        assert_eq!(GueRepr::parse(&GueHeader::new_checked(&buf[..]).unwrap()).unwrap(), ctl);
        let odd = GueRepr { fields: &[1, 2, 3], ..ctl };
        assert_eq!(odd.emit(&mut GueHeader::new_unchecked(&mut [0u8; 8][..])), Err(Error::Malformed));
        let long = [0u8; MAX_FIELDS_LEN + 4];
        let too_long = GueRepr { fields: &long, ..ctl };
        assert_eq!(too_long.emit(&mut GueHeader::new_unchecked(&mut [0u8; 200][..])), Err(Error::Malformed));
    }
}
