//! The lcore runtime: brings up EAL, the mbuf pool and the ports from a [`Config`], then runs one
//! busy-polling loop per forwarding lcore that moves mbufs between the ports and its
//! [`Pipeline`].
//!
//! Contract:
//! - [`Runtime::start`] initialises the EAL (config `[eal].args` + `--lcores` (lcore@CPU, from
//!   `[eal].lcores`, `main_lcore` and `[eal.cpus]`) + `--main-lcore` + one
//!   `--vdev` per vdev port, `-a` per PCI port), creates one mempool sized by
//!   [`mempool_size`], gives every port one RX and one TX queue per forwarding lcore, sets each
//!   kernel (TAP) port's MAC to its NIC's MAC, starts the ports, turns on promiscuous mode on NIC
//!   ports and returns the wiring the control plane needs: per lcore, the snapshot sender, the
//!   counters and the learned-neighbor queue. [`Runtime::launch`] then starts the lcores with
//!   the control plane's first [`Snapshot`].
//! - Each lcore loop: `rx_burst` on each of its RX queues → [`Pipeline::process_burst_with`]
//!   (prefetching the burst's connection-table lines first) → per-output-port batch → `tx_burst`, retried once; what the NIC still refuses is freed and
//!   counted (`tx_dropped` on the port, `DropReason::TxFull`). `ToKernel` goes to the arrival
//!   port's kernel port, `Reply` back out of the arrival port. Between bursts: take the newest
//!   snapshot (`try_recv`, only when the channel is not empty), expire idle flows (paced to
//!   one table sweep a second, at most [`EXPIRE_BUDGET`] slots per iteration), and on the first
//!   lcore send at most one
//!   ARP/NS solicitation every [`SOLICIT_PERIOD_NS`]. Multi-segment frames are dropped as
//!   `Unsupported`. Nothing on this path panics, blocks, allocates or makes a syscall.
//! - The loops run until the shared shutdown flag is set; [`Runtime::stop`] sets it, joins the
//!   lcores (reporting panics caught by the trampoline) and tears down ports, pool and EAL in
//!   that order. A panicking lcore sets the flag too, so the process stops (and exits non-zero)
//!   rather than running with a dead lcore.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam::channel::{Receiver, Sender};
use crossbeam::queue::ArrayQueue;

use crate::config::{devarg, Config, PortRole};
use crate::conntrack::ConnTable;
use crate::dpdk::{
    advise_hugepages, Clock, CpuPrefetch, DpdkError, Eal, LcoreHandle, LcoreId, MbufBatch, Mempool, Port, PortConfig, PortStats,
    RxQueue, TxQueue, BURST_SIZE,
};
use crate::limits::{LEARNED_QUEUE_CAPACITY, SNAPSHOT_QUEUE_DEPTH};
use crate::pipeline::{DropReason, Neighbor, PacketBuf, Pipeline, PortId, PortInfo, Snapshot, Verdict};
use crate::stats::LcoreCounters;
use crate::wire::EthernetAddress;

/// RX ring size per queue. 1024 descriptors absorb ~70 µs of 10 GbE line rate at 64 B while an
/// lcore is busy elsewhere (e.g. expiring flows); the device may round it
/// (`rte_eth_dev_adjust_nb_rx_tx_desc`). Each descriptor pins one mbuf (~2.4 KiB).
pub const RX_DESCRIPTORS: u16 = 1024;
/// TX ring size per queue; mbufs waiting in it are held until the NIC sent them.
pub const TX_DESCRIPTORS: u16 = 1024;
/// Per-lcore mempool cache: allocation and free hit the lcore-local cache, not the shared ring.
/// 256 is DPDK's customary value (must be <= 512 and <= pool size / 1.5).
pub const MEMPOOL_CACHE: u32 = 256;
/// Mbufs on top of the computed need, for frames in flight through TAP/pcap PMDs that keep their
/// own copies and for solicitations.
pub const MEMPOOL_SLACK: u32 = 1024;
/// Largest pool we create: 2^18 - 1 mbufs x ~2.4 KiB = ~600 MiB of hugepages.
pub const MEMPOOL_MAX: u32 = (1 << 18) - 1;
/// Most connection-table slots a loop iteration examines for expiry: bounds the time spent
/// between bursts (~1 µs). Most iterations examine none: the sweep is paced to one pass over
/// the table per `conntrack::EXPIRE_SWEEP_NS`.
pub const EXPIRE_BUDGET: usize = 64;
/// How often the first lcore asks the pipeline for a pending ARP/NS solicitation (the pipeline
/// also limits each next hop to one per second).
pub const SOLICIT_PERIOD_NS: u64 = 100_000_000;

