//! Counters: per lcore, single writer, cache-line padded, summed by the control plane.
//!
//! Contract: each [`LcoreCounters`] is written by exactly one lcore and read by the control
//! thread. A [`Counter`] is an `AtomicU64` that its one writer bumps with a relaxed load and a
//! relaxed store (a plain `mov` on x86, no `lock` prefix, no contended cache line), so the packet
//! path has no shared read-modify-write; readers may see a value a few packets old, never a torn
//! one.
//!
//! The control plane sums every lcore's counters into a [`StatsReport`] (JSON over the control
//! socket), labelled by port, service and backend names from the running config
//! ([`StatsLabels`]). The report renders as a table for humans ([`StatsReport::render_table`])
//! or as Prometheus text exposition ([`StatsReport::render_prometheus`]).
//!
//! Service and backend counters live in *counter slots* keyed by identity, not by position:
//! [`CounterSlots`] (owned by the control plane) gives each service — (VIP, protocol, port) —
//! and each backend — (its service's identity, address) — a slot that it keeps across every
//! reload, whatever the order of the config; the snapshot carries the slot ids and the lcores
//! count into them. A new identity takes a never-used slot first, then the slot retired
//! longest ago, so that packets an lcore still counts under a just-retired identity (it may run
//! on the previous snapshot for one more burst) do not land under its successor. Counters have
//! one writer (their lcore), so the control plane cannot zero a slot it hands over: it records
//! the slot's sum at hand-over as a *baseline* and reports the difference. Names are therefore
//! right across reorders, removals and additions; a renamed service keeps its counts.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::config::Config;
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
    /// ICMP time exceeded / ICMPv6 hop limit exceeded sent for packets whose TTL ran out (each
    /// also counted as `DropReason::TtlExceeded`).
    pub time_exceeded_sent: Counter,
    pub conntrack_hits: Counter,
    pub conntrack_misses: Counter,
    pub conntrack_inserts: Counter,
    pub conntrack_evictions: Counter,
    pub conntrack_expired: Counter,
    /// Tracked flows whose cached backend index a new snapshot had moved, found again by the
    /// backend's identity (the flow stays on its backend).
    pub conntrack_rehomed: Counter,
    /// Tracked flows whose backend left the config: re-pinned to the current Maglev choice.
    pub conntrack_backend_gone: Counter,
    /// SYNs that found a closing entry (a client reusing its port): new flows, scheduled afresh
    /// in the entry's slot.
    pub conntrack_reused: Counter,
    /// New flows the full table refused (forwarded untracked by the Maglev choice).
    pub conntrack_full: Counter,
    /// Current number of live entries (a gauge, stored not added).
    pub conntrack_entries: Counter,
    pub snapshot_switches: Counter,
    /// RX polls (`rx_burst` on one queue) that returned frames.
    pub rx_bursts: Counter,
    /// RX polls that returned nothing: the lcore was waiting for traffic. Per received burst,
    /// near 0 means the lcore is saturated (it is the limit of the traffic it forwards).
    pub idle_polls: Counter,
    /// Neighbor observations (ARP replies / neighbor advertisements) the lcore could not queue
    /// for the control thread because its `learned` queue was full.
    pub learned_dropped: Counter,
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
            time_exceeded_sent: Counter::default(),
            conntrack_hits: Counter::default(),
            conntrack_misses: Counter::default(),
            conntrack_inserts: Counter::default(),
            conntrack_evictions: Counter::default(),
            conntrack_expired: Counter::default(),
            conntrack_rehomed: Counter::default(),
            conntrack_backend_gone: Counter::default(),
            conntrack_reused: Counter::default(),
            conntrack_full: Counter::default(),
            conntrack_entries: Counter::default(),
            snapshot_switches: Counter::default(),
            rx_bursts: Counter::default(),
            idle_polls: Counter::default(),
            learned_dropped: Counter::default(),
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


// ---------------------------------------------------------------------------------------------
// The summed report
// ---------------------------------------------------------------------------------------------

/// Names for counter slots: ports, services and backends of the running config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsLabels {
    /// Port names, by port index.
    pub ports: Vec<String>,
    /// Services, in config order.
    pub services: Vec<ServiceLabel>,
    /// Backends, in [`Config::backends`] order.
    pub backends: Vec<BackendLabel>,
}

/// What identifies a service in stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceLabel {
    /// Service name.
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// `tcp` / `udp`.
    pub protocol: &'static str,
    /// Port, `None` = all ports.
    pub port: Option<u16>,
    /// Its counter slot (index into [`LcoreCounters::services`]).
    pub slot: u16,
    /// The slot's summed counters when this service took it (reported values are above it).
    pub base: ServiceTotals,
}

/// What identifies a backend in stats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendLabel {
    /// Owning service's name.
    pub service: String,
    /// Backend address.
    pub address: IpAddr,
    /// Its counter slot (index into [`LcoreCounters::backends`]).
    pub slot: u16,
    /// The slot's summed counters when this backend took it.
    pub base: BackendTotals,
}

/// One service slot's counters summed over lcores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceTotals {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// New flows.
    pub new_flows: u64,
    /// Untracked packets.
    pub untracked: u64,
}

