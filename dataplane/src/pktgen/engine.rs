//! The generator's DPDK loop: one port, one RX and one TX queue, run on the main lcore (the thread
//! that called EAL init, pinned to the first core of `-l`).
//!
//! Each iteration: allocate up to a burst of mbufs (`rte_pktmbuf_alloc_bulk`), fill them from the
//! templates (flow index round-robin, sequence + TSC stamp), `tx_burst` them (what the port does
//! not take stays queued for the next iteration: back-pressure, never silently dropped), then
//! `rx_burst` and check what came back. The rate limit is a TSC schedule ([`Pacer`]): at `rate`
//! pps, by tick `t` at most `t * rate / hz` packets may have been sent; when the generator falls
//! more than [`MAX_CATCH_UP`] packets behind it (descheduled by the OS), the missed packets are
//! skipped and counted, never sent as a catch-up burst. Once a second a stats line goes to
//! stderr.
//! After the last packet the loop keeps receiving for `drain` (or until every packet is
//! accounted for) so that in-flight frames are counted, then returns the [`Report`].
//!
//! Passes: flows are sent round-robin, so the first `flows` packets are the first pass (every
//! flow new to a freshly started forwarder: its connection table is cold) and later packets
//! revisit flows it already tracks (warm). Returns are attributed to a pass by the stamp's
//! sequence number, and the report gives the returned rate of each ([`Report::first_pass_mpps`],
//! [`Report::later_passes_mpps`]). Returned frames that are plain stamped copies (an anchor such
//! as testpmd, see [`super::plain_stamp`]) are timed into a separate latency record.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{plain_stamp, CheckError, Checker, FlowSpace, Histogram, Outcome, PktgenError, Stamp, Templates};
use crate::dpdk::{tsc_cycles, tsc_hz, Clock, DpdkError, Eal, Mbuf, MbufBatch, Mempool, Port, PortConfig};
use crate::pipeline::PacketBuf;

/// Mbufs in the generator's pool: 2^14 - 1, about 36 MB of hugepages with the default data room;
/// enough for both rings (2 × [`DESCRIPTORS`]) plus bursts in flight.
const POOL_MBUFS: u32 = 16_383;
/// Per-lcore mempool cache.
const POOL_CACHE: u32 = 256;
/// RX and TX ring size.
const DESCRIPTORS: u16 = 1024;
/// Ethernet per-frame overhead on the wire not in the mbuf: preamble + SFD (8), FCS (4), inter
/// frame gap (12). Gbps figures are L1 (what a line rate is quoted in).
const WIRE_OVERHEAD: u64 = 24;

/// Everything `dataplane pktgen` needs.
#[derive(Clone, Debug)]
pub struct Options {
    /// EAL arguments (without the program name and the port's `--vdev`/`-a`).
    pub eal: Vec<String>,
    /// The port: a vdev devargs string (`net_memif0,role=server,...`) or a PCI address.
    pub dev: String,
    /// The flows.
    pub space: FlowSpace,
    /// Frame size, FCS included.
    pub size: u16,
    /// Backends the forwarder may tunnel to.
    pub backends: Vec<Ipv4Addr>,
    /// Target rate in packets per second; 0: as fast as the port takes them.
    pub rate_pps: u64,
    /// Stop sending after this long (None: until `count` or a signal).
    pub duration: Option<Duration>,
    /// Stop sending after this many packets (None: until `duration` or a signal).
    pub count: Option<u64>,
    /// Destination MAC of generated frames (the forwarder's NIC).
    pub dst_mac: [u8; 6],
    /// How long to wait for the link (a memif peer) before giving up.
    pub link_timeout: Duration,
    /// How long to keep receiving after the last packet was sent.
    pub drain: Duration,
    /// Print live stats lines to stderr.
    pub live: bool,
}

/// Why a run could not happen (check failures are not errors: they are in the [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A DPDK call failed.
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// Bad generator parameters.
    #[error(transparent)]
    Params(#[from] PktgenError),
    /// The link never came up.
    #[error("port {port}: link still down after {secs} s; start the peer (the forwarder's memif client) or check the cable, or raise --link-timeout")]
    LinkDown {
        /// Port device name.
        port: String,
        /// Seconds waited.
        secs: u64,
    },
}

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Latency {
    /// Samples (correct returned packets).
    pub samples: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
}

