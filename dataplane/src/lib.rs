//! `dataplane`: a DPDK userspace L4 load balancer.
//!
//! Layers (see `docs/ARCHITECTURE.md`):
//! - [`wire`]: zero-copy views over packet bytes (smoltcp style), checksum helpers;
//! - [`maglev`], [`conntrack`]: consistent hashing and the per-lcore connection table;
//! - [`pipeline`]: pure Rust, run-to-completion packet processing: bytes and `now` in, a
//!   [`pipeline::Verdict`] out. No I/O, no allocation, no locks;
//! - [`config`], [`control`], [`stats`]: the control plane (TOML config, validation, snapshots,
//!   reload, control socket, counters);
//! - `dpdk` (feature `dpdk`): the only module with `unsafe`, safe wrappers over `dpdk-sys`;
//! - `runtime` (feature `dpdk`): lcore loops that move mbufs between ports and the pipeline.
#![deny(unsafe_code)]

pub mod config;
pub mod conntrack;
pub mod control;
pub mod limits;
pub mod maglev;
pub mod pcap;
pub mod pipeline;
pub mod pktgen;
pub mod stats;
pub mod wire;

#[cfg(feature = "dpdk")]
#[allow(unsafe_code)]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod runtime;