/// Why the runtime could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A DPDK call failed (EAL, mempool, lcore launch).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
    /// Setting up one configured port failed.
    #[error("port[{index}] ({name:?}, devargs {devargs:?}): {source}")]
    Port {
        /// Index in `[[port]]` order.
        index: usize,
        /// Config name.
        name: String,
        /// Its devargs.
        devargs: String,
        /// The DPDK failure (boxed: it is large and this is the cold path).
        source: Box<DpdkError>,
    },
    /// A kernel port names a NIC that does not exist (config validation should prevent this).
    #[error("port {0:?}: its NIC/kernel pairing is inconsistent; run `dataplane check-config`")]
    Pairing(String),
}

/// What the control plane needs to talk to one lcore.
#[derive(Debug)]
pub struct LcoreWiring {
    /// The EAL lcore id.
    pub lcore_id: u32,
    /// New snapshots for this lcore (bounded; the lcore takes the newest between bursts).
    pub snapshots: Sender<Arc<Snapshot>>,
    /// This lcore's counters.
    pub counters: Arc<LcoreCounters>,
    /// Neighbors this lcore learned from ARP/ND replies, for the control plane to merge.
    pub learned: Arc<ArrayQueue<Neighbor>>,
}

/// The running data plane: EAL, pool, ports and lcore jobs.
#[derive(Debug)]
pub struct Runtime {
    handles: Vec<LcoreHandle>,
    pending: Vec<PendingLcore>,
    clock: Clock,
    ports: Vec<Port>,
    infos: Vec<PortInfo>,
    shutdown: Arc<AtomicBool>,
    pool: Arc<Mempool>,
    eal: Eal,
}

/// The EAL device name of a port: a vdev's name (devargs up to the first comma), or a PCI
/// address in DPDK's full `DDDD:BB:DD.F` form.
pub fn device_name(devargs: &str, is_pci: bool) -> String {
    let name = devargs.split(',').next().unwrap_or(devargs).trim();
    if is_pci && name.matches(':').count() == 1 {
        format!("0000:{name}")
    } else {
        name.to_owned()
    }
}

/// The EAL command line for `config` (without the program name).
pub fn eal_args(config: &Config) -> Vec<String> {
    let mut args = config.eal.args.clone();
    // `--lcores L@CPU,...` rather than `-l`: it pins each lcore to its `[eal.cpus]` CPU, which
    // may be shared (e.g. two forwarding lcores on a 2-CPU test machine).
    args.push("--lcores".into());
    args.push(config.eal.lcores_arg());
    args.push("--main-lcore".into());
    args.push(config.eal.main_lcore.to_string());
    for p in &config.ports {
        if p.is_pci() {
            args.push("-a".into());
            args.push(p.devargs.clone());
        } else {
            args.push(format!("--vdev={}", p.devargs));
        }
    }
    args
}

/// Mbufs needed: every RX and TX descriptor of every queue may hold one; each lcore holds up to
/// a burst per port in its output batches plus the burst being received; each lcore (and the
/// main thread) may park [`MEMPOOL_CACHE`] in its cache; `replay` more for the frames `net_pcap`
/// replay ports keep (see [`pcap_replay_frames`]); plus [`MEMPOOL_SLACK`]. Rounded up to
/// 2^q - 1 (the mempool's most memory-efficient size), capped at [`MEMPOOL_MAX`].
/// Example: 2 ports x 1 lcore = 2 x (1024 + 1024) + 3 x 32 + 2 x 256 + 1024 = 5728 → 8191
/// mbufs ≈ 19 MiB.
pub fn mempool_size(ports: usize, lcores: usize, replay: u64) -> u32 {
    let (p, l) = (ports as u64, lcores as u64);
    let need = p * l * u64::from(RX_DESCRIPTORS + TX_DESCRIPTORS)
        + l * (p + 1) * BURST_SIZE as u64
        + (l + 1) * u64::from(MEMPOOL_CACHE)
        + replay
        + u64::from(MEMPOOL_SLACK);
    let rounded = (need + 1).next_power_of_two() - 1;
    rounded.min(u64::from(MEMPOOL_MAX)) as u32
}

