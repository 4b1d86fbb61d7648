//! New flows per second the connection table sustains on one core with the table at capacity,
//! and the table's memory per tracked flow.
//!
//! What one new flow costs the pipeline's table: hash the 5-tuple ([`FlowKey::hash`]), look it up
//! (a miss), insert it. The table is first filled to capacity with SYN-state flows, so every
//! insert of the timed phase lands in a full bucket and takes the production eviction path
//! (replace the oldest live SYN entry; `Established`/`Udp` entries are never evicted). The bench
//! clock advances 1 us per flow, so a bucket (1 M slots = 131072 buckets) takes a new flow every
//! ~131 ms and an entry is evicted after ~1 s, long before the 5 s SYN timeout: no slot is ever
//! free by expiry. This is the worst case the flood-resistance rule allows, an all-SYN flood
//! against a full table; the result line carries the share of inserts that evicted
//! (`evicted_pct`, 100 when the premise holds). The table is allocated as the runtime allocates
//! it (transparent huge pages) and flows come in bursts of `BURST_SIZE` whose bucket lines are
//! prefetched first, as the pipeline's pass 1 does; what it leaves out is the packet parsing (the
//! `pipeline` bench measures the whole path).
//!
//! `cargo bench -p dataplane --bench conntrack [-- --capacity 1048576 --samples 5]` prints:
//! `BENCH conntrack case=new_flows_at_capacity capacity=C median=<Mflows/s> ...` and
//! `BENCH conntrack case=bytes_per_flow capacity=C median=<bytes> ...` (table memory / capacity,
//! the number the ≤ 64 B per flow target is about).

mod util;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use dataplane::conntrack::{ConnTable, FlowKey, Insert, State, Timeouts};
use dataplane::dpdk::{advise_hugepages, CpuPrefetch};
use dataplane::limits::BURST_SIZE;

/// Any monotonic start time (1000 s): the bench's own clock, as the pipeline passes `now` in.
const T0_NS: u64 = 1_000_000_000_000;

/// Flow `i` of the bench: distinct client address/port pairs towards one VIP:80 (the shape of a
/// SYN flood against one service).
fn key(i: u64) -> FlowKey {
    let addr = Ipv4Addr::from(0x0a00_0000u32.wrapping_add((i >> 16) as u32));
    FlowKey::new(IpAddr::V4(addr), IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)), (i & 0xffff) as u16, 80, 6)
}

/// One new flow, as the pipeline handles it: hash, lookup miss, insert. Returns whether a SYN
/// entry was evicted for it.
#[inline]
fn new_flow(t: &mut ConnTable, i: u64, h: u64, now_ns: u64) -> Insert {
    let k = key(i);
    if t.lookup(&k, h, now_ns).is_some() {
        return Insert::Inserted; // cannot happen: every key of the timed phase is new
    }
    t.insert(&k, h, State::Syn, [0; 16], (i % 64) as u16, now_ns)
}

fn main() {
    let capacity: usize = util::arg("--capacity", "1048576").parse().unwrap_or(1 << 20);
    let samples: usize = util::arg("--samples", "5").parse().unwrap_or(5);
    // The table as the runtime builds it: on transparent huge pages when the kernel grants them.
    let mut t = ConnTable::with_advice(capacity, Timeouts::default(), |r| {
        advise_hugepages(r);
    });
    let cap = t.capacity() as u64;
    // Fill: 2 x capacity inserts leave every bucket full (the first pass leaves some buckets
    // short by the luck of the hash; the second overflows into evictions).
    let mut next = 0u64;
    for _ in 0..2 * cap {
        new_flow(&mut t, next, key(next).hash(), T0_NS);
        next += 1;
    }
    let fill = t.len() as f64 / cap as f64;
    // Timed: `cap` new flows per sample, time advancing 1 us per flow.
    let per_sample = cap;
    let mut evicted = 0u64;
    let mut now = T0_NS;
    let secs = util::time_samples(samples, || {
        // In bursts, as the pipeline runs: hash a burst's flows and prefetch their bucket lines,
        // then look up and insert each one.
        let mut hashes = [0u64; BURST_SIZE];
        for _ in 0..per_sample / BURST_SIZE as u64 {
            for (j, h) in hashes.iter_mut().enumerate() {
                *h = key(next + j as u64).hash();
                t.prefetch_bucket(*h, &CpuPrefetch);
            }
            for h in hashes {
                now += 1_000;
                if black_box(new_flow(&mut t, next, h, now)) == Insert::EvictedSyn {
                    evicted += 1;
                }
                next += 1;
            }
        }
    });
    let mflows: Vec<f64> = secs.iter().rev().map(|s| per_sample as f64 / s / 1e6).collect();
    // Warm-up sample included: time_samples runs the closure samples + 1 times.
    let evicted_pct = 100.0 * evicted as f64 / (per_sample as f64 * (samples + 1) as f64);
    let labels = [
        ("case", "new_flows_at_capacity".to_owned()),
        ("capacity", cap.to_string()),
        ("filled_pct", format!("{:.1}", fill * 100.0)),
        ("evicted_pct", format!("{evicted_pct:.1}")),
    ];
    util::report("conntrack", &labels, &mflows, "Mflows/s");
    let bytes = t.memory_bytes() as f64 / cap as f64;
    util::report("conntrack", &[("case", "bytes_per_flow".to_owned()), ("capacity", cap.to_string())], &[bytes], "B");
}