impl Latency {
    fn of(h: &Histogram) -> Latency {
        Latency { samples: h.count(), p50_ns: h.quantile(0.5), p99_ns: h.quantile(0.99), p999_ns: h.quantile(0.999) }
    }
}

/// Most packets a rate-limited generator sends at once to catch up with its schedule: one burst.
/// When it was off the CPU longer than that, a catch-up at the port's full speed would offer the
/// forwarder several times the configured rate for a while (at 2.7 Mpps, a 1 ms stall owes
/// 2700 packets), and the latency of that flood would be charged to the forwarder: a rate test
/// measured with headroom, as the "half the maximum rate" latency case is, would be testing the
/// maximum rate instead. A hardware generator keeps its inter-frame gap; so does this one.
pub const MAX_CATCH_UP: u64 = 32;

/// The send schedule of a run (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    /// Packets per second; 0: no limit.
    rate: u64,
    hz: u64,
    start: u64,
    /// Scheduled packets skipped because the generator was behind by more than [`MAX_CATCH_UP`].
    skipped: u64,
}

impl Pacer {
    /// A schedule of `rate` packets per second (0: unlimited) from TSC tick `start` at `hz`.
    pub fn new(rate: u64, hz: u64, start: u64) -> Pacer {
        Pacer { rate, hz: hz.max(1), start, skipped: 0 }
    }

    /// How many packets may be produced at tick `now` when `produced` were so far; skips what is
    /// owed beyond [`MAX_CATCH_UP`].
    pub fn budget(&mut self, now: u64, produced: u64) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        let due = (u128::from(now.saturating_sub(self.start)) * u128::from(self.rate) / u128::from(self.hz)) as u64;
        let owed = due.saturating_sub(self.skipped).saturating_sub(produced);
        if owed > MAX_CATCH_UP {
            self.skipped += owed - MAX_CATCH_UP;
            return MAX_CATCH_UP;
        }
        owed
    }

    /// Scheduled packets skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// The result of a run (printed as JSON with `--json`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Seconds from the first packet sent to the last one.
    pub send_seconds: f64,
    /// Flows in the run.
    pub flows: u32,
    /// Distinct flows that came back.
    pub flows_seen: usize,
    /// Packets the port took.
    pub tx_packets: u64,
    /// Bytes the port took (FCS excluded).
    pub tx_bytes: u64,
    /// Returned packets that were ours and correct.
    pub rx_packets: u64,
    /// Bytes of those.
    pub rx_bytes: u64,
    /// Returned frames that were not ours (ARP, other traffic).
    pub rx_foreign: u64,
    /// Sent packets that never came back (dropped by the forwarder or lost).
    pub missing: u64,
    /// Send rate over the run, Mpps.
    pub tx_mpps: f64,
    /// Correct-return rate over the run, Mpps.
    pub rx_mpps: f64,
    /// L1 send rate, Gbit/s.
    pub tx_gbps: f64,
    /// L1 receive rate, Gbit/s.
    pub rx_gbps: f64,
    /// Failed checks, all reasons.
    pub check_failures: u64,
    /// Tunnelled to an address that is not an expected backend.
    pub wrong_backend: u64,
    /// Inner packet differs (bytes, TTL or checksum).
    pub corrupted: u64,
    /// Flow reached a different backend than before.
    pub flow_moved: u64,
    /// The first failure, in words.
    pub first_failure: Option<String>,
    /// Times the mempool could not supply a burst.
    pub alloc_failures: u64,
    /// Packets a rate-limited run skipped because the generator fell more than
    /// [`MAX_CATCH_UP`] behind its schedule (descheduled, or a rate above what it can send):
    /// `tx_packets + behind_schedule` is what the schedule asked for.
    pub behind_schedule: u64,
    /// Latency of correct returned packets (send TSC to receive TSC).
    pub latency: Latency,
    /// Returned frames that were plain (not tunnelled) stamped copies of ours, as an anchor
    /// forwarder (testpmd io/5tswap) returns them: counted in `rx_foreign` too, never checked.
    pub rx_unchecked: u64,
    /// Latency of those frames (the anchor's added latency).
    pub latency_unchecked: Latency,
    /// Seconds the first pass over the flows took to send (0 if it did not complete).
    pub first_pass_seconds: f64,
    /// Rate of correct returns of first-pass packets over the first pass's send time, Mpps (0 if
    /// the pass did not complete).
    pub first_pass_mpps: f64,
    /// Rate of correct returns of later packets over the rest of the send time, Mpps (0 if
    /// there were none).
    pub later_passes_mpps: f64,
}