/// One backend slot's counters summed over lcores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendTotals {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl ServiceTotals {
    fn of_slot(slot: u16, lcores: &[&LcoreCounters]) -> Self {
        let mut t = ServiceTotals::default();
        for c in lcores {
            if let Some(s) = c.services.get(usize::from(slot)) {
                t.packets = t.packets.wrapping_add(s.packets.get());
                t.bytes = t.bytes.wrapping_add(s.bytes.get());
                t.new_flows = t.new_flows.wrapping_add(s.new_flows.get());
                t.untracked = t.untracked.wrapping_add(s.untracked.get());
            }
        }
        t
    }
}

impl BackendTotals {
    fn of_slot(slot: u16, lcores: &[&LcoreCounters]) -> Self {
        let mut t = BackendTotals::default();
        for c in lcores {
            if let Some(b) = c.backends.get(usize::from(slot)) {
                t.packets = t.packets.wrapping_add(b.packets.get());
                t.bytes = t.bytes.wrapping_add(b.bytes.get());
            }
        }
        t
    }
}

impl StatsLabels {
    /// The labels of a validated config with positional slots (service i in slot i, backend j
    /// of [`Config::backends`] in slot j) and zero baselines: what a first start gives, and
    /// what [`CounterSlots::assign`] gives on a fresh instance.
    pub fn from_config(config: &Config) -> StatsLabels {
        CounterSlots::new().assign(config, &[])
    }

    /// Counter slot of each service, in config order (what the snapshot carries).
    pub fn service_slots(&self) -> Vec<u16> {
        self.services.iter().map(|l| l.slot).collect()
    }

    /// Counter slot of each backend, in [`Config::backends`] order.
    pub fn backend_slots(&self) -> Vec<u16> {
        self.backends.iter().map(|l| l.slot).collect()
    }
}

/// A service's identity for counters: what packets are matched by, not its name or position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServiceIdentity {
    /// VIP.
    pub vip: IpAddr,
    /// `tcp` / `udp`.
    pub protocol: &'static str,
    /// Port, `None` = all ports.
    pub port: Option<u16>,
}

/// A backend's identity for counters: its address within its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BackendIdentity {
    /// The owning service.
    pub service: ServiceIdentity,
    /// Backend address.
    pub address: IpAddr,
}

/// Slot ownership for one kind of counter (see the module docs).
#[derive(Clone, Debug)]
struct SlotTable<K> {
    /// Slot → its current identity and baseline, or `None` when free.
    owner: Vec<Option<K>>,
    /// Slots never handed out are `next_fresh..capacity`.
    next_fresh: usize,
    /// Freed slots, retired longest ago first.
    retired: std::collections::VecDeque<usize>,
}

impl<K: Copy + Eq + std::hash::Hash> SlotTable<K> {
    fn new(capacity: usize) -> Self {
        SlotTable { owner: vec![None; capacity], next_fresh: 0, retired: Default::default() }
    }

    /// Gives every key of `keys` a slot: the one it had, else a fresh or long-retired one.
    /// Returns `(slot, newly taken)` per key. Keys no longer present give their slots back.
    /// `keys` has at most `capacity` distinct entries (the snapshot builder's limit, checked
    /// with the config): then a slot is always free, since every live key holds exactly one.
    fn assign(&mut self, keys: &[K]) -> Vec<(u16, bool)> {
        let wanted: std::collections::HashSet<K> = keys.iter().copied().collect();
        let mut held: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
        for (slot, o) in self.owner.iter_mut().enumerate() {
            match *o {
                Some(k) if wanted.contains(&k) => {
                    held.insert(k, slot);
                }
                Some(_) => {
                    *o = None;
                    self.retired.push_back(slot);
                }
                None => {}
            }
        }
        keys.iter()
            .map(|k| {
                if let Some(&slot) = held.get(k) {
                    return (slot as u16, false);
                }
                let slot = if self.next_fresh < self.owner.len() {
                    self.next_fresh += 1;
                    self.next_fresh - 1
                } else {
                    // Cannot be empty: see the doc comment (a duplicate key reuses `held`).
                    self.retired.pop_front().unwrap_or(0)
                };
                self.owner[slot] = Some(*k);
                held.insert(*k, slot);
                (slot as u16, true)
            })
            .collect()
    }
}

/// The control plane's map from service/backend identity to counter slot, kept across reloads
/// (see the module docs).
#[derive(Clone, Debug)]
pub struct CounterSlots {
    services: SlotTable<ServiceIdentity>,
    backends: SlotTable<BackendIdentity>,
    /// Baselines of the slots' current owners.
    service_base: Vec<ServiceTotals>,
    backend_base: Vec<BackendTotals>,
}

impl Default for CounterSlots {
    fn default() -> Self {
        Self::new()
    }
}

impl CounterSlots {
    /// No slot handed out yet; as many slots as [`LcoreCounters`] has.
    pub fn new() -> Self {
        Self::with_capacity(MAX_SERVICES, MAX_BACKENDS)
    }

    fn with_capacity(services: usize, backends: usize) -> Self {
        CounterSlots {
            services: SlotTable::new(services),
            backends: SlotTable::new(backends),
            service_base: vec![ServiceTotals::default(); services],
            backend_base: vec![BackendTotals::default(); backends],
        }
    }

