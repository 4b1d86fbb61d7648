//! What the pipeline decided for one frame.

/// Index of a port in the running configuration (`[[port]]` order in the TOML file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// The pipeline's decision for one frame. The lcore loop acts on it and bumps one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) frame on `port`: towards a backend, or a kernel frame going out.
    Forward(PortId),
    /// Transmit the frame, now an answer (ARP/ND reply, echo reply, frag-needed/packet-too-big),
    /// back out of the port it arrived on.
    Reply,
    /// Hand the frame unchanged to the kernel through the arrival port's exception (TAP) port.
    ToKernel,
    /// Free the frame and count it under `DropReason`.
    Drop(DropReason),
}

/// Why a frame was dropped. Each reason has a per-lcore counter; `as_str` is its metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum DropReason {
    /// A header is cut short by the end of the frame.
    Truncated,
    /// A header field is impossible (IHL < 5, total length beyond the frame, bad ARP lengths...).
    Malformed,
    /// A checksum that we verify is wrong.
    BadChecksum,
    /// Addressed to a VIP, but no service matches protocol/port.
    NoService,
    /// The service has no usable backend.
    NoBackend,
    /// TTL / hop limit would reach zero.
    TtlExceeded,
    /// An IP fragment of VIP traffic (policy: see docs/ARCHITECTURE.md).
    Fragment,
    /// The connection table is full and the new flow could not be tracked.
    TableFull,
    /// The NIC did not take the frame (TX ring full after retries).
    TxFull,
    /// The next hop's MAC address is not (yet) resolved.
    NoNeighbor,
    /// IPv6 extension-header chain too long or looping.
    ExtHeaderLimit,
    /// Traffic the pipeline does not handle and the kernel must not see (e.g. no exception port).
    Unsupported,
    /// Too big for the tunnel after encapsulation and not answerable with ICMP "too big"
    /// (IPv4 without DF, or an ICMP error itself): we never fragment.
    TooBig,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 13] = [
        DropReason::Truncated,
        DropReason::Malformed,
        DropReason::BadChecksum,
        DropReason::NoService,
        DropReason::NoBackend,
        DropReason::TtlExceeded,
        DropReason::Fragment,
        DropReason::TableFull,
        DropReason::TxFull,
        DropReason::NoNeighbor,
        DropReason::ExtHeaderLimit,
        DropReason::Unsupported,
        DropReason::TooBig,
    ];

    /// The counter label, e.g. `no_backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::Malformed => "malformed",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::NoService => "no_service",
            DropReason::NoBackend => "no_backend",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::Fragment => "fragment",
            DropReason::TableFull => "table_full",
            DropReason::TxFull => "tx_full",
            DropReason::NoNeighbor => "no_neighbor",
            DropReason::ExtHeaderLimit => "ext_header_limit",
            DropReason::Unsupported => "unsupported",
            DropReason::TooBig => "too_big",
        }
    }
}
