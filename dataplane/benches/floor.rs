//! The floor under `benches/pipeline.rs`: the least work the replay case of `perf/run.sh` needs
//! per packet, written as one straight-line path with everything its config makes constant
//! folded in, so the pipeline's own cost can be read against what any design would spend on
//! this machine (as testpmd io is the floor of the I/O).
//!
//! Same traffic, buffers and refill as `benches/pipeline.rs` (the capture of
//! `perf/tools/mkpcap.py`, bursts of `BURST_SIZE` `VecBuf`s refilled in place). Per packet it
//! does what the forwarder must do for that traffic and nothing it could skip:
//! - the checks of the pipeline's fixed-offset parse: Ethernet type IPv4, version 4 without
//!   options, the total length inside the frame, not a fragment, the header checksum, TCP with
//!   a sane data offset, and the one VIP and port compared as constants (no VIP or service
//!   lookup);
//! - a flow hash of two multiply rounds over the 13-byte IPv4 5-tuple (the project's hash runs
//!   five over its 38-byte IPv4/IPv6 key), computed in a loop of its own with a prefetch;
//! - a 1 M-slot open-addressed flow table of 32-byte entries (the key, the backend, the last
//!   time seen): a hit refreshes the time, a miss takes a slot and a Maglev-style slot of a
//!   65537-entry table;
//! - the TTL check and decrement (RFC 1624 checksum patch), the MTU check, the IPIP
//!   encapsulation from a prepared outer header and checksum sum, the MAC rewrite, and two
//!   counters per backend.
//!
//! It is not a forwarder: no config or reload, no other VIPs, services, families, tags or
//! tunnels, no TCP state or timeouts, no eviction, no ICMP errors, no per-service counters.
//! Every frame must come out forwarded, else the bench stops with the count.
//!
//! `cargo bench -p dataplane --bench floor [-- --flows 1024 --mix syn --samples 5]` prints
//! `BENCH floor part=all mix=syn flows=1024 median=<ns/packet> ... unit=ns_per_packet`, and the
//! same with `part=refill` for the refill loop alone (which `benches/pipeline.rs` runs too), so
//! the work itself is `all - refill` in both benches.

mod util;

use dataplane::dpdk::CpuPrefetch;
use dataplane::limits::BURST_SIZE;
use dataplane::maglev::{Hash64, SEED_FLOW};
use dataplane::pipeline::{PacketBuf, Prefetch, VecBuf};

/// Packets per timed sample, as in `benches/pipeline.rs`.
const PACKETS_PER_SAMPLE: u64 = 4 << 20;
/// Flow table slots (32 bytes each: 32 MiB, the 1 M flows of the forwarder's config).
const SLOTS: usize = 1 << 20;
/// Slots of the backend table (Maglev's default size).
const LOOKUP: u64 = 65537;
/// The replay's VIP and port (perf/tools/mkpcap.py, perf/tools/forwarder-tunnel.toml).
const VIP: [u8; 4] = [198, 18, 100, 1];
const PORT: u16 = 80;
const MTU: usize = 1500;
const OUTER: usize = 20;

/// One tracked flow: the 13-byte 5-tuple (as two words, the protocol folded in), the backend
/// and the tick it was last seen.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Slot {
    addrs: u64,
    ports: u32,
    seen: u32,
    backend: u16,
    used: bool,
}

/// One's-complement fold of a 64-bit sum of 16/32-bit words.
#[inline(always)]
fn fold(mut s: u64) -> u16 {
    s = (s & 0xffff_ffff) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    ((s & 0xffff) + (s >> 16)) as u16
}

/// The checks, and the flow's two key words, of a frame: `None` for anything the replay's
/// forwarder would not forward.
#[inline(always)]
fn parse(frame: &[u8]) -> Option<(u64, u32)> {
    let h: &[u8; 54] = frame.get(..54)?.try_into().ok()?;
    if h[12..14] != [8, 0] || h[14] != 0x45 || h[23] != 6 || h[30..34] != VIP || u16::from_be_bytes([h[36], h[37]]) != PORT {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if !(40..=frame.len() - 14).contains(&total) || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0 {
        return None;
    }
    let doff = usize::from(h[46] >> 4) * 4;
    if doff < 20 || doff > total - 20 {
        return None;
    }
    let sum: u64 = h[14..34].chunks_exact(4).map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))).sum();
    if fold(sum) != 0xffff {
        return None;
    }
    let addrs = u64::from_be_bytes(h[26..34].try_into().ok()?);
    let ports = u32::from_be_bytes(h[34..38].try_into().ok()?);
    Some((addrs, ports))
}