    /// Assigns slots for the services and backends of `config` (validated, so within
    /// [`MAX_SERVICES`] / [`MAX_BACKENDS`]) and returns the labels to build the snapshot and
    /// report with. A slot newly taken gets its current sum over `lcores` as baseline.
    pub fn assign(&mut self, config: &Config, lcores: &[&LcoreCounters]) -> StatsLabels {
        let svc_id = |si: usize| {
            let s = &config.services[si];
            ServiceIdentity { vip: s.vip, protocol: s.protocol.as_str(), port: s.port }
        };
        let skeys: Vec<ServiceIdentity> = (0..config.services.len()).map(svc_id).collect();
        let bkeys: Vec<BackendIdentity> =
            config.backends().map(|(_, si, b)| BackendIdentity { service: svc_id(si), address: b.address }).collect();
        let sslots = self.services.assign(&skeys);
        let bslots = self.backends.assign(&bkeys);
        for &(slot, new) in &sslots {
            if new {
                self.service_base[usize::from(slot)] = ServiceTotals::of_slot(slot, lcores);
            }
        }
        for &(slot, new) in &bslots {
            if new {
                self.backend_base[usize::from(slot)] = BackendTotals::of_slot(slot, lcores);
            }
        }
        StatsLabels {
            ports: config.ports.iter().map(|p| p.name.clone()).collect(),
            services: config
                .services
                .iter()
                .zip(&sslots)
                .map(|(s, &(slot, _))| ServiceLabel {
                    name: s.name.clone(),
                    vip: s.vip,
                    protocol: s.protocol.as_str(),
                    port: s.port,
                    slot,
                    base: self.service_base[usize::from(slot)],
                })
                .collect(),
            backends: config
                .backends()
                .zip(&bslots)
                .map(|((_, si, b), &(slot, _))| BackendLabel {
                    service: config.services[si].name.clone(),
                    address: b.address,
                    slot,
                    base: self.backend_base[usize::from(slot)],
                })
                .collect(),
        }
    }
}

/// Counters of one port, summed over lcores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStats {
    /// Port name.
    pub name: String,
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Frames the NIC did not take.
    pub tx_dropped: u64,
}

/// Totals of one lcore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcoreStats {
    /// EAL lcore id.
    pub lcore: u32,
    /// Frames received on all ports.
    pub rx_packets: u64,
    /// Frames sent on all ports.
    pub tx_packets: u64,
    /// Frames dropped, all reasons.
    pub dropped: u64,
    /// Frames forwarded to backends.
    pub forwarded: u64,
    /// Frames handed to the kernel.
    pub to_kernel: u64,
    /// Live connection-table entries.
    pub conntrack_entries: u64,
    /// Snapshots this lcore switched to.
    pub snapshot_switches: u64,
    /// RX polls that returned frames.
    pub rx_bursts: u64,
    /// RX polls that returned nothing (see [`LcoreCounters::idle_polls`]).
    pub idle_polls: u64,
}

/// Counters of one service, summed over lcores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// Service name.
    pub name: String,
    /// VIP.
    pub vip: String,
    /// `tcp` / `udp`.
    pub protocol: String,
    /// Port, `None` = all ports.
    pub port: Option<u16>,
    /// Packets forwarded.
    pub packets: u64,
    /// Bytes forwarded (before encapsulation).
    pub bytes: u64,
    /// Connection-table entries created.
    pub new_flows: u64,
    /// Packets forwarded by the Maglev choice without a table entry.
    pub untracked: u64,
}

/// Counters of one backend, summed over lcores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendStats {
    /// Owning service's name.
    pub service: String,
    /// Backend address.
    pub address: String,
    /// Packets sent to it.
    pub packets: u64,
    /// Bytes sent to it (before encapsulation).
    pub bytes: u64,
}

/// Drops of one reason, summed over lcores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropStats {
    /// [`DropReason::as_str`].
    pub reason: String,
    /// Frames dropped.
    pub packets: u64,
}

/// Verdict totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictStats {
    /// Forwarded to a backend.
    pub forwarded: u64,
    /// Answered locally (ARP/ND, echo, PTB).
    pub replied: u64,
    /// Handed to the kernel.
    pub to_kernel: u64,
    /// Kernel frames sent out of a NIC.
    pub from_kernel: u64,
    /// Dropped (all reasons).
    pub dropped: u64,
    /// ICMP errors routed to a flow's backend.
    pub icmp_to_backend: u64,
    /// Frag-needed / packet-too-big generated.
    pub pmtu_generated: u64,
    /// Time exceeded sent (the expired packets are also in the `ttl_exceeded` drops).
    pub time_exceeded_sent: u64,
}

/// Connection-table totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConntrackStats {
    /// Lookups that found a flow.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Flows inserted.
    pub inserts: u64,
    /// Half-open flows evicted to make room.
    pub evictions: u64,
    /// Idle flows expired.
    pub expired: u64,
    /// Flows found again by backend identity after a snapshot moved their backend's index.
    pub rehomed: u64,
    /// Flows whose backend left the config, re-pinned to the Maglev choice.
    pub backend_gone: u64,
    /// SYNs on a closing entry (client port reuse), scheduled as new flows.
    pub reused: u64,
    /// New flows the full table refused (forwarded untracked).
    pub full: u64,
    /// Live entries now (all lcores).
    pub entries: u64,
    /// Neighbor observations lost to a full learned queue.
    pub learned_dropped: u64,
}

