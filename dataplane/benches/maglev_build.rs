//! Maglev table rebuild time: how long the control thread needs to build a service's lookup
//! table ([`MaglevTable::build`]) for N backends at table size M. This is the delay between a
//! config reload or a health-check change and the new snapshot reaching the lcores (the packet
//! path never waits for it: lcores keep the old snapshot until the new one is published).
//!
//! `cargo bench -p dataplane --bench maglev_build [-- --cases 10:65537,100:65537 --samples 15]`
//! prints one line per case (see `util`): `BENCH maglev_build backends=N size=M median=<ms> ...`.
//! Backends are distinct IPv4 addresses with unit weight (the common case); weights change the
//! number of rounds by at most the max/min weight ratio.

mod util;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use dataplane::maglev::{backend_key, MaglevBackend, MaglevTable};

/// The cases of `perf/run.sh`: 10 / 100 / 1000 backends at the default M = 65537, and 1000
/// backends at M = 655373 (the size `maglev.rs` suggests for ≥ 100 × backends with headroom).
const DEFAULT_CASES: &str = "10:65537,100:65537,1000:65537,1000:655373";

fn main() {
    let samples: usize = util::arg("--samples", "15").parse().unwrap_or(15);
    for case in util::arg("--cases", DEFAULT_CASES).split(',') {
        let Some((n, m)) = case.split_once(':').and_then(|(n, m)| Some((n.parse::<u32>().ok()?, m.parse::<u32>().ok()?))) else {
            eprintln!("--cases {case:?}: write BACKENDS:SIZE pairs, e.g. {DEFAULT_CASES}");
            std::process::exit(2);
        };
        let backends: Vec<MaglevBackend> = (0..n)
            .map(|i| MaglevBackend {
                key: backend_key(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + i))),
                weight: 1,
                index: i as u16,
            })
            .collect();
        if let Err(e) = MaglevTable::build(&backends, m) {
            eprintln!("case {case}: {e}");
            std::process::exit(2);
        }
        let secs = util::time_samples(samples, || {
            black_box(MaglevTable::build(black_box(&backends), m).ok());
        });
        let ms: Vec<f64> = secs.iter().map(|s| s * 1e3).collect();
        util::report("maglev_build", &[("backends", n.to_string()), ("size", m.to_string())], &ms, "ms");
    }
}