struct Floor {
    table: Vec<Slot>,
    lookup: Vec<u16>,
    /// Per backend: MAC, prepared outer IPv4 header (total length and checksum zero), and the
    /// one's-complement sum of that header.
    backends: [([u8; 6], [u8; OUTER], u64); 2],
    mac: [u8; 6],
    /// Per backend: packets, bytes.
    counters: [[u64; 2]; 2],
}

impl Floor {
    fn new() -> Floor {
        let outer = |dst: [u8; 4]| {
            let mut h = [0u8; OUTER];
            h[0] = 0x45;
            h[8] = 64;
            h[9] = 4; // IPIP
            h[12..16].copy_from_slice(&[198, 18, 0, 2]);
            h[16..20].copy_from_slice(&dst);
            let sum = h.chunks_exact(2).map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum();
            (h, sum)
        };
        let (h11, s11) = outer([198, 18, 0, 11]);
        let (h12, s12) = outer([198, 18, 0, 12]);
        Floor {
            table: vec![Slot::default(); SLOTS],
            // Half the slots to each backend, spread as Maglev spreads them.
            lookup: (0..LOOKUP).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 63) as u16).collect(),
            backends: [([2, 0, 0, 0, 0, 0x11], h11, s11), ([2, 0, 0, 0, 0, 0x12], h12, s12)],
            mac: [2, 0, 0, 0, 0, 1],
            counters: [[0; 2]; 2],
        }
    }

    /// Processes one burst; returns how many frames were not forwarded.
    fn burst(&mut self, bufs: &mut [VecBuf], now: u32) -> usize {
        let mut keys = [None; BURST_SIZE];
        for (b, k) in bufs.iter().zip(&mut keys) {
            *k = parse(b.data());
        }
        let mut hashes = [0u64; BURST_SIZE];
        for (k, h) in keys.iter().zip(&mut hashes) {
            if let Some((addrs, ports)) = *k {
                // Two multiply rounds at run time: the first state is a constant.
                const START: Hash64 = Hash64::start(SEED_FLOW, 13);
                *h = START.word(addrs).word(u64::from(ports) | 6 << 32).finish();
                CpuPrefetch.prefetch(&self.table[*h as usize & (SLOTS - 1)]);
            }
        }
        let mut dropped = 0;
        for ((b, k), &h) in bufs.iter_mut().zip(&keys).zip(&hashes) {
            let Some((addrs, ports)) = *k else {
                dropped += 1;
                continue;
            };
            if !self.forward(b, addrs, ports, h, now) {
                dropped += 1;
            }
        }
        dropped
    }

    #[inline(always)]
    fn forward(&mut self, b: &mut VecBuf, addrs: u64, ports: u32, h: u64, now: u32) -> bool {
        let mut i = h as usize & (SLOTS - 1);
        let backend = loop {
            let s = &mut self.table[i];
            if !s.used {
                let be = self.lookup[(h % LOOKUP) as usize];
                *s = Slot { addrs, ports, seen: now, backend: be, used: true };
                break be;
            }
            if s.addrs == addrs && s.ports == ports {
                s.seen = now;
                break s.backend;
            }
            i = (i + 1) & (SLOTS - 1);
        };
        let (total, ttl) = {
            let d = b.data();
            (usize::from(u16::from_be_bytes([d[16], d[17]])), d[22])
        };
        if ttl <= 1 || total + OUTER > MTU {
            return false;
        }
        b.truncate(14 + total);
        {
            let ip = &mut b.data_mut()[14..34];
            ip[8] = ttl - 1;
            // RFC 1624: HC' = ~(~HC + ~m + m'), the TTL/protocol word down by 0x100.
            let c = u32::from(!u16::from_be_bytes([ip[10], ip[11]])) + 0xfeff;
            ip[10..12].copy_from_slice(&(!fold(u64::from(c))).to_be_bytes());
        }
        if !b.prepend(OUTER) {
            return false;
        }
        let (mac, outer, sum) = &self.backends[usize::from(backend)];
        let len = (OUTER + total) as u16;
        let d: &mut [u8; 14 + OUTER] = match b.data_mut().get_mut(..14 + OUTER).and_then(|d| d.try_into().ok()) {
            Some(d) => d,
            None => return false,
        };
        d[..6].copy_from_slice(mac);
        d[6..12].copy_from_slice(&self.mac);
        d[12..14].copy_from_slice(&[8, 0]);
        d[14..].copy_from_slice(outer);
        d[16..18].copy_from_slice(&len.to_be_bytes());
        d[24..26].copy_from_slice(&(!fold(sum + u64::from(len))).to_be_bytes());
        let c = &mut self.counters[usize::from(backend)];
        c[0] += 1;
        c[1] += u64::from(len) + 14;
        true
    }
}

