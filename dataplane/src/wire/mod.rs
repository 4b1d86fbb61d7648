//! Wire types: zero-copy views over packet bytes, in the style of smoltcp's `src/wire/`.
//!
//! One file per protocol. Each defines a view (`EthernetFrame<T>`, `Ipv4Packet<T>`,
//! `TcpPacket<T>`, ...) that is a typed window over bytes it borrows or owns, and where the
//! pipeline builds headers a small validated value (`Ipv4Repr`, `UdpRepr`, `ArpRepr`, ...) with
//! symmetric `parse` / `emit`. Field offsets are named `Range` constants in a private
//! `mod field` per file; there are no magic offsets in accessors.
//!
//! # The no-panic contract
//!
//! - `new_unchecked(bytes)` wraps bytes without looking at them.
//! - `check_len()` proves that every getter of the view, and `payload()`, stays inside the
//!   buffer; it also rejects header fields that make the layout impossible (IHL < 5, a TCP data
//!   offset below 5, ARP address lengths other than 6/4, ...).
//! - `new_checked(bytes)` = `new_unchecked` + `check_len`. **Bytes from the network always go
//!   through `new_checked`.** After it succeeds no getter can panic, whatever the bytes are.
//! - Setters and `emit` paths use `new_unchecked` over a buffer the caller sized with
//!   `Repr::buffer_len()` / `header_len()`: checking a reused buffer would succeed or fail
//!   depending on stale bytes. `Repr::emit` never panics when the buffer is at least that long.
//! - `Repr::parse` never panics once the view was built with `new_checked`; it adds the semantic
//!   checks (checksums, supported hardware types) and returns [`Error`].
//!
//! Every failure is one [`Error`] variant, and every variant maps onto exactly one
//! [`DropReason`] so the pipeline can count it without a lookup table. Nothing here allocates,
//! reads a clock, or logs; [`pretty`] formats headers for logs and failing tests.
//!
//! Addresses use `std::net::{Ipv4Addr, Ipv6Addr}` (plain byte arrays, free to convert) and
//! [`EthernetAddress`] for MACs.

use core::ops::{Range, RangeFrom};

use crate::pipeline::DropReason;

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod gue;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod pretty;
pub mod tcp;
pub mod tunnel;
pub mod udp;
pub mod vlan;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use checksum::PseudoHeader;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr};
pub use gue::{GueHeader, GueRepr, GueVariant};
pub use icmpv4::{Icmpv4Message, Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Message, Icmpv6Packet, Icmpv6Repr, NdiscOption, NdiscOptions, NdiscRepr};
pub use ip::{IpProtocol, QuotedPacket};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{Ipv6ExtHeader, Ipv6ExtHeaders, Ipv6Fragment, Ipv6Packet, Ipv6Repr, Ipv6Upper, MAX_IPV6_EXT_HEADERS};
pub use tunnel::{Encap, OuterAddrs, TunnelRepr};
pub use tcp::{TcpFlags, TcpOption, TcpOptions, TcpPacket};
pub use udp::{UdpPacket, UdpRepr};
pub use vlan::{L2Info, VlanPacket, VlanRepr};

/// A fixed-size field: a byte range inside a header.
pub(crate) type Field = Range<usize>;
/// A variable-size tail: everything from an offset on.
pub(crate) type Rest = RangeFrom<usize>;

/// Why bytes could not be read as the header they claim to be.
///
/// One variant per reason, each mapping onto exactly one [`DropReason`]; the pipeline turns a
/// parse error into a verdict with `DropReason::from(err)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header (or a length it declares for itself) does.
    #[error("packet truncated: a header is cut short by the end of the frame (check the sender's MTU and capture length)")]
    Truncated,
    /// A header field is impossible: IHL < 5, a total length beyond the frame, a TCP data
    /// offset below 5, ARP address lengths other than 6/4, a bad option length...
    #[error("malformed header: a length or version field contradicts the packet (the sender is broken or hostile)")]
    Malformed,
    /// A checksum we verify does not match the bytes.
    #[error("bad checksum: the packet was corrupted in transit or built by a broken sender")]
    BadChecksum,
    /// An IPv6 extension-header chain longer than [`MAX_IPV6_EXT_HEADERS`] (which also bounds
    /// chains that reference themselves).
    #[error("IPv6 extension-header chain longer than {MAX_IPV6_EXT_HEADERS} headers: dropped to bound per-packet work")]
    ExtHeaderLimit,
    /// Well-formed, but a kind we do not implement (non-Ethernet ARP, stacked VLAN tags, GUE
    /// control messages or versions we do not speak).
    #[error("unsupported header: valid on the wire but not handled by this data plane")]
    Unsupported,
}

/// Result of parsing wire bytes.
pub type Result<T> = core::result::Result<T, Error>;

impl From<Error> for DropReason {
    fn from(err: Error) -> DropReason {
        match err {
            Error::Truncated => DropReason::Truncated,
            Error::Malformed => DropReason::Malformed,
            Error::BadChecksum => DropReason::BadChecksum,
            Error::ExtHeaderLimit => DropReason::ExtHeaderLimit,
            Error::Unsupported => DropReason::Unsupported,
        }
    }
}

/// Reads a big-endian `u16` at `field`. Callers guarantee `field` is two bytes inside `data`
/// (by `check_len` or by sizing the buffer); see the module contract.
#[inline]
pub(crate) fn read_u16(data: &[u8], field: Field) -> u16 {
    let b = &data[field];
    u16::from_be_bytes([b[0], b[1]])
}

/// Reads a big-endian `u32` at `field` (four bytes; same contract as [`read_u16`]).
#[inline]
pub(crate) fn read_u32(data: &[u8], field: Field) -> u32 {
    let b = &data[field];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes a big-endian `u16` at `field` (two bytes).
#[inline]
pub(crate) fn write_u16(data: &mut [u8], field: Field, value: u16) {
    data[field].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian `u32` at `field` (four bytes).
#[inline]
pub(crate) fn write_u32(data: &mut [u8], field: Field, value: u32) {
    data[field].copy_from_slice(&value.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each wire error is counted under the drop reason of the same name, so a counter tells an
    /// operator exactly which check failed.
    #[test]
    fn errors_map_one_to_one_onto_drop_reasons() {
        let all = [
            Error::Truncated,
            Error::Malformed,
            Error::BadChecksum,
            Error::ExtHeaderLimit,
            Error::Unsupported,
        ];
        let mut reasons: Vec<DropReason> = all.iter().map(|e| DropReason::from(*e)).collect();
        assert_eq!(reasons[0], DropReason::Truncated);
        assert_eq!(reasons[1], DropReason::Malformed);
        assert_eq!(reasons[2], DropReason::BadChecksum);
        assert_eq!(reasons[3], DropReason::ExtHeaderLimit);
        assert_eq!(reasons[4], DropReason::Unsupported);
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len(), "two wire errors share a drop reason");
    }
}