/// The control plane's own counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlStats {
    /// Successful reloads.
    pub reloads: u64,
    /// Refused reloads (bad file, restart-only change, build error).
    pub reload_errors: u64,
    /// The last refused reload's error, until a reload succeeds.
    pub last_reload_error: Option<String>,
    /// Snapshots handed to the lcores (initial, reloads, neighbor changes).
    pub snapshots_published: u64,
    /// Neighbors learned from ARP/ND and still in use.
    pub neighbors_learned: u64,
    /// Next hops of backends with no MAC yet (their traffic drops as `no_neighbor`).
    pub unresolved_next_hops: u64,
}

/// Everything `dataplane stats` shows: every lcore's counters summed, plus the control plane's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// Per port.
    pub ports: Vec<PortStats>,
    /// Per lcore.
    pub lcores: Vec<LcoreStats>,
    /// Per service.
    pub services: Vec<ServiceStats>,
    /// Per backend.
    pub backends: Vec<BackendStats>,
    /// Per drop reason, every reason in [`DropReason::ALL`] order.
    pub drops: Vec<DropStats>,
    /// Verdict totals.
    pub verdicts: VerdictStats,
    /// Connection-table totals.
    pub conntrack: ConntrackStats,
    /// Control-plane counters.
    pub control: ControlStats,
}

impl StatsReport {
    /// Sums `lcores` (`(lcore id, its counters)`) under `labels`: each service and backend from
    /// its own slot, minus the baseline of when it took the slot. Slots no label names
    /// (identities no longer in the running config) are not reported.
    pub fn collect(labels: &StatsLabels, lcores: &[(u32, &LcoreCounters)]) -> StatsReport {
        let sum = |f: &dyn Fn(&LcoreCounters) -> u64| -> u64 {
            lcores.iter().fold(0u64, |a, (_, c)| a.wrapping_add(f(c)))
        };
        let ports = labels
            .ports
            .iter()
            .enumerate()
            .take(MAX_PORTS)
            .map(|(i, name)| PortStats {
                name: name.clone(),
                rx_packets: sum(&|c| c.ports[i].rx_packets.get()),
                rx_bytes: sum(&|c| c.ports[i].rx_bytes.get()),
                tx_packets: sum(&|c| c.ports[i].tx_packets.get()),
                tx_bytes: sum(&|c| c.ports[i].tx_bytes.get()),
                tx_dropped: sum(&|c| c.ports[i].tx_dropped.get()),
            })
            .collect();
        let nports = labels.ports.len().min(MAX_PORTS);
        let drops_of = |c: &LcoreCounters| c.drops.iter().fold(0u64, |a, d| a.wrapping_add(d.get()));
        let lcore_stats = lcores
            .iter()
            .map(|(id, c)| LcoreStats {
                lcore: *id,
                rx_packets: c.ports[..nports].iter().map(|p| p.rx_packets.get()).fold(0, u64::wrapping_add),
                tx_packets: c.ports[..nports].iter().map(|p| p.tx_packets.get()).fold(0, u64::wrapping_add),
                dropped: drops_of(c),
                forwarded: c.forwarded.get(),
                to_kernel: c.to_kernel.get(),
                conntrack_entries: c.conntrack_entries.get(),
                snapshot_switches: c.snapshot_switches.get(),
                rx_bursts: c.rx_bursts.get(),
                idle_polls: c.idle_polls.get(),
            })
            .collect();
        let counters: Vec<&LcoreCounters> = lcores.iter().map(|(_, c)| *c).collect();
        let services = labels
            .services
            .iter()
            .map(|l| {
                let t = ServiceTotals::of_slot(l.slot, &counters);
                ServiceStats {
                    name: l.name.clone(),
                    vip: l.vip.to_string(),
                    protocol: l.protocol.to_string(),
                    port: l.port,
                    packets: t.packets.wrapping_sub(l.base.packets),
                    bytes: t.bytes.wrapping_sub(l.base.bytes),
                    new_flows: t.new_flows.wrapping_sub(l.base.new_flows),
                    untracked: t.untracked.wrapping_sub(l.base.untracked),
                }
            })
            .collect();
        let backends = labels
            .backends
            .iter()
            .map(|l| {
                let t = BackendTotals::of_slot(l.slot, &counters);
                BackendStats {
                    service: l.service.clone(),
                    address: l.address.to_string(),
                    packets: t.packets.wrapping_sub(l.base.packets),
                    bytes: t.bytes.wrapping_sub(l.base.bytes),
                }
            })
            .collect();
        let drops = DropReason::ALL
            .iter()
            .map(|r| DropStats { reason: r.as_str().to_string(), packets: sum(&|c| c.drops[*r as usize].get()) })
            .collect();
        StatsReport {
            ports,
            lcores: lcore_stats,
            services,
            backends,
            drops,
            verdicts: VerdictStats {
                forwarded: sum(&|c| c.forwarded.get()),
                replied: sum(&|c| c.replied.get()),
                to_kernel: sum(&|c| c.to_kernel.get()),
                from_kernel: sum(&|c| c.from_kernel.get()),
                dropped: sum(&drops_of),
                icmp_to_backend: sum(&|c| c.icmp_to_backend.get()),
                pmtu_generated: sum(&|c| c.pmtu_generated.get()),
                time_exceeded_sent: sum(&|c| c.time_exceeded_sent.get()),
            },
            conntrack: ConntrackStats {
                hits: sum(&|c| c.conntrack_hits.get()),
                misses: sum(&|c| c.conntrack_misses.get()),
                inserts: sum(&|c| c.conntrack_inserts.get()),
                evictions: sum(&|c| c.conntrack_evictions.get()),
                expired: sum(&|c| c.conntrack_expired.get()),
                rehomed: sum(&|c| c.conntrack_rehomed.get()),
                backend_gone: sum(&|c| c.conntrack_backend_gone.get()),
                reused: sum(&|c| c.conntrack_reused.get()),
                full: sum(&|c| c.conntrack_full.get()),
                entries: sum(&|c| c.conntrack_entries.get()),
                learned_dropped: sum(&|c| c.learned_dropped.get()),
            },
            control: ControlStats::default(),
        }
    }