/// Frames a port keeps in mbufs of our pool for the whole run: a `net_pcap` vdev with
/// `infinite_rx=1` loads every frame of its `rx_pcap` file into mbufs when its RX queue is set
/// up (and refuses to start when the pool is too small), per RX queue. 0 for every other port,
/// and for a file that is not a readable pcap (the PMD then reports that itself).
pub fn pcap_replay_frames(devargs: &str, rx_queues: usize) -> u64 {
    let file = devarg(devargs, "net_pcap", "rx_pcap");
    let infinite = devarg(devargs, "net_pcap", "infinite_rx").is_some_and(|v| v.trim() == "1");
    match (file, infinite) {
        (Some(path), true) => std::fs::read(path).map_or(0, |b| crate::pcap::records(&b).count() as u64) * rx_queues as u64,
        _ => 0,
    }
}

impl Runtime {
    /// Brings up EAL, pool and ports and prepares one set of queues and channels per lcore
    /// (see the module docs); [`Runtime::launch`] starts the loops once the control plane has
    /// built the first snapshot from [`Runtime::ports`]. Must be called on the main thread,
    /// before any other thread is spawned (EAL pins the caller).
    pub fn start(config: &Config, shutdown: Arc<AtomicBool>) -> Result<(Runtime, Vec<LcoreWiring>), RuntimeError> {
        let args = eal_args(config);
        tracing::info!(?args, "initialising EAL");
        let eal = Eal::init(&args)?;
        let lcores = config.eal.lcores.len();
        let nports = config.ports.len();
        let replay = config.ports.iter().map(|p| pcap_replay_frames(&p.devargs, lcores)).sum();
        let size = mempool_size(nports, lcores, replay);
        let pool = Mempool::new(&eal, "dp_mbufs", size, MEMPOOL_CACHE, Mempool::DEFAULT_DATA_ROOM, eal.socket_id())?;
        tracing::info!(mbufs = size, "mbuf pool created");

        let port_err = |index: usize, source: DpdkError| RuntimeError::Port {
            index,
            name: config.ports[index].name.clone(),
            devargs: config.ports[index].devargs.clone(),
            source: Box::new(source),
        };
        let queues = u16::try_from(lcores).unwrap_or(u16::MAX);
        let conf = PortConfig { rx_queues: queues, tx_queues: queues, rx_descriptors: RX_DESCRIPTORS, tx_descriptors: TX_DESCRIPTORS };
        let mut ports = Vec::with_capacity(nports);
        let mut rx_per_port = Vec::with_capacity(nports);
        let mut tx_per_port = Vec::with_capacity(nports);
        let mut macs = Vec::with_capacity(nports);
        for (i, pc) in config.ports.iter().enumerate() {
            let port = Port::by_name(&eal, &device_name(&pc.devargs, pc.is_pci())).map_err(|e| port_err(i, e))?;
            let (rx, tx) = port.configure(&conf, &pool).map_err(|e| port_err(i, e))?;
            macs.push(port.mac_address().map_err(|e| port_err(i, e))?);
            ports.push(port);
            rx_per_port.push(rx.into_iter());
            tx_per_port.push(tx.into_iter());
        }
        // A kernel port carries its NIC's MAC, so the kernel's ARP replies and egress frames use
        // the address clients send to.
        let mut infos = Vec::with_capacity(nports);
        for (i, pc) in config.ports.iter().enumerate() {
            let kernel = match &pc.kernel {
                Some(k) => Some(PortId(config.port_index(k).ok_or_else(|| RuntimeError::Pairing(pc.name.clone()))? as u16)),
                None => None,
            };
            if pc.role == PortRole::Kernel {
                let nic = config.ports.iter().position(|n| n.kernel.as_deref() == Some(pc.name.as_str()));
                if let Some(nic) = nic {
                    ports[i].set_mac_address(macs[nic]).map_err(|e| port_err(i, e))?;
                    macs[i] = macs[nic];
                }
            }
            infos.push(PortInfo { id: PortId(i as u16), name: pc.name.clone(), role: pc.role, mac: EthernetAddress(macs[i]), kernel });
        }
        for (i, pc) in config.ports.iter().enumerate() {
            ports[i].start().map_err(|e| port_err(i, e))?;
            if pc.role == PortRole::Nic {
                if let Err(e) = ports[i].promiscuous_enable() {
                    tracing::warn!(port = %pc.name, error = %e, "promiscuous mode unavailable; only frames to the port's MAC arrive");
                }
            }
            let link = ports[i].link().map_err(|e| port_err(i, e))?;
            tracing::info!(port = %pc.name, dev = ports[i].dev_id(), mac = %EthernetAddress(macs[i]), up = link.up, speed_mbps = link.speed_mbps, "port started");
        }

        let mut pending = Vec::with_capacity(lcores);
        let mut wiring = Vec::with_capacity(lcores);
        for (k, &lcore) in config.eal.lcores.iter().enumerate() {
            let (tx_snap, rx_snap) = crossbeam::channel::bounded(SNAPSHOT_QUEUE_DEPTH);
            let counters = Arc::new(LcoreCounters::new());
            let learned = Arc::new(ArrayQueue::new(LEARNED_QUEUE_CAPACITY));
            let mut rx = Vec::with_capacity(nports);
            let mut tx = Vec::with_capacity(nports);
            for p in 0..nports {
                // configure() returned exactly `lcores` queues per port; lcore k takes queue k.
                let (Some(r), Some(t)) = (rx_per_port[p].next(), tx_per_port[p].next()) else {
                    return Err(port_err(p, DpdkError::TooManyQueues { port: config.ports[p].name.clone(), dir: "RX/TX", asked: queues, max: k as u16 }));
                };
                rx.push((PortId(p as u16), r));
                tx.push(t);
            }
            pending.push(PendingLcore { lcore, rx, tx, snapshots: rx_snap, counters: counters.clone(), learned: learned.clone() });
            wiring.push(LcoreWiring { lcore_id: lcore, snapshots: tx_snap, counters, learned });
        }
        let clock = Clock::new(&eal);
        Ok((Runtime { handles: Vec::new(), pending, ports, infos, shutdown, clock, pool, eal }, wiring))
    }

