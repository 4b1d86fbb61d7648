//! Counters: per lcore, single writer, cache-line padded, summed by the control plane.
//!
//! Contract: each [`LcoreCounters`] is written by exactly one lcore and read by the control
//! thread. A [`Counter`] is an `AtomicU64` that its one writer bumps with a relaxed load and a
//! relaxed store (a plain `mov` on x86, no `lock` prefix, no contended cache line), so the packet
//! path has no shared read-modify-write; readers may see a value a few packets old, never a torn
//! one.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::limits::{MAX_BACKENDS, MAX_PORTS, MAX_SERVICES};
use crate::pipeline::DropReason;

/// A single-writer counter. See the module docs for why this is not `fetch_add`.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Must only be called by the counter's single writer.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one. Must only be called by the counter's single writer.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Current value (any thread).
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Per-port counters seen by one lcore (its RX/TX queue of that port).
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Frames the NIC did not take (also counted as `DropReason::TxFull`).
    pub tx_dropped: Counter,
}

/// Per-service counters (index = service index in the snapshot).
#[derive(Debug, Default)]
pub struct ServiceCounters {
    pub packets: Counter,
    pub bytes: Counter,
    /// New connection-table entries (TCP SYN or first UDP packet).
    pub new_flows: Counter,
    /// Packets forwarded without a table entry by the Maglev choice (e.g. after an LB restart).
    pub untracked: Counter,
}

/// Per-backend counters (index = backend index in the snapshot).
#[derive(Debug, Default)]
pub struct BackendCounters {
    pub packets: Counter,
    pub bytes: Counter,
}

/// Everything one lcore counts. Aligned to a cache line so two lcores never share one.
#[derive(Debug)]
#[repr(align(64))]
pub struct LcoreCounters {
    pub ports: [PortCounters; MAX_PORTS],
    pub drops: [Counter; DropReason::ALL.len()],
    /// Verdict counts: forwarded to a backend, replies sent, frames to the kernel, frames from
    /// the kernel sent out.
    pub forwarded: Counter,
    pub replied: Counter,
    pub to_kernel: Counter,
    pub from_kernel: Counter,
    /// ICMP errors routed to the backend that owns the quoted flow.
    pub icmp_to_backend: Counter,
    /// ICMP frag-needed / packet-too-big generated because encapsulation would exceed the MTU.
    pub pmtu_generated: Counter,
    pub conntrack_hits: Counter,
    pub conntrack_misses: Counter,
    pub conntrack_inserts: Counter,
    pub conntrack_evictions: Counter,
    pub conntrack_expired: Counter,
    /// Current number of live entries (a gauge, stored not added).
    pub conntrack_entries: Counter,
    pub snapshot_switches: Counter,
    pub services: Box<[ServiceCounters]>,
    pub backends: Box<[BackendCounters]>,
}

impl LcoreCounters {
    /// All counters at zero, with room for [`MAX_SERVICES`] services and [`MAX_BACKENDS`] backends.
    pub fn new() -> Self {
        LcoreCounters {
            ports: Default::default(),
            drops: Default::default(),
            forwarded: Counter::default(),
            replied: Counter::default(),
            to_kernel: Counter::default(),
            from_kernel: Counter::default(),
            icmp_to_backend: Counter::default(),
            pmtu_generated: Counter::default(),
            conntrack_hits: Counter::default(),
            conntrack_misses: Counter::default(),
            conntrack_inserts: Counter::default(),
            conntrack_evictions: Counter::default(),
            conntrack_expired: Counter::default(),
            conntrack_entries: Counter::default(),
            snapshot_switches: Counter::default(),
            services: (0..MAX_SERVICES).map(|_| ServiceCounters::default()).collect(),
            backends: (0..MAX_BACKENDS).map(|_| BackendCounters::default()).collect(),
        }
    }

    /// Counts one dropped frame.
    #[inline]
    pub fn drop(&self, reason: DropReason) {
        self.drops[reason as usize].inc();
    }

    /// Sets a gauge: single writer only.
    #[inline]
    pub fn set(counter: &Counter, v: u64) {
        counter.0.store(v, Ordering::Relaxed);
    }
}

impl Default for LcoreCounters {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drop counters are indexed by the reason's discriminant, in `DropReason::ALL` order.
    #[test]
    fn drop_counters_follow_reason_order() {
        let c = LcoreCounters::new();
        c.drop(DropReason::NoBackend);
        c.drop(DropReason::NoBackend);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            let want = if *r == DropReason::NoBackend { 2 } else { 0 };
            assert_eq!(c.drops[i].get(), want, "{}", r.as_str());
        }
    }
}