    /// Drops of `reason` (0 if the report has no such row).
    pub fn drops_of(&self, reason: DropReason) -> u64 {
        self.drops.iter().find(|d| d.reason == reason.as_str()).map_or(0, |d| d.packets)
    }

    /// Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE`, one sample per line).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let mut p = Prom { out: &mut out };
        for (name, help, get) in [
            ("port_rx_packets_total", "Frames received on the port.", (|s: &PortStats| s.rx_packets) as fn(&PortStats) -> u64),
            ("port_rx_bytes_total", "Bytes received on the port.", |s| s.rx_bytes),
            ("port_tx_packets_total", "Frames sent on the port.", |s| s.tx_packets),
            ("port_tx_bytes_total", "Bytes sent on the port.", |s| s.tx_bytes),
            ("port_tx_dropped_total", "Frames the port's TX ring did not take.", |s| s.tx_dropped),
        ] {
            p.family(name, help, "counter", self.ports.iter().map(|s| (vec![("port", s.name.clone())], get(s))));
        }
        for (name, help, kind, get) in [
            ("lcore_rx_packets_total", "Frames received by the lcore.", "counter", (|s: &LcoreStats| s.rx_packets) as fn(&LcoreStats) -> u64),
            ("lcore_tx_packets_total", "Frames sent by the lcore.", "counter", |s| s.tx_packets),
            ("lcore_dropped_total", "Frames dropped by the lcore.", "counter", |s| s.dropped),
            ("lcore_forwarded_total", "Frames the lcore forwarded to backends.", "counter", |s| s.forwarded),
            ("lcore_to_kernel_total", "Frames the lcore handed to the kernel.", "counter", |s| s.to_kernel),
            ("lcore_conntrack_entries", "Live connection-table entries of the lcore.", "gauge", |s| s.conntrack_entries),
            ("lcore_snapshot_switches_total", "Snapshots the lcore switched to.", "counter", |s| s.snapshot_switches),
            ("lcore_rx_bursts_total", "RX polls of the lcore that returned frames.", "counter", |s| s.rx_bursts),
            ("lcore_idle_polls_total", "RX polls of the lcore that returned nothing.", "counter", |s| s.idle_polls),
        ] {
            p.family(name, help, kind, self.lcores.iter().map(|s| (vec![("lcore", s.lcore.to_string())], get(s))));
        }
        let svc_labels = |s: &ServiceStats| {
            vec![
                ("service", s.name.clone()),
                ("vip", s.vip.clone()),
                ("protocol", s.protocol.clone()),
                ("port", s.port.map_or("*".to_string(), |p| p.to_string())),
            ]
        };
        for (name, help, get) in [
            ("service_packets_total", "Packets forwarded for the service.", (|s: &ServiceStats| s.packets) as fn(&ServiceStats) -> u64),
            ("service_bytes_total", "Bytes forwarded for the service (before encapsulation).", |s| s.bytes),
            ("service_new_flows_total", "Connection-table entries created for the service.", |s| s.new_flows),
            ("service_untracked_total", "Packets forwarded by the Maglev choice without a table entry.", |s| s.untracked),
        ] {
            p.family(name, help, "counter", self.services.iter().map(|s| (svc_labels(s), get(s))));
        }
        for (name, help, get) in [
            ("backend_packets_total", "Packets sent to the backend.", (|s: &BackendStats| s.packets) as fn(&BackendStats) -> u64),
            ("backend_bytes_total", "Bytes sent to the backend (before encapsulation).", |s| s.bytes),
        ] {
            p.family(
                name,
                help,
                "counter",
                self.backends.iter().map(|s| (vec![("service", s.service.clone()), ("backend", s.address.clone())], get(s))),
            );
        }
        p.family(
            "drops_total",
            "Frames dropped, by reason.",
            "counter",
            self.drops.iter().map(|d| (vec![("reason", d.reason.clone())], d.packets)),
        );
        let v = &self.verdicts;
        p.family(
            "verdicts_total",
            "Pipeline verdicts.",
            "counter",
            [
                ("forwarded", v.forwarded),
                ("replied", v.replied),
                ("to_kernel", v.to_kernel),
                ("from_kernel", v.from_kernel),
                ("dropped", v.dropped),
            ]
            .into_iter()
            .map(|(k, n)| (vec![("verdict", k.to_string())], n)),
        );
        let c = &self.conntrack;
        let ctl = &self.control;
        for (name, help, kind, n) in [
            ("icmp_to_backend_total", "ICMP errors routed to the backend of the quoted flow.", "counter", v.icmp_to_backend),
            ("pmtu_generated_total", "ICMP frag-needed / packet-too-big generated.", "counter", v.pmtu_generated),
            ("time_exceeded_sent_total", "ICMP time exceeded sent for packets whose TTL ran out.", "counter", v.time_exceeded_sent),
            ("conntrack_hits_total", "Connection-table lookups that found a flow.", "counter", c.hits),
            ("conntrack_misses_total", "Connection-table lookups that found none.", "counter", c.misses),
            ("conntrack_inserts_total", "Flows inserted into the connection table.", "counter", c.inserts),
            ("conntrack_evictions_total", "Half-open flows evicted to make room.", "counter", c.evictions),
            ("conntrack_expired_total", "Idle flows expired.", "counter", c.expired),
            ("conntrack_rehomed_total", "Flows found again by backend identity after a reload moved the backend.", "counter", c.rehomed),
            ("conntrack_backend_gone_total", "Flows whose backend left the config, re-pinned to the Maglev choice.", "counter", c.backend_gone),
            ("conntrack_reused_total", "SYNs on a closing entry (client port reuse), scheduled as new flows.", "counter", c.reused),
            ("conntrack_full_total", "New flows the full connection table refused (forwarded untracked).", "counter", c.full),
            ("conntrack_entries", "Live connection-table entries, all lcores.", "gauge", c.entries),
            ("learned_dropped_total", "Neighbor observations lost to a full learned queue.", "counter", c.learned_dropped),
            ("reloads_total", "Successful configuration reloads.", "counter", ctl.reloads),
            ("reload_errors_total", "Refused configuration reloads.", "counter", ctl.reload_errors),
            ("snapshots_published_total", "Snapshots handed to the lcores.", "counter", ctl.snapshots_published),
            ("neighbors_learned", "Next-hop MACs learned from ARP/ND.", "gauge", ctl.neighbors_learned),
            ("unresolved_next_hops", "Backend next hops without a MAC.", "gauge", ctl.unresolved_next_hops),
        ] {
            p.family(name, help, kind, std::iter::once((Vec::new(), n)));
        }
        out
    }

    /// A readable multi-section table for `dataplane stats`.
    pub fn render_table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "{:<24}{:>14}{:>16}{:>14}{:>16}{:>12}", "PORT", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "TX DROPPED");
        for p in &self.ports {
            let _ = writeln!(
                o,
                "{:<24}{:>14}{:>16}{:>14}{:>16}{:>12}",
                p.name, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.tx_dropped
            );
        }
        let _ = writeln!(
            o,
            "\n{:<24}{:>14}{:>14}{:>12}{:>14}{:>14}{:>12}{:>11}",
            "LCORE", "RX PKTS", "TX PKTS", "DROPPED", "FORWARDED", "TO KERNEL", "FLOWS", "SNAPSHOTS"
        );
        for l in &self.lcores {
            let _ = writeln!(
                o,
                "{:<24}{:>14}{:>14}{:>12}{:>14}{:>14}{:>12}{:>11}",
                l.lcore, l.rx_packets, l.tx_packets, l.dropped, l.forwarded, l.to_kernel, l.conntrack_entries, l.snapshot_switches
            );
        }
        let _ = writeln!(o, "\n{:<24}{:<32}{:>14}{:>16}{:>12}{:>12}", "SERVICE", "VIP", "PACKETS", "BYTES", "NEW FLOWS", "UNTRACKED");
        for s in &self.services {
            let vip = format!("{} {}:{}", s.protocol, s.vip, s.port.map_or("*".to_string(), |p| p.to_string()));
            let _ = writeln!(o, "{:<24}{:<32}{:>14}{:>16}{:>12}{:>12}", s.name, vip, s.packets, s.bytes, s.new_flows, s.untracked);
        }
        let _ = writeln!(o, "\n{:<24}{:<32}{:>14}{:>16}", "BACKEND OF", "ADDRESS", "PACKETS", "BYTES");
        for b in &self.backends {
            let _ = writeln!(o, "{:<24}{:<32}{:>14}{:>16}", b.service, b.address, b.packets, b.bytes);
        }
        let v = &self.verdicts;
        let _ = writeln!(
            o,
            "\nverdicts: forwarded {} replied {} to_kernel {} from_kernel {} dropped {} icmp_to_backend {} pmtu_generated {} time_exceeded_sent {}",
            v.forwarded, v.replied, v.to_kernel, v.from_kernel, v.dropped, v.icmp_to_backend, v.pmtu_generated, v.time_exceeded_sent
        );
        let nonzero: Vec<String> =
            self.drops.iter().filter(|d| d.packets > 0).map(|d| format!("{} {}", d.reason, d.packets)).collect();
        let _ = writeln!(o, "drops: {}", if nonzero.is_empty() { "none".to_string() } else { nonzero.join(", ") });
        let c = &self.conntrack;
        let _ = writeln!(
            o,
            "conntrack: entries {} hits {} misses {} inserts {} evictions {} expired {} rehomed {} backend_gone {} reused {} full {} learned_dropped {}",
            c.entries, c.hits, c.misses, c.inserts, c.evictions, c.expired, c.rehomed, c.backend_gone, c.reused, c.full, c.learned_dropped
        );
        let ctl = &self.control;
        let _ = writeln!(
            o,
            "control: reloads {} reload_errors {} snapshots {} neighbors_learned {} unresolved_next_hops {}",
            ctl.reloads, ctl.reload_errors, ctl.snapshots_published, ctl.neighbors_learned, ctl.unresolved_next_hops
        );
        if let Some(e) = &ctl.last_reload_error {
            let _ = writeln!(o, "last reload error: {e}");
        }
        o
    }
}

