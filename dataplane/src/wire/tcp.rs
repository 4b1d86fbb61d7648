//! TCP headers (RFC 9293): ports, sequence numbers, flags, data offset and the options region.
//!
//! The view covers one segment: the buffer is the IP payload (for IPv4 already cut at the total
//! length by [`crate::wire::Ipv4Packet::payload`]). [`TcpPacket::check_len`] guarantees a data
//! offset ≥ 5 and the whole header, options included, inside the buffer. Options are read with
//! [`TcpOptions`], an iterator that stops at the first malformed option.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum::{self, PseudoHeader};
use super::ip::IpProtocol;
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

mod field {
    use crate::wire::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ_NUM: Field = 4..8;
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (4 bits), reserved (3 bits), flags (9 bits).
    pub const FLAGS: Field = 12..14;
    pub const WIN_SIZE: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;

    pub const OPT_END: u8 = 0x00;
    pub const OPT_NOP: u8 = 0x01;
    pub const OPT_MSS: u8 = 0x02;
    pub const OPT_WS: u8 = 0x03;
    pub const OPT_SACKPERM: u8 = 0x04;
    pub const OPT_SACKRNG: u8 = 0x05;
    pub const OPT_TSTAMP: u8 = 0x08;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = field::URGENT.end;
/// Longest header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;

/// The TCP control bits (the low 9 bits of the flags word).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x001);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x002);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x004);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x008);
    /// Acknowledgment field significant.
    pub const ACK: TcpFlags = TcpFlags(0x010);
    /// Urgent pointer field significant.
    pub const URG: TcpFlags = TcpFlags(0x020);
    /// ECN-Echo.
    pub const ECE: TcpFlags = TcpFlags(0x040);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x080);
    /// Accurate-ECN (formerly NS, RFC 3540).
    pub const AE: TcpFlags = TcpFlags(0x100);
    const MASK: u16 = 0x1ff;

    /// All bits of `other` are set.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Union.
    pub const fn with(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// A SYN without ACK: the only segment that may create a TCP flow.
    pub const fn is_initial_syn(self) -> bool {
        self.contains(TcpFlags::SYN) && !self.contains(TcpFlags::ACK)
    }
}

