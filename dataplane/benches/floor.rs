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
//! Headers are read and written through the project's wire views and checksum functions, as
//! the pipeline does. Every frame must come out forwarded, else the bench stops with the count,
//! and the last burst's frames must be the right IPIP packets (both checksums, the inner TTL
//! one lower, the inner bytes intact).
//!
//! `cargo bench -p dataplane --bench floor [-- --flows 1024 --mix syn --samples 5]` prints
//! `BENCH floor part=all mix=syn flows=1024 median=<ns/packet> ... unit=ns_per_packet`, and the
//! same with `part=refill` for the refill loop alone (which `benches/pipeline.rs` runs too), so
//! the work itself is `all - refill` in both benches.

mod util;

use dataplane::dpdk::CpuPrefetch;
use std::net::Ipv4Addr;

use dataplane::limits::BURST_SIZE;
use dataplane::maglev::{Hash64, SEED_FLOW};
use dataplane::pipeline::{PacketBuf, Prefetch, VecBuf};
use dataplane::wire::{checksum, ipv4, tcp, EtherType, EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket};

/// Packets per timed sample, as in `benches/pipeline.rs`.
const PACKETS_PER_SAMPLE: u64 = 4 << 20;
/// Flow table slots (32 bytes each: 32 MiB, the 1 M flows of the forwarder's config).
const SLOTS: usize = 1 << 20;
/// Slots of the backend table (Maglev's default size).
const LOOKUP: u64 = 65537;
/// The replay's VIP and port (perf/tools/mkpcap.py, perf/tools/forwarder-tunnel.toml).
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const PORT: u16 = 80;
const MTU: usize = 1500;
const OUTER: usize = ipv4::HEADER_LEN;
/// Offsets of the IP and TCP headers in an untagged frame.
const L3: usize = dataplane::wire::ethernet::HEADER_LEN;
const L4: usize = L3 + ipv4::HEADER_LEN;

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

/// The checks, and the flow's two key words, of a frame: `None` for anything the replay's
/// forwarder would not forward.
/// Read through the project's wire views over a fixed-size prefix, as the pipeline's
/// fixed-offset parse reads them (the bounds checks fold away).
#[inline(always)]
fn parse(frame: &[u8]) -> Option<(u64, u32)> {
    let h: &[u8; L4 + tcp::HEADER_LEN] = frame.get(..L4 + tcp::HEADER_LEN)?.try_into().ok()?;
    let ip = Ipv4Packet::new_unchecked(&h[L3..L4]);
    let t = TcpPacket::new_unchecked(&h[L4..]);
    if EthernetFrame::new_unchecked(&h[..L3]).ethertype() != EtherType::IPV4
        || ip.version() != 4
        || ip.header_len() != ipv4::HEADER_LEN
        || ip.next_header() != IpProtocol::TCP
        || ip.dst_addr() != VIP
        || t.dst_port() != PORT
    {
        return None;
    }
    let total = usize::from(ip.total_len());
    if !(ipv4::HEADER_LEN + tcp::HEADER_LEN..=frame.len() - L3).contains(&total) || ip.is_fragment() {
        return None;
    }
    if t.header_len() < tcp::HEADER_LEN || t.header_len() > total - ipv4::HEADER_LEN || !ip.verify_checksum() {
        return None;
    }
    let addrs = u64::from(u32::from(ip.src_addr())) << 32 | u64::from(u32::from(VIP));
    let ports = u32::from(t.src_port()) << 16 | u32::from(PORT);
    Some((addrs, ports))
}

struct Floor {
    table: Vec<Slot>,
    lookup: Vec<u16>,
    /// Per backend: MAC, prepared outer IPv4 header (total length and checksum zero), and the
    /// one's-complement sum of that header.
    backends: [(EthernetAddress, [u8; OUTER], u16); 2],
    mac: EthernetAddress,
    /// Per backend: packets, bytes.
    counters: [[u64; 2]; 2],
}

impl Floor {
    fn new() -> Floor {
        let outer = |dst: [u8; 4]| {
            let mut h = [0u8; OUTER];
            let repr = Ipv4Repr {
                src_addr: Ipv4Addr::new(198, 18, 0, 2),
                dst_addr: dst.into(),
                next_header: IpProtocol::IPV4,
                payload_len: 0,
                ttl: 64,
                tos: 0,
                ident: 0,
                dont_frag: false,
                more_frags: false,
                frag_offset: 0,
            };
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut h[..])).expect("20 bytes hold an IPv4 header");
            let mut p = Ipv4Packet::new_unchecked(&mut h[..]);
            p.set_total_len(0);
            p.set_checksum(0);
            (h, checksum::sum(&h))
        };
        let (h11, s11) = outer([198, 18, 0, 11]);
        let (h12, s12) = outer([198, 18, 0, 12]);
        Floor {
            table: vec![Slot::default(); SLOTS],
            // Half the slots to each backend, spread as Maglev spreads them.
            lookup: (0..LOOKUP).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 63) as u16).collect(),
            backends: [(EthernetAddress([2, 0, 0, 0, 0, 0x11]), h11, s11), (EthernetAddress([2, 0, 0, 0, 0, 0x12]), h12, s12)],
            mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
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
        let Some(inner) = b.data_mut().get_mut(L3..L4) else { return false };
        let mut ip = Ipv4Packet::new_unchecked(inner);
        let total = usize::from(ip.total_len());
        if ip.ttl() <= 1 || total + OUTER > MTU {
            return false;
        }
        ip.decrement_ttl();
        b.truncate(L3 + total);
        if !b.prepend(OUTER) {
            return false;
        }
        let (mac, outer, sum) = &self.backends[usize::from(backend)];
        let len = (OUTER + total) as u16;
        let Some(d) = b.data_mut().get_mut(..L4) else { return false };
        let (l2, l3) = d.split_at_mut(L3);
        let mut eth = EthernetFrame::new_unchecked(l2);
        eth.set_dst_addr(*mac);
        eth.set_src_addr(self.mac);
        eth.set_ethertype(EtherType::IPV4);
        l3.copy_from_slice(outer);
        let mut ip = Ipv4Packet::new_unchecked(l3);
        ip.set_total_len(len);
        ip.set_checksum(!checksum::combine(&[*sum, len]));
        let c = &mut self.counters[usize::from(backend)];
        c[0] += 1;
        c[1] += u64::from(len) + L3 as u64;
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
        let original = &frames[(next + frames.len() - BURST_SIZE + i) % frames.len()];
        let before = Ipv4Packet::new_unchecked(&original[L3..]);
        let (outer, inner) = (Ipv4Packet::new_unchecked(&d[L3..L4]), Ipv4Packet::new_unchecked(&d[L4..]));
        let ok = EthernetFrame::new_unchecked(d).ethertype() == EtherType::IPV4
            && outer.next_header() == IpProtocol::IPV4
            && usize::from(outer.total_len()) == d.len() - L3
            && outer.verify_checksum()
            && inner.verify_checksum()
            && inner.ttl() == before.ttl() - 1
            && d[L4 + ipv4::HEADER_LEN..] == original[L4..L3 + usize::from(before.total_len())];
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