/// Prometheus text writer: one `# HELP`/`# TYPE` header per family, escaped label values.
struct Prom<'a> {
    out: &'a mut String,
}

impl Prom<'_> {
    fn family<I>(&mut self, name: &str, help: &str, kind: &str, samples: I)
    where
        I: IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
    {
        let _ = writeln!(self.out, "# HELP dataplane_{name} {help}");
        let _ = writeln!(self.out, "# TYPE dataplane_{name} {kind}");
        for (labels, value) in samples {
            let _ = write!(self.out, "dataplane_{name}");
            if !labels.is_empty() {
                self.out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {value}");
        }
    }
}

/// Escapes a label value per the exposition format: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
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

    fn labels() -> StatsLabels {
        StatsLabels {
            ports: vec!["nic0".into(), "kni0".into()],
            services: vec![
                ServiceLabel { name: "web".into(), vip: "198.18.0.100".parse().unwrap(), protocol: "tcp", port: Some(80), slot: 0, base: Default::default() },
                ServiceLabel { name: "any".into(), vip: "198.18.0.100".parse().unwrap(), protocol: "udp", port: None, slot: 1, base: Default::default() },
            ],
            backends: vec![
                BackendLabel { service: "web".into(), address: "198.18.0.10".parse().unwrap(), slot: 0, base: Default::default() },
                BackendLabel { service: "web".into(), address: "198.18.0.11".parse().unwrap(), slot: 1, base: Default::default() },
                BackendLabel { service: "any".into(), address: "fd00::1".parse().unwrap(), slot: 2, base: Default::default() },
            ],
        }
    }

    /// Every counter kind is summed over lcores into the slot its label names; the per-lcore
    /// rows keep each lcore's own numbers.
    #[test]
    fn report_sums_lcores() {
        let (a, b) = (LcoreCounters::new(), LcoreCounters::new());
        a.ports[0].rx_packets.add(10);
        b.ports[0].rx_packets.add(5);
        a.ports[1].tx_bytes.add(1000);
        b.ports[1].tx_dropped.add(2);
        a.services[1].new_flows.add(3);
        b.services[1].new_flows.add(4);
        a.backends[2].bytes.add(700);
        b.backends[2].bytes.add(300);
        b.backends[0].packets.add(9);
        a.drop(DropReason::NoBackend);
        b.drop(DropReason::NoBackend);
        b.drop(DropReason::Truncated);
        a.forwarded.add(8);
        b.forwarded.add(1);
        a.conntrack_rehomed.add(4);
        b.conntrack_backend_gone.add(2);
        a.conntrack_reused.add(5);
        a.conntrack_full.add(1);
        b.learned_dropped.add(3);
        a.time_exceeded_sent.add(6);
        LcoreCounters::set(&a.conntrack_entries, 100);
        LcoreCounters::set(&b.conntrack_entries, 50);
        let r = StatsReport::collect(&labels(), &[(1, &a), (2, &b)]);
        assert_eq!(r.ports[0], PortStats { name: "nic0".into(), rx_packets: 15, ..Default::default() });
        assert_eq!(r.ports[1].tx_bytes, 1000);
        assert_eq!(r.ports[1].tx_dropped, 2);
        assert_eq!(r.services[1].new_flows, 7);
        assert_eq!(r.services[1].port, None);
        assert_eq!(r.backends[2].bytes, 1000);
        assert_eq!(r.backends[2].address, "fd00::1");
        assert_eq!(r.backends[0].packets, 9);
        assert_eq!(r.drops_of(DropReason::NoBackend), 2);
        assert_eq!(r.drops_of(DropReason::Truncated), 1);
        assert_eq!(r.drops.len(), DropReason::ALL.len(), "every reason is reported, zero or not");
        assert_eq!(r.verdicts.forwarded, 9);
        assert_eq!(r.verdicts.dropped, 3);
        assert_eq!(r.conntrack.entries, 150);
        assert_eq!((r.conntrack.rehomed, r.conntrack.backend_gone, r.conntrack.reused, r.conntrack.full, r.conntrack.learned_dropped), (4, 2, 5, 1, 3));
        assert_eq!(r.verdicts.time_exceeded_sent, 6);
        let text = r.render_prometheus();
        for want in ["time_exceeded_sent_total 6\n", "conntrack_rehomed_total 4\n", "conntrack_backend_gone_total 2\n", "conntrack_reused_total 5\n", "conntrack_full_total 1\n", "learned_dropped_total 3\n"] {
            assert!(text.contains(want), "{want} missing in\n{text}");
        }
        let table = r.render_table();
        assert!(table.contains("rehomed 4 backend_gone 2 reused 5 full 1 learned_dropped 3"), "{table}");
        assert_eq!(r.lcores.len(), 2);
        assert_eq!((r.lcores[0].lcore, r.lcores[0].rx_packets, r.lcores[0].dropped), (1, 10, 1));
        assert_eq!((r.lcores[1].lcore, r.lcores[1].rx_packets, r.lcores[1].dropped), (2, 5, 2));
        // The report survives the JSON round trip the control socket puts it through.
        let back: StatsReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    /// Prometheus text: headers once per family, labelled samples with the summed values,
    /// label values escaped, every line either a comment or `name{labels} value`.
    #[test]
    fn prometheus_text() {
        let a = LcoreCounters::new();
        a.drop(DropReason::NoBackend);
        a.drop(DropReason::NoBackend);
        a.drop(DropReason::NoBackend);
        a.services[0].packets.add(42);
        a.backends[1].bytes.add(77);
        a.rx_bursts.add(5);
        a.idle_polls.add(9);
        let mut l = labels();
        l.services[1].name = "we\"ird\nname".into();
        let text = StatsReport::collect(&l, &[(3, &a)]).render_prometheus();
        assert!(text.contains("dataplane_drops_total{reason=\"no_backend\"} 3\n"), "{text}");
        assert!(text.contains("dataplane_drops_total{reason=\"truncated\"} 0\n"));
        assert!(text.contains(
            "dataplane_service_packets_total{service=\"web\",vip=\"198.18.0.100\",protocol=\"tcp\",port=\"80\"} 42\n"
        ));
        assert!(text.contains("service=\"we\\\"ird\\nname\",vip=\"198.18.0.100\",protocol=\"udp\",port=\"*\""), "{text}");
        assert!(text.contains("dataplane_backend_bytes_total{service=\"web\",backend=\"198.18.0.11\"} 77\n"));
        assert!(text.contains("dataplane_lcore_dropped_total{lcore=\"3\"} 3\n"));
        assert!(text.contains("dataplane_lcore_rx_bursts_total{lcore=\"3\"} 5\n"), "{text}");
        assert!(text.contains("dataplane_lcore_idle_polls_total{lcore=\"3\"} 9\n"), "{text}");
        assert!(text.contains("# TYPE dataplane_conntrack_entries gauge\n"));
        assert_eq!(text.matches("# TYPE dataplane_drops_total counter").count(), 1);
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let (name, value) = line.rsplit_once(' ').expect(line);
            assert!(name.starts_with("dataplane_"), "{line}");
            value.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
        }
    }

    fn config(backends: &[&str]) -> Config {
        let mut t = String::from(
            "[eal]\nmain_lcore = 0\nlcores = [1]\n[[port]]\nname = \"nic0\"\ndevargs = \"net_null0\"\nrole = \"nic\"\n\
             [host]\nipv4 = \"198.18.0.2/24\"\n[[service]]\nname = \"web\"\nvip = \"198.18.0.100\"\nprotocol = \"tcp\"\nport = 80\n",
        );
        for b in backends {
            t.push_str(&format!("[[service.backend]]\naddress = \"{b}\"\n"));
        }
        Config::parse(&t).unwrap()
    }

    /// Slot hand-over when every slot has been used once: the newcomer takes the slot retired
    /// longest ago, and starts from the baseline taken then, so it reports only its own counts.
    #[test]
    fn reused_slot_starts_from_its_baseline() {
        let mut slots = CounterSlots::with_capacity(4, 3);
        let c = LcoreCounters::new();
        let l = slots.assign(&config(&["198.18.0.10", "198.18.0.11", "198.18.0.12"]), &[&c]);
        assert_eq!(l.backend_slots(), vec![0, 1, 2]);
        c.backends[0].packets.add(5);
        c.backends[1].packets.add(6);
        // .10 and .11 leave (in that slot order), .13 arrives: no fresh slot is left.
        let l = slots.assign(&config(&["198.18.0.12", "198.18.0.13"]), &[&c]);
        assert_eq!(l.backend_slots(), vec![2, 0], "kept slot, then the oldest retired one");
        assert_eq!(l.backends[1].base, BackendTotals { packets: 5, bytes: 0 });
        c.backends[0].packets.add(2);
        let r = StatsReport::collect(&l, &[(1, &c)]);
        assert_eq!((r.backends[1].address.as_str(), r.backends[1].packets), ("198.18.0.13", 2));
        // .11 comes back: slot 1 (retired at the same reload as 0, later in slot order).
        let l = slots.assign(&config(&["198.18.0.11", "198.18.0.12", "198.18.0.13"]), &[&c]);
        assert_eq!(l.backend_slots(), vec![1, 2, 0]);
        let r = StatsReport::collect(&l, &[(1, &c)]);
        assert_eq!(r.backends.iter().map(|b| b.packets).collect::<Vec<_>>(), vec![0, 0, 2]);
    }

    /// The human table names every port, service and backend, shows non-zero drop reasons and
    /// each lcore's snapshot switches.
    #[test]
    fn table_text() {
        let a = LcoreCounters::new();
        a.drop(DropReason::NoNeighbor);
        a.snapshot_switches.add(3);
        let t = StatsReport::collect(&labels(), &[(1, &a)]).render_table();
        for want in ["nic0", "kni0", "web", "tcp 198.18.0.100:80", "udp 198.18.0.100:*", "fd00::1", "drops: no_neighbor 1", "SNAPSHOTS"] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        let row = t.lines().find(|l| l.starts_with('1')).expect("the lcore row");
        assert!(row.ends_with(" 3"), "snapshot switches in the lcore row: {row:?}");
    }
}
