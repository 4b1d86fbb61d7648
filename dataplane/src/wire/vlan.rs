//! IEEE 802.1Q VLAN tags, and [`L2Info::parse`], which finds the L3 header behind an optional
//! tag.
//!
//! A tagged frame is `dst | src | 0x8100 | TCI | inner EtherType | payload`: the view
//! [`VlanPacket`] covers the four bytes after the outer EtherType (TCI and inner EtherType) and
//! the payload. One tag is supported; a second tag (QinQ, 0x88a8 or stacked 0x8100) is
//! [`Error::Unsupported`]: the data plane is not a provider-bridge edge.

use core::fmt;

use super::ethernet::{self, EtherType, EthernetFrame};
use super::{read_u16, write_u16, Error, Result};

mod field {
    use crate::wire::{Field, Rest};

    /// Tag Control Information: PCP (3 bits), DEI (1 bit), VLAN id (12 bits).
    pub const TCI: Field = 0..2;
    pub const ETHERTYPE: Field = 2..4;
    pub const PAYLOAD: Rest = 4..;
}

/// Length of one 802.1Q tag (TCI and inner EtherType).
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The largest valid VLAN id; 0 means "priority tag only" and 4095 is reserved.
pub const MAX_VID: u16 = 4094;

/// A view of an 802.1Q tag: the bytes after an outer EtherType of 0x8100.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> VlanPacket<T> {
        VlanPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<VlanPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Err(Truncated)` if the tag does not fit.
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

    /// Priority code point (802.1p class, 0..=7).
    pub fn pcp(&self) -> u8 {
        (read_u16(self.buffer.as_ref(), field::TCI) >> 13) as u8
    }

    /// Drop eligible indicator.
    pub fn dei(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::TCI) & 0x1000 != 0
    }

    /// VLAN identifier (12 bits).
    pub fn vid(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::TCI) & 0x0fff
    }

    /// The EtherType of what the tag carries.
    pub fn ethertype(&self) -> EtherType {
        EtherType(read_u16(self.buffer.as_ref(), field::ETHERTYPE))
    }

    /// What the tag carries.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanPacket<T> {
    /// Sets PCP, DEI and VID at once (PCP is masked to 3 bits, VID to 12).
    pub fn set_tci(&mut self, pcp: u8, dei: bool, vid: u16) {
        let tci = (u16::from(pcp & 0x7) << 13) | (u16::from(dei) << 12) | (vid & 0x0fff);
        write_u16(self.buffer.as_mut(), field::TCI, tci);
    }

    /// Sets the inner EtherType.
    pub fn set_ethertype(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, value.0);
    }

    /// What the tag carries, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// An 802.1Q tag as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanRepr {
    /// Priority code point (0..=7).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN id (0..=4095; 4095 is reserved and rejected by `parse`).
    pub vid: u16,
    /// Inner EtherType.
    pub ethertype: EtherType,
}

impl VlanRepr {
    /// Reads a checked tag. VID 4095 is reserved by 802.1Q: `Malformed`.
    pub fn parse<T: AsRef<[u8]>>(tag: &VlanPacket<T>) -> Result<VlanRepr> {
        tag.check_len()?;
        if tag.vid() > MAX_VID {
            return Err(Error::Malformed);
        }
        Ok(VlanRepr { pcp: tag.pcp(), dei: tag.dei(), vid: tag.vid(), ethertype: tag.ethertype() })
    }

    /// Tag length: 4.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes all four tag bytes; `tag` must be at least [`Self::buffer_len`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, tag: &mut VlanPacket<T>) {
        tag.set_tci(self.pcp, self.dei, self.vid);
        tag.set_ethertype(self.ethertype);
    }
}

impl fmt::Display for VlanRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vlan {} p {}{} type {}", self.vid, self.pcp, if self.dei { " DEI" } else { "" }, self.ethertype)
    }
}

/// Where the L3 header of an Ethernet frame starts, looking through at most one 802.1Q tag.
/// (The MACs stay in the frame: the one stage that needs one reads it with [`EthernetFrame`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Info {
    /// The VLAN id, if the frame was tagged.
    pub vid: Option<u16>,
    /// EtherType of the L3 payload (the inner one when tagged).
    pub ethertype: EtherType,
    /// Byte offset of the L3 header from the start of the frame (14, or 18 when tagged).
    pub l3_offset: usize,
}

impl L2Info {
    /// Parses the Ethernet header and an optional 802.1Q tag of `frame`.
    ///
    /// Errors: `Truncated` if the header or tag is cut short; `Malformed` for the reserved
    /// VID 4095; `Unsupported` for QinQ or a second 802.1Q tag.
    pub fn parse(frame: &[u8]) -> Result<L2Info> {
        let eth = EthernetFrame::new_checked(frame)?;
        let mut info = L2Info {
            vid: None,
            ethertype: eth.ethertype(),
            l3_offset: ethernet::HEADER_LEN,
        };
        match info.ethertype {
            EtherType::VLAN => {
                let tag = VlanRepr::parse(&VlanPacket::new_checked(eth.into_payload())?)?;
                if matches!(tag.ethertype, EtherType::VLAN | EtherType::QINQ) {
                    return Err(Error::Unsupported);
                }
                info.vid = Some(tag.vid);
                info.ethertype = tag.ethertype;
                info.l3_offset += HEADER_LEN;
            }
            EtherType::QINQ => return Err(Error::Unsupported),
            _ => {}
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // dst 02:00:00:00:00:01, src 02:00:00:00:00:02, 8100, TCI = pcp 5, DEI, vid 100, then IPv4.
    static TAGGED: [u8; 20] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x81, 0x00, 0xb0, 0x64, 0x08, 0x00, 0x45,
        0x00,
    ];

    /// The TCI splits into PCP/DEI/VID as 802.1Q lays it out; the L3 header starts at 18.
    #[test]
    fn parse_tagged_frame() {
        let tag = VlanPacket::new_checked(&TAGGED[14..]).unwrap();
        assert_eq!((tag.pcp(), tag.dei(), tag.vid()), (5, true, 100));
        assert_eq!(tag.ethertype(), EtherType::IPV4);
        let info = L2Info::parse(&TAGGED).unwrap();
        assert_eq!(info.vid, Some(100));
        assert_eq!(info.ethertype, EtherType::IPV4);
        assert_eq!(info.l3_offset, 18);
        assert_eq!(&TAGGED[info.l3_offset..], &[0x45, 0x00]);
    }

    /// An untagged frame has its L3 header at 14 and no VID.
    #[test]
    fn parse_untagged_frame() {
        let mut f = TAGGED;
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let info = L2Info::parse(&f).unwrap();
        assert_eq!((info.vid, info.ethertype, info.l3_offset), (None, EtherType::IPV6, 14));
    }

    /// A tag cut short is `Truncated`; QinQ and stacked tags are `Unsupported`; VID 4095 is
    /// `Malformed`.
    #[test]
    fn rejects() {
        for len in 14..18 {
            assert_eq!(L2Info::parse(&TAGGED[..len]), Err(Error::Truncated), "len {len}");
        }
        let mut stacked = TAGGED;
        stacked[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(L2Info::parse(&stacked), Err(Error::Unsupported));
        let mut qinq = TAGGED;
        qinq[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(L2Info::parse(&qinq), Err(Error::Unsupported));
        let mut reserved = TAGGED;
        reserved[14..16].copy_from_slice(&[0x0f, 0xff]);
        assert_eq!(L2Info::parse(&reserved), Err(Error::Malformed));
    }

    /// `emit` writes all four tag bytes over garbage and parses back equal.
    #[test]
    fn repr_round_trip_over_garbage() {
        let repr = VlanRepr::parse(&VlanPacket::new_checked(&TAGGED[14..]).unwrap()).unwrap();
        let mut buf = [0xa5u8; 4];
        repr.emit(&mut VlanPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf, &TAGGED[14..18]);
    }
}