impl fmt::Display for TcpFlags {
    /// tcpdump's notation: `S`, `S.`, `F.`, `R`, `P.` ... (`.` is ACK); `none` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(TcpFlags, char); 8] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::AE, 'A'),
        ];
        if self.0 & TcpFlags::MASK == 0 {
            return f.write_str("none");
        }
        for (flag, c) in LETTERS {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        if self.contains(TcpFlags::ACK) {
            f.write_str(".")?;
        }
        Ok(())
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> TcpPacket<T> {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<TcpPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// `Truncated`: fewer than 20 bytes or options beyond the buffer. `Malformed`: data offset
    /// below 5.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > len {
            return Err(Error::Truncated);
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(read_u16(self.buffer.as_ref(), field::FLAGS) & TcpFlags::MASK)
    }

    /// Receive window (unscaled).
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// Checksum as on the wire.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The raw options region (`20..header_len`).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// An iterator over the parsed options.
    pub fn option_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The MSS option's value, if present and well-formed.
    pub fn mss(&self) -> Option<u16> {
        self.option_iter().find_map(|o| match o {
            Ok(TcpOption::MaxSegmentSize(mss)) => Some(mss),
            _ => None,
        })
    }

    /// The segment's data.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Length of the whole segment (header and data), as the pseudo-header counts it.
    pub fn segment_len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// Whether the checksum over `pseudo` and the whole segment is correct.
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        checksum::verify_upper_layer(pseudo, IpProtocol::TCP, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port (checksum not updated; see [`Self::rewrite_src_port`]).
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, value);
    }
    /// Sets the destination port (checksum not updated; see [`Self::rewrite_dst_port`]).
    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, value);
    }
    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM, value);
    }
    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM, value);
    }
    /// Sets data offset and flags together (header_len in bytes, a multiple of 4, 20..=60;
    /// the reserved bits are written as zero).
    pub fn set_header_len_and_flags(&mut self, header_len: usize, flags: TcpFlags) {
        let v = (((header_len / 4) as u16 & 0xf) << 12) | (flags.0 & TcpFlags::MASK);
        write_u16(self.buffer.as_mut(), field::FLAGS, v);
    }
    /// Sets the window.
    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WIN_SIZE, value);
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT, value);
    }

    /// Recomputes the checksum over `pseudo` and the whole buffer.
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let c = checksum::upper_layer(pseudo, IpProtocol::TCP, self.buffer.as_ref());
        self.set_checksum(c);
    }

    /// Replaces the source port and patches the checksum incrementally.
    pub fn rewrite_src_port(&mut self, value: u16) {
        let c = checksum::update16(self.checksum(), self.src_port(), value);
        self.set_src_port(value);
        self.set_checksum(c);
    }

    /// Replaces the destination port and patches the checksum incrementally.
    pub fn rewrite_dst_port(&mut self, value: u16) {
        let c = checksum::update16(self.checksum(), self.dst_port(), value);
        self.set_dst_port(value);
        self.set_checksum(c);
    }

    /// Patches the checksum for an IPv4 address change in the pseudo-header (DNAT/full-NAT).
    pub fn update_checksum_for_ipv4_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update_ipv4_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Patches the checksum for an IPv6 address change in the pseudo-header.
    pub fn update_checksum_for_ipv6_addr(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::update_ipv6_addr(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Lowers the MSS option to `max` if it is larger, patching the checksum (tunnel modes
    /// clamp so encapsulated segments fit the path). Returns whether the segment changed.
    /// Malformed options are left alone.
    pub fn clamp_mss(&mut self, max: u16) -> bool {
        // Find the MSS value's offset inside the segment first (immutable pass).
        let mut at = None;
        let mut off = HEADER_LEN;
        for opt in self.option_iter() {
            match opt {
                Ok(TcpOption::MaxSegmentSize(mss)) => {
                    if mss > max {
                        at = Some((off + 2, mss));
                    }
                    break;
                }
                Ok(o) => off += o.buffer_len(),
                Err(_) => break,
            }
        }
        let Some((pos, old)) = at else { return false };
        let csum = self.checksum();
        let data = self.buffer.as_mut();
        let new_csum = if pos % 2 == 0 {
            checksum::update16(csum, old, max)
        } else {
            // The value straddles two checksum words: patch the aligned 4-byte window around
            // it (pos + 3 <= header_len because header_len is a multiple of 4).
            let mut before = [0u8; 4];
            before.copy_from_slice(&data[pos - 1..pos + 3]);
            let mut after = before;
            after[1..3].copy_from_slice(&max.to_be_bytes());
            checksum::update_bytes(csum, &before, &after)
        };
        data[pos..pos + 2].copy_from_slice(&max.to_be_bytes());
        self.set_checksum(new_csum);
        true
    }

    /// The options region, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The data, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0); the iterator stops after it.
    EndOfList,
    /// No-operation padding (kind 1).
    NoOperation,
    /// Maximum segment size (kind 2, length 4).
    MaxSegmentSize(u16),
    /// Window scale shift (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks (kind 5): raw pairs of 32-bit left/right edges, a multiple of 8 bytes.
    SackRange(&'a [u8]),
    /// Timestamps (kind 8, length 10).
    Timestamps {
        /// TSval.
        tsval: u32,
        /// TSecr.
        tsecr: u32,
    },
    /// Any other kind, with its data (after kind and length).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// Bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(d) => 2 + d.len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns its length, or `None` (nothing
    /// written) if `buf` is too short or the option cannot be encoded (data over 253 bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let len = self.buffer_len();
        if buf.len() < len || len > 255 {
            return None;
        }
        let buf = &mut buf[..len];
        match *self {
            TcpOption::EndOfList => buf[0] = field::OPT_END,
            TcpOption::NoOperation => buf[0] = field::OPT_NOP,
            TcpOption::MaxSegmentSize(mss) => {
                buf[0] = field::OPT_MSS;
                buf[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(s) => {
                buf[0] = field::OPT_WS;
                buf[2] = s;
            }
            TcpOption::SackPermitted => buf[0] = field::OPT_SACKPERM,
            TcpOption::SackRange(d) => {
                buf[0] = field::OPT_SACKRNG;
                buf[2..].copy_from_slice(d);
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                buf[0] = field::OPT_TSTAMP;
                buf[2..6].copy_from_slice(&tsval.to_be_bytes());
                buf[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                buf[0] = kind;
                buf[2..].copy_from_slice(data);
            }
        }
        if len > 1 {
            buf[1] = len as u8;
        }
        Some(len)
    }
}

/// Iterator over an options region. Yields `Err(Malformed)` once (then stops) for a length
/// byte below 2, beyond the region, or wrong for a known kind; stops after End-of-List.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptions<'a> {
    /// Iterates over `options` (the bytes between the fixed header and the data).
    pub fn new(options: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { rest: options }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            field::OPT_END => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            field::OPT_NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let len = match after_kind.first() {
            Some(&l) if l >= 2 && usize::from(l) <= self.rest.len() => usize::from(l),
            _ => {
                self.rest = &[];
                return Some(Err(Error::Malformed));
            }
        };
        let data = &self.rest[2..len];
        self.rest = &self.rest[len..];
        let opt = match (kind, data.len()) {
            (field::OPT_MSS, 2) => TcpOption::MaxSegmentSize(u16::from_be_bytes([data[0], data[1]])),
            (field::OPT_WS, 1) => TcpOption::WindowScale(data[0]),
            (field::OPT_SACKPERM, 0) => TcpOption::SackPermitted,
            (field::OPT_SACKRNG, n) if n % 8 == 0 && n > 0 => TcpOption::SackRange(data),
            (field::OPT_TSTAMP, 8) => TcpOption::Timestamps {
                tsval: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                tsecr: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            },
            (field::OPT_MSS | field::OPT_WS | field::OPT_SACKPERM | field::OPT_SACKRNG | field::OPT_TSTAMP, _) => {
                self.rest = &[];
                return Some(Err(Error::Malformed));
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Some(Ok(opt))
    }
}

/// Writes the one-line summary of a TCP segment (used by [`crate::wire::pretty`]).
pub(crate) fn summarize<T: AsRef<[u8]>>(p: &TcpPacket<T>, f: &mut dyn fmt::Write) -> fmt::Result {
    write!(
        f,
        "tcp {} > {} [{}] seq {} ack {} win {} len {}",
        p.src_port(),
        p.dst_port(),
        p.flags(),
        p.seq_number(),
        p.ack_number(),
        p.window_len(),
        p.payload().len()
    )?;
    let mut first = true;
    for opt in p.option_iter() {
        f.write_str(if first { " options [" } else { "," })?;
        first = false;
        match opt {
            Ok(TcpOption::EndOfList) => f.write_str("eol")?,
            Ok(TcpOption::NoOperation) => f.write_str("nop")?,
            Ok(TcpOption::MaxSegmentSize(m)) => write!(f, "mss {m}")?,
            Ok(TcpOption::WindowScale(s)) => write!(f, "wscale {s}")?,
            Ok(TcpOption::SackPermitted) => f.write_str("sackOK")?,
            Ok(TcpOption::SackRange(d)) => write!(f, "sack {}", d.len() / 8)?,
            Ok(TcpOption::Timestamps { tsval, tsecr }) => write!(f, "TS val {tsval} ecr {tsecr}")?,
            Ok(TcpOption::Unknown { kind, data }) => write!(f, "opt-{kind} len {}", data.len())?,
            Err(_) => f.write_str("malformed")?,
        }
    }
    if !first {
        f.write_str("]")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::tests::SYN_V4;
    use crate::wire::ipv4::Ipv4Packet;

    fn syn() -> (PseudoHeader, [u8; 40]) {
        let ip = Ipv4Packet::new_checked(&SYN_V4[..]).unwrap();
        let mut seg = [0u8; 40];
        seg.copy_from_slice(ip.payload());
        (ip.pseudo_header(), seg)
    }

    /// The real SYN: ports, sequence number, flags, window, options in order, checksum good.
    #[test]
    fn parse_real_syn() {
        let (ph, seg) = syn();
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (43210, 80));
        assert_eq!(p.seq_number(), 0x2f6b_3e1a);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.flags().is_initial_syn());
        assert_eq!(p.window_len(), 64240);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(&ph), "checksum 0x{:04x}", p.checksum());
        assert_eq!(p.checksum(), 0xec14);
        let opts: Vec<_> = p.option_iter().collect::<Result<_>>().unwrap();
        assert_eq!(
            opts,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps { tsval: 0x0a1b_2c3d, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
        assert_eq!(p.mss(), Some(1460));
        // Re-emitting the options reproduces the region byte for byte.
        let mut out = [0xa5u8; 20];
        let mut at = 0;
        for o in &opts {
            at += o.emit(&mut out[at..]).unwrap();
        }
        assert_eq!(&out[..at], p.options());
    }

    /// Data offset < 5 is `Malformed`; options past the buffer and short buffers `Truncated`.
    #[test]
    fn rejects() {
        let (_, seg) = syn();
        for len in 0..40 {
            assert_eq!(TcpPacket::new_checked(&seg[..len]).unwrap_err(), Error::Truncated, "len {len}");
        }
        for doff in 0..5u8 {
            let mut bad = seg;
            bad[12] = doff << 4;
            assert_eq!(TcpPacket::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        }
    }

    /// Option lengths of 0/1, past the region, or wrong for MSS/WS/TS yield one `Malformed`
    /// and the iteration stops (it can never loop on a zero length).
    #[test]
    fn malformed_options_stop_iteration() {
        for bad in [&[2u8, 0][..], &[2, 1], &[2, 5, 0, 0], &[3, 4, 1, 1], &[8, 9, 0, 0, 0, 0, 0, 0, 0], &[99, 3]] {
            let items: Vec<_> = TcpOptions::new(bad).collect();
            assert_eq!(items, [Err(Error::Malformed)], "{bad:?}");
        }
        let items: Vec<_> = TcpOptions::new(&[1, 0, 2, 4, 5, 0xb4]).collect();
        assert_eq!(items, [Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)]);
        let items: Vec<_> = TcpOptions::new(&[254, 4, 0xaa, 0xbb]).collect();
        assert_eq!(items, [Ok(TcpOption::Unknown { kind: 254, data: &[0xaa, 0xbb] })]);
    }

    /// Port and address rewrites and MSS clamping (aligned and unaligned) keep the checksum
    /// equal to a full recomputation.
    #[test]
    fn incremental_rewrites_match_recompute() {
        let (ph, mut seg) = syn();
        let mut p = TcpPacket::new_unchecked(&mut seg[..]);
        p.rewrite_dst_port(8080);
        p.rewrite_src_port(1);
        let new_dst = Ipv4Addr::new(192, 0, 2, 77);
        let PseudoHeader::V4 { src, dst } = ph else { unreachable!() };
        p.update_checksum_for_ipv4_addr(dst, new_dst);
        let ph2 = PseudoHeader::V4 { src, dst: new_dst };
        assert!(p.verify_checksum(&ph2));
        assert!(p.clamp_mss(1400));
        assert_eq!(p.mss(), Some(1400));
        assert!(p.verify_checksum(&ph2));
        assert!(!p.clamp_mss(1460), "never raises the MSS");
        // Shift the MSS option to an odd offset with a leading NOP.
        let mut odd = [0u8; 28];
        odd[..20].copy_from_slice(&seg[..20]);
        odd[12] = 7 << 4;
        odd[20..28].copy_from_slice(&[1, 2, 4, 0x05, 0xb4, 1, 1, 0]);
        let mut q = TcpPacket::new_unchecked(&mut odd[..]);
        q.fill_checksum(&ph2);
        assert!(q.clamp_mss(1200));
        assert_eq!(q.mss(), Some(1200));
        assert!(q.verify_checksum(&ph2));
        let v6 = PseudoHeader::V6 { src: Ipv6Addr::LOCALHOST, dst: "2001:db8::1".parse().unwrap() };
        q.fill_checksum(&v6);
        q.update_checksum_for_ipv6_addr(Ipv6Addr::LOCALHOST, "2001:db8::2".parse().unwrap());
        assert!(q.verify_checksum(&PseudoHeader::V6 { src: "2001:db8::2".parse().unwrap(), dst: "2001:db8::1".parse().unwrap() }));
    }

    /// tcpdump-style flag letters.
    #[test]
    fn flags_display() {
        assert_eq!(TcpFlags::SYN.to_string(), "S");
        assert_eq!(TcpFlags::SYN.with(TcpFlags::ACK).to_string(), "S.");
        assert_eq!(TcpFlags::FIN.with(TcpFlags::ACK).with(TcpFlags::PSH).to_string(), "FP.");
        assert_eq!(TcpFlags(0).to_string(), "none");
    }
}
