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