fn main() {
    let flows: u64 = util::arg("--flows", "1024").parse().expect("--flows N");
    let mix_name = util::arg("--mix", "syn");
    let samples: usize = util::arg("--samples", "5").parse().expect("--samples N");
    let frames = util::capture(flows, &mix_name);
    let mut floor = Floor::new();
    let mut bufs: Vec<VecBuf> = (0..BURST_SIZE).map(|_| VecBuf::new(&frames[0])).collect();
    let mut next = 0usize;
    let mut now = 1u32;
    let mut dropped = 0usize;
    let secs = util::time_samples(samples, || {
        for _ in 0..PACKETS_PER_SAMPLE / BURST_SIZE as u64 {
            for b in bufs.iter_mut() {
                b.reset(&frames[next]);
                next = (next + 1) % frames.len();
            }
            dropped += floor.burst(&mut bufs, now);
            now = now.wrapping_add(1);
        }
    });
    if dropped > 0 {
        eprintln!("error: the floor did not forward {dropped} frames of the capture");
        std::process::exit(1);
    }
    // The work must be the real work: the last burst's frames are valid IPIP packets whose
    // inner packet lost one TTL, both headers' checksums correct.
    for (i, b) in bufs.iter().enumerate() {
        let d = b.data();
        let sum = |h: &[u8]| fold(h.chunks_exact(2).map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum());
        let original = &frames[(next + frames.len() - BURST_SIZE + i) % frames.len()];
        let ok = d[12..14] == [8, 0]
            && d[23] == 4
            && usize::from(u16::from_be_bytes([d[16], d[17]])) == d.len() - 14
            && sum(&d[14..34]) == 0xffff
            && sum(&d[34..54]) == 0xffff
            && d[42] == original[22] - 1
            && d[54..] == original[34..14 + usize::from(u16::from_be_bytes([original[16], original[17]]))];
        assert!(ok, "frame {i} of the last burst is not the right IPIP packet: {d:02x?}");
    }
    let forwarded: u64 = floor.counters.iter().map(|c| c[0]).sum();
    assert_eq!(forwarded, PACKETS_PER_SAMPLE * (samples.max(1) as u64 + 1), "every frame counted once");
    let per_packet = |secs: Vec<f64>| -> Vec<f64> { secs.iter().map(|s| s * 1e9 / PACKETS_PER_SAMPLE as f64).collect() };
    // The refill alone, the same loop without the processing: what both benches spend besides
    // the work they measure.
    let refill = util::time_samples(samples, || {
        for _ in 0..PACKETS_PER_SAMPLE / BURST_SIZE as u64 {
            for b in bufs.iter_mut() {
                b.reset(&frames[next]);
                next = (next + 1) % frames.len();
            }
            std::hint::black_box(&mut bufs);
        }
    });
    util::report("floor", &[("part", "all".into()), ("mix", mix_name.clone()), ("flows", flows.to_string())], &per_packet(secs), "ns_per_packet");
    util::report("floor", &[("part", "refill".into()), ("mix", mix_name), ("flows", flows.to_string())], &per_packet(refill), "ns_per_packet");
}
