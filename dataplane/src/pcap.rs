//! Classic pcap files (the libpcap format `net_pcap` reads and writes): the records of a
//! capture, and a writer for the captures tests and benchmarks feed to `net_pcap`.
//!
//! Contract: [`records`] never panics on any input: it accepts either byte order and both the
//! microsecond and nanosecond magic, and ends at the first record that does not fit in the
//! file (a truncated last record is not yielded) or at once when the file is not a pcap.

/// Bytes of the file header.
pub const GLOBAL_HEADER: usize = 24;
/// Bytes of each record's header.
pub const RECORD_HEADER: usize = 16;
/// Link type of Ethernet frames.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The captured bytes of every record of `file`, in order (see the module contract).
pub fn records(file: &[u8]) -> Records<'_> {
    let little = match file.get(..4) {
        Some([0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]) => Some(true),
        Some([0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d]) => Some(false),
        _ => None,
    };
    Records { file, off: GLOBAL_HEADER, little }
}

/// Iterator returned by [`records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    file: &'a [u8],
    off: usize,
    /// Byte order of the file's integers; `None` when it is not a pcap.
    little: Option<bool>,
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let little = self.little?;
        let len = self.file.get(self.off + 8..self.off + 12)?;
        let len = [len[0], len[1], len[2], len[3]];
        let len = if little { u32::from_le_bytes(len) } else { u32::from_be_bytes(len) } as usize;
        let start = self.off.checked_add(RECORD_HEADER)?;
        let end = start.checked_add(len)?;
        let frame = self.file.get(start..end)?;
        self.off = end;
        Some(frame)
    }
}

/// A little-endian, microsecond pcap of Ethernet `frames`, record `i` stamped `first_ts + i`
/// seconds.
pub fn write<F: AsRef<[u8]>>(frames: &[F], first_ts: u32) -> Vec<u8> {
    let mut out = Vec::new();
    // magic, version 2.4, thiszone, sigfigs, snaplen, link type
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, LINKTYPE_ETHERNET] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        let f = f.as_ref();
        for v in [first_ts.wrapping_add(i as u32), 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write` produces reads back record for record, and a truncated last record or a
    /// file that is not a pcap yields nothing more.
    #[test]
    fn write_then_read_back() {
        let frames = [vec![1u8; 60], vec![2u8; 64], vec![3u8; 1514]];
        let file = write(&frames, 7);
        let got: Vec<&[u8]> = records(&file).collect();
        assert_eq!(got, frames.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(records(&file[..file.len() - 1]).count(), 2, "a truncated last record is not yielded");
        assert_eq!(records(b"not a pcap at all, definitely not").count(), 0);
        assert_eq!(records(&[]).count(), 0);
    }

    /// Big-endian files (written on other hosts) read the same.
    #[test]
    fn big_endian_records() {
        let mut file = vec![0xa1, 0xb2, 0xc3, 0xd4];
        file.extend_from_slice(&[0; 20]);
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&3u32.to_be_bytes());
        file.extend_from_slice(&3u32.to_be_bytes());
        file.extend_from_slice(b"abc");
        assert_eq!(records(&file).collect::<Vec<_>>(), vec![b"abc".as_slice()]);
    }
}