#[derive(Default)]
struct Counters {
    tx: u64,
    tx_bytes: u64,
    rx: u64,
    rx_bytes: u64,
    foreign: u64,
    wrong_backend: u64,
    corrupted: u64,
    flow_moved: u64,
    alloc_failures: u64,
    unchecked: u64,
    /// Correct returns of first-pass packets (sequence < flows).
    rx_first_pass: u64,
}

impl Counters {
    fn failures(&self) -> u64 {
        self.wrong_backend + self.corrupted + self.flow_moved
    }
}

/// Runs the generator until the duration or count is reached or `stop` is set.
pub fn run(opts: &Options, stop: &AtomicBool) -> Result<Report, EngineError> {
    let is_pci = !opts.dev.starts_with("net_");
    let mut args = opts.eal.clone();
    args.push(if is_pci { format!("-a{}", opts.dev) } else { format!("--vdev={}", opts.dev) });
    let eal = Eal::init(&args)?;
    let pool = Mempool::new(&eal, "pktgen", POOL_MBUFS, POOL_CACHE, Mempool::DEFAULT_DATA_ROOM, eal.socket_id())?;
    let name = crate::runtime::device_name(&opts.dev, is_pci);
    let port = Port::by_name(&eal, &name)?;
    let conf = PortConfig { rx_queues: 1, tx_queues: 1, rx_descriptors: DESCRIPTORS, tx_descriptors: DESCRIPTORS };
    let (mut rxqs, mut txqs) = port.configure(&conf, &pool)?;
    let (rxq, txq) = (rxqs.remove(0), txqs.remove(0));
    port.start()?;
    if let Err(e) = port.promiscuous_enable() {
        // memif and some vdevs have no promiscuous mode; frames to our MAC still arrive.
        tracing::debug!(error = %e, "promiscuous mode not available");
    }
    let src_mac = port.mac_address()?;
    let t0 = Instant::now();
    while !port.link()?.up {
        if t0.elapsed() > opts.link_timeout {
            return Err(EngineError::LinkDown { port: name, secs: opts.link_timeout.as_secs() });
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(Report::default());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let templates = Templates::new(opts.size, src_mac, opts.dst_mac, &opts.space)?;
    let mut checker = Checker::new(opts.space.clone(), templates.clone(), opts.backends.clone())?;
    let space = &opts.space;

    let hz = tsc_hz().max(1);
    let start = tsc_cycles();
    let mut pacer = Pacer::new(opts.rate_pps, hz, start);
    let end_tsc = opts.duration.map(|d| start + (d.as_secs_f64() * hz as f64) as u64);
    let limit = opts.count.unwrap_or(u64::MAX);
    let drain_ticks = (opts.drain.as_secs_f64() * hz as f64) as u64;
    let mut c = Counters::default();
    let (mut total, mut second) = (Histogram::default(), Histogram::default());
    let mut unchecked = Histogram::default();
    let mut first_pass_end: Option<u64> = None;
    let mut first_failure: Option<CheckError> = None;
    let mut flow = 0u32;
    let mut seq = 0u32;
    let mut queued = 0u64; // filled but not yet taken by the port
    let mut txb: MbufBatch<'_> = MbufBatch::new();
    let mut fresh: MbufBatch<'_> = MbufBatch::new();
    let mut rxb: MbufBatch<'_> = MbufBatch::new();
    let mut next_tick = start + hz;
    // Latency of every returned frame: a multiply-shift (a `u128` division per frame was 2.5 %
    // of the generator's samples).
    let clock = Clock::with_hz(start, hz);
    let mut last = (0u64, 0u64, 0u64, 0u64);
    let mut send_end: Option<u64> = None;
    loop {
        let now = tsc_cycles();
        if send_end.is_none() {
            let done = stop.load(Ordering::Relaxed) || end_tsc.is_some_and(|e| now >= e) || c.tx >= limit;
            if done {
                send_end = Some(now);
                txb.free_all();
            }
        }
        if send_end.is_none() {
            let produced = c.tx + queued;
            let budget = pacer.budget(now, produced);
            let n = (txb.room() as u64).min(budget).min(limit - produced) as usize;
            if n > 0 {
                if pool.alloc_bulk(&mut fresh, n) {
                    for mut m in fresh.drain() {
                        fill(&templates, space, flow, Stamp { seq, tsc: now }, &mut m);
                        let _ = txb.push(m);
                        flow = if flow + 1 == space.flows { 0 } else { flow + 1 };
                        seq = seq.wrapping_add(1);
                    }
                    queued += n as u64;
                } else {
                    c.alloc_failures += 1;
                }
            }
            if !txb.is_empty() {
                let bytes_before = txb.total_len();
                let sent = txq.tx_burst(&mut txb);
                c.tx += sent as u64;
                c.tx_bytes += (bytes_before - txb.total_len()) as u64;
                queued -= sent as u64;
                if first_pass_end.is_none() && c.tx >= u64::from(space.flows) {
                    first_pass_end = Some(tsc_cycles());
                }
            }
        }
        if rxq.rx_burst(&mut rxb) > 0 {
            let rx_now = tsc_cycles();
            for m in rxb.drain() {
                match checker.check(m.data()) {
                    Outcome::Ok { stamp, .. } => {
                        c.rx += 1;
                        c.rx_bytes += m.data().len() as u64;
                        if stamp.seq < space.flows {
                            c.rx_first_pass += 1;
                        }
                        second.record(clock.ns_between(stamp.tsc, rx_now));
                    }
                    Outcome::Foreign => {
                        c.foreign += 1;
                        if let Some(stamp) = plain_stamp(m.data()) {
                            c.unchecked += 1;
                            unchecked.record(clock.ns_between(stamp.tsc, rx_now));
                        }
                    }
                    Outcome::Failed(e) => {
                        match e {
                            CheckError::WrongBackend { .. } => c.wrong_backend += 1,
                            CheckError::FlowMoved { .. } => c.flow_moved += 1,
                            CheckError::Corrupted { .. } | CheckError::Ttl { .. } | CheckError::Checksum { .. } => c.corrupted += 1,
                        }
                        first_failure.get_or_insert(e);
                    }
                }
            }
        }
        let now = tsc_cycles();
        if now >= next_tick {
            let secs = (now - start) as f64 / hz as f64;
            if opts.live {
                let mut line = String::with_capacity(200);
                let d = (c.tx - last.0, c.tx_bytes - last.1, c.rx - last.2, c.rx_bytes - last.3);
                let period = 1.0 + (now - next_tick) as f64 / hz as f64;
                let lat = Latency::of(&second);
                let _ = write!(
                    line,
                    "[{secs:6.1}s] tx {:7.3} Mpps {:6.2} Gbps | rx {:7.3} Mpps {:6.2} Gbps | missing {} | failures {} | lat p50 {:.1}us p99 {:.1}us p999 {:.1}us",
                    d.0 as f64 / period / 1e6,
                    (d.1 + d.0 * WIRE_OVERHEAD) as f64 * 8.0 / period / 1e9,
                    d.2 as f64 / period / 1e6,
                    (d.3 + d.2 * WIRE_OVERHEAD) as f64 * 8.0 / period / 1e9,
                    c.tx.saturating_sub(c.rx + c.failures()),
                    c.failures(),
                    lat.p50_ns as f64 / 1e3,
                    lat.p99_ns as f64 / 1e3,
                    lat.p999_ns as f64 / 1e3,
                );
                if let Some(p) = progress(opts, secs, c.tx) {
                    let filled = (p * 20.0) as usize;
                    let _ = write!(line, " | {:3.0}% [{}{}]", p * 100.0, "#".repeat(filled), ".".repeat(20 - filled));
                }
                eprintln!("{line}");
            }
            last = (c.tx, c.tx_bytes, c.rx, c.rx_bytes);
            total.merge(&second);
            second = Histogram::default();
            next_tick += hz * (1 + (now - next_tick) / hz);
        }
        if let Some(e) = send_end {
            let accounted = c.rx + c.failures() >= c.tx;
            if accounted || now - e >= drain_ticks || (stop.load(Ordering::Relaxed) && now - e >= drain_ticks / 4) {
                break;
            }
        }
    }
    total.merge(&second);
    let send_seconds = (send_end.unwrap_or(start) - start) as f64 / hz as f64;
    let per_s = |v: u64| if send_seconds > 0.0 { v as f64 / send_seconds } else { 0.0 };
    let first_pass_seconds = first_pass_end.map_or(0.0, |e| (e - start) as f64 / hz as f64);
    let later_seconds = send_seconds - first_pass_seconds;
    let mpps = |n: u64, secs: f64| if secs > 0.0 { n as f64 / secs / 1e6 } else { 0.0 };
    drop(rxb);
    drop(txb);
    drop(fresh);
    Ok(Report {
        send_seconds,
        flows: space.flows,
        flows_seen: checker.flows_seen(),
        tx_packets: c.tx,
        tx_bytes: c.tx_bytes,
        rx_packets: c.rx,
        rx_bytes: c.rx_bytes,
        rx_foreign: c.foreign,
        missing: c.tx.saturating_sub(c.rx + c.failures()),
        tx_mpps: per_s(c.tx) / 1e6,
        rx_mpps: per_s(c.rx) / 1e6,
        tx_gbps: per_s(c.tx_bytes + c.tx * WIRE_OVERHEAD) * 8.0 / 1e9,
        rx_gbps: per_s(c.rx_bytes + c.rx * WIRE_OVERHEAD) * 8.0 / 1e9,
        check_failures: c.failures(),
        wrong_backend: c.wrong_backend,
        corrupted: c.corrupted,
        flow_moved: c.flow_moved,
        first_failure: first_failure.map(|e| e.to_string()),
        alloc_failures: c.alloc_failures,
        behind_schedule: pacer.skipped(),
        latency: Latency::of(&total),
        rx_unchecked: c.unchecked,
        latency_unchecked: Latency::of(&unchecked),
        first_pass_seconds,
        first_pass_mpps: mpps(c.rx_first_pass, first_pass_seconds),
        later_passes_mpps: if first_pass_end.is_some() { mpps(c.rx - c.rx_first_pass, later_seconds) } else { 0.0 },
    })
}

/// Fraction of the run done, when the run has a known end.
fn progress(opts: &Options, secs: f64, tx: u64) -> Option<f64> {
    let by_time = opts.duration.map(|d| secs / d.as_secs_f64().max(1e-9));
    let by_count = opts.count.map(|n| tx as f64 / n.max(1) as f64);
    by_time.into_iter().chain(by_count).reduce(f64::max).map(|p| p.clamp(0.0, 1.0))
}

/// Writes flow `flow`'s frame into an empty mbuf.
fn fill(t: &Templates, space: &FlowSpace, flow: u32, stamp: Stamp, m: &mut Mbuf<'_>) {
    let len = t.len(space, flow);
    // A fresh mbuf has the default data room (2 KB) and frames are at most 1514 B.
    if m.append(len) {
        t.fill(space, flow, stamp, m.data_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000_000; // 1 tick = 1 ns

    /// Run on time, the schedule hands out exactly `t * rate` packets; an unlimited one has no
    /// budget limit.
    #[test]
    fn on_time_the_schedule_is_exact() {
        let mut p = Pacer::new(2_000_000, HZ, 1000); // one packet every 500 ns
        let mut produced = 0;
        for step in 1..=1000u64 {
            produced += p.budget(1000 + step * 500, produced);
        }
        assert_eq!((produced, p.skipped()), (1000, 0));
        assert_eq!(Pacer::new(0, HZ, 0).budget(10, 5), u64::MAX);
    }

    /// After a stall the generator sends at most one burst to catch up and skips the rest
    /// (counted): a 1 ms stall at 2 Mpps owes 2000 packets, and the forwarder must not get them
    /// at the port's full speed. The schedule then goes on at the configured rate.
    #[test]
    fn a_stall_is_skipped_not_caught_up() {
        let mut p = Pacer::new(2_000_000, HZ, 0);
        let mut produced = p.budget(10_000, 0);
        assert_eq!(produced, 20);
        let after_stall = 10_000 + 1_000_000;
        let n = p.budget(after_stall, produced);
        assert_eq!(n, MAX_CATCH_UP);
        produced += n;
        assert_eq!(p.skipped(), 2020 - 20 - MAX_CATCH_UP);
        assert_eq!(produced + p.skipped(), 2020, "sent + skipped = what the schedule asked for");
        assert_eq!(p.budget(after_stall, produced), 0, "nothing more is owed right away");
        assert_eq!(p.budget(after_stall + 5_000, produced), 10, "then 2 per µs again");
    }
}