    /// Launches one forwarding loop per lcore, each with its own [`Pipeline`] over `snapshot`
    /// (the control plane's first snapshot) and a connection table of `conntrack_capacity`
    /// entries (allocated and faulted in here, on the main thread, before the lcore starts,
    /// on transparent huge pages when the kernel grants them).
    pub fn launch(&mut self, snapshot: &Arc<Snapshot>, conntrack_capacity: usize) -> Result<(), RuntimeError> {
        for l in std::mem::take(&mut self.pending) {
            let mut huge = 0usize;
            let table = ConnTable::with_advice(conntrack_capacity, snapshot.timeouts, |r| huge += usize::from(advise_hugepages(r)));
            if huge < 2 {
                tracing::warn!(lcore = l.lcore, "connection table on 4 KiB pages (transparent huge pages unavailable or table < 2 MiB): lookups will miss the TLB more");
            }
            let pipeline = Pipeline::with_conntrack(snapshot.clone(), l.counters.clone(), l.learned, table);
            let worker = Worker {
                first: self.handles.is_empty(),
                rx: l.rx,
                tx: l.tx,
                pipeline,
                snapshots: l.snapshots,
                counters: l.counters,
                clock: self.clock,
                pool: self.pool.clone(),
                shutdown: self.shutdown.clone(),
            };
            // A panicking lcore (a bug: the packet path must not panic) stops the whole process,
            // so `stop` reports it and a supervisor restarts us, instead of a dead lcore silently
            // blackholing its RSS share of the traffic.
            let stop_all = StopOnPanic(self.shutdown.clone());
            self.handles.push(self.eal.launch(LcoreId(l.lcore), move || {
                let _stop_all = stop_all;
                worker.run();
            })?);
            tracing::info!(lcore = l.lcore, "lcore running");
        }
        Ok(())
    }

    /// The ports as the pipeline and control plane see them.
    pub fn ports(&self) -> &[PortInfo] {
        &self.infos
    }

    /// The devices' own counters, by config port name.
    pub fn device_stats(&self) -> Vec<(String, Result<PortStats, DpdkError>)> {
        self.infos.iter().zip(&self.ports).map(|(i, p)| (i.name.clone(), p.stats())).collect()
    }

    /// Mbufs currently free in the pool (a leak check for tests and stats).
    pub fn free_mbufs(&self) -> u32 {
        self.pool.available()
    }

