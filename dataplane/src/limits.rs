//! Every limit of the data plane, with its memory cost and the reason for its value.
//!
//! Config may override the ones users need to size (connection table capacity, Maglev table
//! size); the rest are compile-time so that per-lcore state has a fixed layout.

/// Packets per `rx_burst` / `tx_burst`. 32 is DPDK's customary burst: large enough to amortise
/// the PMD call and the snapshot check, small enough to stay in L1 (32 mbuf headers = 4 KiB).
pub const BURST_SIZE: usize = 32;

/// Most services (VIP + protocol + port) one configuration may hold. Per-service counters are
/// fixed arrays of this size in every lcore: 4 counters x 8 B x 1024 = 32 KiB per lcore.
pub const MAX_SERVICES: usize = 1024;

/// Most backends over all services. Per-backend counters: 2 x 8 B x 4096 = 64 KiB per lcore.
/// Also bounds backend indices to `u16` in Maglev tables.
pub const MAX_BACKENDS: usize = 4096;

/// Default Maglev table size: prime, >= 100 x backends for <= 1 % imbalance up to 655 backends.
/// One table costs 2 B x 65537 = 128 KiB per service (u16 backend indices).
pub const MAGLEV_DEFAULT_SIZE: u32 = 65537;

/// Largest Maglev table size accepted from a config: 2 B x 1 000 003 = 2 MiB per service.
pub const MAGLEV_MAX_SIZE: u32 = 1_000_003;

/// Most DPDK ports (NICs plus their exception ports). Per-port counters: 6 x 8 B x 16 per lcore.
pub const MAX_PORTS: usize = 16;

/// Most forwarding lcores.
pub const MAX_LCORES: usize = 64;

/// Highest lcore id accepted in `[eal]`: Debian's DPDK is built with `RTE_MAX_LCORE = 128`.
pub const LCORE_ID_MAX: u32 = 127;

/// Highest CPU id accepted in `[eal.cpus]`: the size of the kernel's CPU set type
/// (`CPU_SETSIZE` = 1024), which EAL's `--lcores` parser also uses.
pub const CPU_ID_MAX: u32 = 1023;

/// Smallest accepted per-lcore connection-table capacity. Below this a handful of clients
/// would fill the table and new flows would be forwarded untracked.
pub const CONNTRACK_MIN_CAPACITY: usize = 1024;

/// Default per-lcore connection-table capacity: 2^20 flows x `conntrack::BYTES_PER_ENTRY`
/// (64 B) = 64 MiB per lcore.
pub const CONNTRACK_DEFAULT_CAPACITY: usize = 1 << 20;

/// Largest accepted per-lcore capacity: 2^25 (33.5 M) flows x 64 B = 2 GiB per lcore. Beyond
/// that the table no longer fits the memory budgets of the machines this targets (the table
/// itself allows 2^27).
pub const CONNTRACK_MAX_CAPACITY: usize = 1 << 25;

/// Longest accepted conntrack timeout, seconds (7 days): longer is a leak, not a timeout.
pub const MAX_TIMEOUT_SECS: u32 = 7 * 24 * 3600;

/// Smallest accepted host MTU: the IPv4 minimum datagram every host must accept (RFC 791).
pub const MTU_MIN: u16 = 576;

/// Largest accepted host MTU: jumbo frames; DPDK mbufs for more need multi-segment support.
pub const MTU_MAX: u16 = 9000;

/// Learned neighbors one lcore can queue for the control thread between two of its polls.
/// Each slot holds one `Neighbor` (26 B) and the queue's stamp (8 B), ~40 B padded:
/// 1024 x 40 B = 40 KiB per lcore. When full the
/// lcore counts and drops the observation; the kernel still sees the ARP/ND frame.
pub const LEARNED_QUEUE_CAPACITY: usize = 1024;

/// Snapshots queued per lcore (`crossbeam::channel::bounded`): a slow lcore holds at most this
/// many old snapshots alive; when full the control plane retries on its next poll.
pub const SNAPSHOT_QUEUE_DEPTH: usize = 4;

/// Concurrent control-socket clients; more are refused (closed) until one leaves.
pub const MAX_CONTROL_CLIENTS: usize = 16;

/// Longest control-socket request line; longer requests are answered with an error and closed.
pub const MAX_CONTROL_REQUEST: usize = 4096;
