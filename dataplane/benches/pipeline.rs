//! The pipeline's own cost per packet, without DPDK: what the forwarding lcore spends between
//! `rx_burst` and `tx_burst` on a replayed capture (the `pcap` case of `perf/run.sh` measures the
//! same traffic through the real EAL, so the difference between the two is the I/O's share).
//!
//! Traffic: `perf/tools/mkpcap.py` (the one generator of crafted frames) writes the capture,
//! `--flows` TCP flows towards VIP 198.18.100.1:80, all SYN (`--mix syn`) or all established data
//! (`--mix data`). The config is the one `perf/tools/dataplane_rate.sh` runs
//! (`perf/tools/forwarder-tunnel.toml`): tunnel mode (IPIP), two backends with static MACs, a
//! 1 M-entry connection table, on huge pages as the runtime allocates it. Frames are replayed in
//! bursts of `BURST_SIZE` through [`Pipeline::process_burst_with`] with the CPU's prefetch, each
//! buffer refilled from the capture before its burst as a NIC refills mbufs (a 64-byte copy,
//! which the DPDK pcap PMD makes too). Every verdict must be `Forward`: a bench that measured
//! drops would measure the wrong path, so it stops with the verdict counts instead.
//!
//! `cargo bench -p dataplane --bench pipeline [-- --flows 1024 --mix syn --samples 5]` prints
//! `BENCH pipeline mix=syn flows=1024 median=<ns/packet> ... unit=ns_per_packet` and the same as
//! `unit=Mpps`.

mod util;

use std::collections::BTreeMap;
use std::sync::Arc;

use dataplane::config::Config;
use dataplane::conntrack::ConnTable;
use dataplane::dpdk::{advise_hugepages, CpuPrefetch};
use dataplane::limits::BURST_SIZE;
use dataplane::pipeline::{ArrayQueue, NeighborTable, Pipeline, PortId, PortInfo, Snapshot, VecBuf, Verdict};
use dataplane::stats::LcoreCounters;
use dataplane::wire::EthernetAddress;

/// Packets per timed sample (a few hundred milliseconds at the expected rates).
const PACKETS_PER_SAMPLE: u64 = 4 << 20;

/// The forwarder config of `perf/tools/dataplane_rate.sh`, the same file (port devargs and
/// control socket are unused: no EAL here).
const CONFIG: &str = include_str!("../../perf/tools/forwarder-tunnel.toml");

fn main() {
    let flows: u64 = util::arg("--flows", "1024").parse().expect("--flows N");
    let mix = util::arg("--mix", "syn");
    let samples: usize = util::arg("--samples", "5").parse().expect("--samples N");
    let frames = util::capture(flows, &mix);

    let config = Config::parse(&CONFIG.replace("@DEVARGS@", "net_null0").replace("@SOCKET@", "/nonexistent/bench.sock")).expect("bench config is valid");
    // The DPDK pcap port's MAC is the capture's destination (mkpcap.py's default).
    let ports = vec![PortInfo {
        id: PortId(0),
        name: "nic0".into(),
        role: config.ports[0].role,
        mac: EthernetAddress([2, 0, 0, 0, 0, 1]),
        kernel: None,
    }];
    let snap = Arc::new(Snapshot::build(&config, &ports, &NeighborTable::new()).expect("bench snapshot builds"));
    let counters = Arc::new(LcoreCounters::new());
    // The table as the runtime builds it: on transparent huge pages when the kernel grants them.
    let table = ConnTable::with_advice(config.conntrack.capacity, snap.timeouts, |r| {
        advise_hugepages(r);
    });
    let mut p = Pipeline::with_conntrack(snap, counters, Arc::new(ArrayQueue::new(64)), table);

    let mut bufs: Vec<VecBuf> = (0..BURST_SIZE).map(|_| VecBuf::new(&frames[0])).collect();
    let mut verdicts = [Verdict::ToKernel; BURST_SIZE];
    let mut next = 0usize;
    let mut now_ns = 1_000_000_000_000u64;
    let mut outcome: BTreeMap<String, u64> = BTreeMap::new();
    let mut run = |count: &mut BTreeMap<String, u64>| {
        for _ in 0..PACKETS_PER_SAMPLE / BURST_SIZE as u64 {
            for b in bufs.iter_mut() {
                b.reset(&frames[next]);
                next = (next + 1) % frames.len();
            }
            p.process_burst_with(&mut bufs, PortId(0), now_ns, &mut verdicts, &CpuPrefetch);
            // Forward(port 0) is the only expected verdict; count anything else by name.
            if verdicts.iter().any(|v| *v != Verdict::Forward(PortId(0))) {
                for v in &verdicts {
                    *count.entry(format!("{v:?}")).or_default() += 1;
                }
            }
            now_ns += 1_000; // 1 µs per burst: no flow idles out during a run
        }
    };
    let secs = util::time_samples(samples, || run(&mut outcome));
    if !outcome.is_empty() {
        eprintln!("error: the pipeline did not forward every frame of the capture: {outcome:?}");
        std::process::exit(1);
    }
    let per_packet: Vec<f64> = secs.iter().map(|s| s * 1e9 / PACKETS_PER_SAMPLE as f64).collect();
    let mut mpps: Vec<f64> = secs.iter().map(|s| PACKETS_PER_SAMPLE as f64 / s / 1e6).collect();
    mpps.sort_by(f64::total_cmp);
    let labels = [("mix", mix.clone()), ("flows", flows.to_string())];
    util::report("pipeline", &labels, &per_packet, "ns_per_packet");
    util::report("pipeline", &labels, &mpps, "Mpps");
}