    /// Stops the lcores, waits for them, then closes ports, frees the pool and cleans up EAL.
    /// Returns the first lcore failure (a caught panic), after stopping everything.
    pub fn stop(self) -> Result<(), RuntimeError> {
        self.shutdown.store(true, Ordering::SeqCst);
        let mut first = None;
        for h in self.handles {
            if let Err(e) = h.wait() {
                tracing::error!(error = %e, "lcore failed");
                first.get_or_insert(e);
            }
        }
        drop(self.ports);
        drop(self.pool);
        drop(self.eal);
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// Sets the shutdown flag when dropped during a panic.
struct StopOnPanic(Arc<AtomicBool>);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

/// An lcore's queues and channels between [`Runtime::start`] and [`Runtime::launch`].
#[derive(Debug)]
struct PendingLcore {
    lcore: u32,
    rx: Vec<(PortId, RxQueue)>,
    tx: Vec<TxQueue>,
    snapshots: Receiver<Arc<Snapshot>>,
    counters: Arc<LcoreCounters>,
    learned: Arc<ArrayQueue<Neighbor>>,
}

/// One forwarding lcore's state; moved onto the lcore by [`Eal::launch`].
struct Worker {
    first: bool,
    /// This lcore's RX queue of every port, with the port's config id.
    rx: Vec<(PortId, RxQueue)>,
    /// This lcore's TX queue of every port, indexed by config id.
    tx: Vec<TxQueue>,
    pipeline: Pipeline,
    snapshots: Receiver<Arc<Snapshot>>,
    counters: Arc<LcoreCounters>,
    clock: Clock,
    pool: Arc<Mempool>,
    shutdown: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        let Worker { first, rx, tx, mut pipeline, snapshots, counters, clock, pool, shutdown } = self;
        let c = &*counters;
        // One output batch per port, reused for the lcore's life (allocated once, here).
        let mut out: Vec<MbufBatch<'_>> = tx.iter().map(|_| MbufBatch::new()).collect();
        let mut verdicts = [Verdict::ToKernel; BURST_SIZE];
        let mut next_solicit = 0u64;
        while !shutdown.load(Ordering::Relaxed) {
            let now = clock.now_ns();
            for (in_port, rxq) in &rx {
                let mut burst = MbufBatch::new();
                let n = rxq.rx_burst(&mut burst);
                if n == 0 {
                    c.idle_polls.inc();
                    continue;
                }
                c.rx_bursts.inc();
                let pc = &c.ports[usize::from(in_port.0)];
                pc.rx_packets.add(n as u64);
                pc.rx_bytes.add(burst.total_len() as u64);
                let segmented = burst.free_where(|m| !m.is_contiguous());
                if segmented > 0 {
                    c.drops[DropReason::Unsupported as usize].add(segmented as u64);
                }
                pipeline.process_burst_with(burst.as_mut_slice(), *in_port, now, &mut verdicts, &CpuPrefetch);
                for (m, &verdict) in burst.drain().zip(&verdicts) {
                    let target = match verdict {
                        Verdict::Forward(p) => p,
                        Verdict::Reply => *in_port,
                        Verdict::ToKernel => match pipeline.snapshot().peer(*in_port) {
                            Some(k) => k,
                            None => {
                                c.drop(DropReason::Unsupported);
                                continue;
                            }
                        },
                        // Counted by the pipeline; `m` is freed here.
                        Verdict::Drop(_) => continue,
                    };
                    let t = usize::from(target.0);
                    if t >= out.len() {
                        c.drop(DropReason::Unsupported);
                        continue;
                    }
                    if out[t].room() == 0 {
                        flush(&tx[t], &mut out[t], c, t);
                    }
                    // The batch has room after a flush (flush empties it).
                    let _ = out[t].push(m);
                }
                for (t, batch) in out.iter_mut().enumerate() {
                    if !batch.is_empty() {
                        flush(&tx[t], batch, c, t);
                    }
                }
            }

            // Between bursts: newest snapshot, bounded expiry, solicitations.
            // Empty or disconnected (control plane gone): keep the current snapshot.
            // `is_empty` is two plain loads; `try_recv` on an empty channel also issues a full
            // fence, which drained the store buffer behind every burst's header writes (about
            // 3 % of the lcore's samples in `perf annotate`). A snapshot sent meanwhile is
            // seen on the next iteration.
            if !snapshots.is_empty() {
                let mut newest = None;
                while let Ok(s) = snapshots.try_recv() {
                    newest = Some(s);
                }
                if let Some(s) = newest {
                    pipeline.set_snapshot(s);
                }
            }
            pipeline.expire(now, EXPIRE_BUDGET);
            if first && now >= next_solicit {
                next_solicit = now + SOLICIT_PERIOD_NS;
                if let Some(mut m) = pool.alloc() {
                    if let Some(p) = pipeline.solicit(&mut m, now) {
                        let t = usize::from(p.0);
                        if t < out.len() && !m.data().is_empty() {
                            let _ = out[t].push(m);
                            flush(&tx[t], &mut out[t], c, t);
                        }
                    }
                }
            }
        }
        for batch in &mut out {
            batch.free_all();
        }
    }
}

/// Sends `batch` on `txq`, retries once what the ring refused, then frees and counts the rest.
#[inline]
fn flush(txq: &TxQueue, batch: &mut MbufBatch<'_>, c: &LcoreCounters, port: usize) {
    let bytes = batch.total_len();
    let mut sent = txq.tx_burst(batch);
    if !batch.is_empty() {
        sent += txq.tx_burst(batch);
    }
    let unsent_bytes = batch.total_len();
    let dropped = batch.free_all() as u64;
    let pc = &c.ports[port];
    pc.tx_packets.add(sent as u64);
    pc.tx_bytes.add((bytes - unsent_bytes) as u64);
    if dropped > 0 {
        pc.tx_dropped.add(dropped);
        c.drops[DropReason::TxFull as usize].add(dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool holds every descriptor, burst and cache the lcores can pin, rounded to 2^q - 1.
    #[test]
    fn mempool_size_covers_rings_bursts_and_caches() {
        assert_eq!(mempool_size(2, 1, 0), 8191);
        let need = 4 * 2 * 2048 + 2 * 5 * 32 + 3 * 256 + 1024;
        let got = mempool_size(4, 2, 0);
        assert!(u64::from(got) >= need as u64 && (got + 1).is_power_of_two(), "{got}");
        assert_eq!(mempool_size(16, 64, 0), MEMPOOL_MAX);
        // A replayed capture of 32768 frames needs that many more (perf/run.sh's data case).
        assert_eq!(mempool_size(1, 1, 32768), 65535);
    }

    /// Only `net_pcap` ports replaying a file forever pin its frames, once per RX queue; the
    /// count is the pcap's records, in either byte order.
    #[test]
    fn pcap_replay_pins_every_frame() {
        let dir = std::env::temp_dir().join(format!("dp-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("three.pcap");
        let frames = [vec![0u8; 60], vec![0u8; 64], vec![0u8; 1514]];
        let file = crate::pcap::write(&frames, 0);
        std::fs::write(&path, &file).unwrap();
        let p = path.display();
        assert_eq!(pcap_replay_frames(&format!("net_pcap0,rx_pcap={p},infinite_rx=1"), 1), 3);
        assert_eq!(pcap_replay_frames(&format!("net_pcap0,rx_pcap={p},infinite_rx=1"), 2), 6);
        assert_eq!(pcap_replay_frames(&format!("net_pcap0,rx_pcap={p}"), 1), 0, "not infinite: read as it goes");
        assert_eq!(pcap_replay_frames(&format!("net_null0,rx_pcap={p},infinite_rx=1"), 1), 0);
        assert_eq!(pcap_replay_frames("net_pcap0,rx_pcap=/nonexistent.pcap,infinite_rx=1", 1), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Vdev names stop at the first comma; short PCI addresses get DPDK's domain prefix.
    #[test]
    fn device_names() {
        assert_eq!(device_name("net_tap0,iface=dp0", false), "net_tap0");
        assert_eq!(device_name("net_af_packet1", false), "net_af_packet1");
        assert_eq!(device_name("0000:03:00.0", true), "0000:03:00.0");
        assert_eq!(device_name("03:00.0", true), "0000:03:00.0");
    }

    /// EAL arguments: config args first, then the lcores with the CPU each runs on (`[eal.cpus]`,
    /// else the CPU of the same number), the main lcore, then one --vdev per vdev port and -a
    /// per PCI port.
    #[test]
    fn eal_args_from_config() {
        let cfg = Config::parse(
            r#"
[eal]
args = ["--in-memory", "--no-pci"]
main_lcore = 0
lcores = [1, 2]
[eal.cpus]
2 = 1
[[port]]
name = "nic0"
devargs = "net_af_packet0,iface=lb0"
role = "nic"
kernel = "kni0"
[[port]]
name = "kni0"
devargs = "net_tap0,iface=dp0"
role = "kernel"
[host]
ipv4 = "198.18.0.2/24"
[[service]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
port = 80
mode = "tunnel"
[[service.backend]]
address = "198.18.0.10"
"#,
        )
        .unwrap();
        assert_eq!(
            eal_args(&cfg),
            [
                "--in-memory",
                "--no-pci",
                "--lcores",
                "0@0,1@1,2@1",
                "--main-lcore",
                "0",
                "--vdev=net_af_packet0,iface=lb0",
                "--vdev=net_tap0,iface=dp0"
            ]
        );
    }
}
