//! The packet pipeline: pure Rust over packet bytes, run to completion, one instance per lcore.
//!
//! Contract: `Pipeline::process(buf, port, now)` parses the frame through zero-copy views,
//! classifies it, rewrites it in place (encapsulation grows it at the front, replies are built
//! over the received bytes) and returns a [`Verdict`]. It never allocates, locks, blocks or makes
//! a syscall; time comes in as an argument. Every `Verdict::Drop` carries a [`DropReason`] and is
//! counted at one exit point.
//!
//! Stages (each returns a final verdict or hands on, Katran style):
//! 1. **Port**: a frame from a `kernel` port goes out of its NIC unchanged (`from_kernel`).
//! 2. **L2**: Ethernet and at most one 802.1Q tag ([`L2Info`]); the tag stays in place on every
//!    output (forwarded, encapsulated or replied).
//! 3. **ARP / ND** ([`neighbor`]): requests and solicitations for a VIP are answered in place;
//!    replies and advertisements are learned (pushed to the control plane) and passed to the
//!    kernel; everything else about neighbors is the kernel's.
//! 4. **IP**: a destination that is not a VIP goes to the kernel untouched. VIP traffic is
//!    checked (IPv4 header checksum, fragments, extension headers) and classified:
//!    TCP/UDP → service → connection table or Maglev → [`forward`]; ICMP echo → reply in place;
//!    ICMP errors quoting a VIP flow → forwarded to that flow's backend ([`icmp`]).
//! 5. **Forwarding** ([`forward`]): `tunnel` (IPIP, IP6IP6, 4in6, GUE) or `dsr-l2`; too big
//!    for the tunnel → ICMP frag-needed / packet-too-big built in place.
//!
//! Policies:
//! - **Fragments** of VIP traffic are dropped (`fragment`), as Katran does: later fragments carry
//!   no ports, so they could not follow their first fragment to the same backend.
//! - **New flows** are tracked only on TCP SYN (without ACK) or any UDP datagram. A TCP packet of
//!   an unknown flow goes to the Maglev choice untracked (so a restarted balancer keeps most
//!   connections). When the connection table cannot take a new flow (its bucket is full of
//!   established flows) the packet is still forwarded by Maglev, untracked, and counted in the
//!   service's `untracked` counter — `DropReason::TableFull` is never produced by this pipeline.
//! - **TTL**: tunnel modes are a routing hop: the inner TTL / hop limit is decremented, and a
//!   packet arriving with 1 or 0 is dropped (`ttl_exceeded`) and answered like a router does,
//!   with ICMP time exceeded / ICMPv6 hop limit exceeded from the VIP (`time_exceeded_sent`;
//!   not for an ICMP error). `dsr-l2` is a bridge hop: only MACs change.
//! - **Too big**: an encapsulated packet longer than the MTU gets ICMP frag-needed (IPv4 with
//!   DF) or packet-too-big (IPv6) carrying the MTU minus the tunnel overhead; an IPv4 packet
//!   without DF is dropped (`too_big`): we never fragment.
//! - **Bursts**: [`Pipeline::process_burst_with`] first parses every frame up to the
//!   connection table (untagged IPv4 without options at fixed offsets, everything else through
//!   the checked views) and prefetches the connection-table tag line, then the matching entry
//!   (or, when there is none, the service's Maglev slot) of every TCP/UDP VIP frame of the
//!   burst so their cache misses overlap, then processes the frames in order (same results as
//!   `process` one by one, which always takes the general parse), hashing each flow once.
//! - **Snapshots**: conntrack entries hold backend identities; a reload that moves or removes a
//!   backend is resolved lazily at the flow's next packet.

pub mod forward;
pub mod icmp;
pub mod neighbor;
pub mod snapshot;
pub mod verdict;

use std::net::IpAddr;
use std::sync::Arc;

use crate::conntrack::{ConnTable, FlowKey, Insert, State, TcpSignal};
use crate::limits::BURST_SIZE;
use crate::config::PortRole;
use crate::stats::LcoreCounters;
use crate::wire::{
    EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, L2Info, TcpFlags, TcpPacket, UdpPacket,
};

pub use snapshot::{
    Backend, BackendSpec, BuildError, Encap, HostSpec, Mode, Neighbor, NeighborTable, PortInfo,
    Service, ServiceSpec, Snapshot, SnapshotBuilder, SourceRange, Unresolved, VipServices,
};
pub use verdict::{DropReason, PortId, Verdict};

/// The learned-neighbor queue type of [`Pipeline::new`], re-exported so callers need not name
/// crossbeam themselves.
pub use crossbeam::queue::ArrayQueue;

/// A packet buffer the pipeline may rewrite in place, grow at the front (encapsulation) or back,
/// and shrink. Implemented by `dpdk::Mbuf` and by [`VecBuf`] for tests and fuzzing.
pub trait PacketBuf {
    /// The frame, from the first byte of the Ethernet header.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front. Returns false (frame unchanged) when the
    /// headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns false (frame unchanged) if `n > len`.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the frame by `n` bytes at the end. Returns false (frame unchanged) when the
    /// tailroom is too small.
    fn append(&mut self, n: usize) -> bool;
    /// Shortens the frame to `len` bytes (no-op if it is already shorter).
    fn truncate(&mut self, len: usize);
}

/// A heap buffer with DPDK-like headroom, for tests, fuzzing and the pcap tools.
#[derive(Clone, Debug)]
pub struct VecBuf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// Headroom left in front of the frame, as in DPDK's `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;
    /// Total buffer size, as DPDK's default mbuf data room (2048 + headroom).
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    /// Copies `frame` into a new buffer with [`Self::HEADROOM`] bytes of headroom.
    /// Frames longer than the buffer are cut (as a NIC would not deliver them at all).
    pub fn new(frame: &[u8]) -> Self {
        let mut bytes = vec![0u8; Self::CAPACITY];
        let len = frame.len().min(Self::CAPACITY - Self::HEADROOM);
        bytes[Self::HEADROOM..Self::HEADROOM + len].copy_from_slice(&frame[..len]);
        VecBuf { bytes, start: Self::HEADROOM, end: Self::HEADROOM + len }
    }

    /// Makes this buffer hold `frame` again with [`Self::HEADROOM`] bytes of headroom, without
    /// allocating (for replaying the same frames, as a NIC refills its mbufs).
    pub fn reset(&mut self, frame: &[u8]) {
        let len = frame.len().min(Self::CAPACITY - Self::HEADROOM);
        self.bytes[Self::HEADROOM..Self::HEADROOM + len].copy_from_slice(&frame[..len]);
        (self.start, self.end) = (Self::HEADROOM, Self::HEADROOM + len);
    }
}

impl PacketBuf for VecBuf {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        if n > self.bytes.len() - self.end {
            return false;
        }
        self.end += n;
        true
    }
    #[inline]
    fn truncate(&mut self, len: usize) {
        if len < self.end - self.start {
            self.end = self.start + len;
        }
    }
}

/// Software prefetch for [`Pipeline::process_burst_with`]: start loading the cache line that
/// holds a value, without waiting for it. The DPDK runtime passes one that issues the CPU's
/// prefetch instruction (which needs `unsafe`, so it lives in the `dpdk` module).
pub trait Prefetch {
    /// Starts moving the cache line holding the start of `*r` towards L1. Must not block or
    /// fault.
    fn prefetch<T: Copy>(&self, r: &T);
}

/// A [`Prefetch`] in safe Rust: an actual load of the value (kept by `black_box`), so the
/// loads of a burst are at least independent of each other; unlike a real prefetch, each
/// still holds the CPU's reorder window until its line arrives.
#[derive(Clone, Copy, Debug, Default)]
pub struct TouchPrefetch;

impl Prefetch for TouchPrefetch {
    #[inline]
    fn prefetch<T: Copy>(&self, r: &T) {
        std::hint::black_box(*r);
    }
}

/// Minimum interval between two solicitations for one next hop.
pub const SOLICIT_INTERVAL_NS: u64 = 1_000_000_000;

/// What one packet did, for the single counting exit point.
#[derive(Clone, Copy, Debug, Default)]
struct Acct {
    from_kernel: bool,
    service: Option<u16>,
    backend: Option<u16>,
    new_flow: bool,
    untracked: bool,
    icmp_to_backend: bool,
    pmtu: bool,
    time_exceeded: bool,
}

/// The parsed L3/L4 facts of a VIP packet: where its headers are and what the IP stage found.
/// The addresses stay in the frame ([`Flow::src`], [`Flow::dst`] read them), and the offsets are
/// 16 bits (a frame is at most an mbuf's 65535 bytes), which keeps this at 14 bytes: it is
/// copied through the stages, a burst holds one per frame, and at 32 bytes its copies were
/// store-forwarding stalls in `perf annotate` of the lcore loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flow {
    /// Offset of the IP header in the frame (after Ethernet and the 802.1Q tag, if any).
    l3: u16,
    /// Absolute offset of the L4 header in the frame.
    l4: u16,
    /// Absolute end of the IP packet in the frame (Ethernet padding starts here).
    end: u16,
    /// The VIP's services (looked up once, by the IP stage).
    pub vip: VipServices,
    /// IP protocol of the L4 header.
    pub proto: u8,
    /// The frame carries an 802.1Q tag (kept on every output).
    pub tagged: bool,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Flow {
    /// A flow whose headers are at `l3` (IP), `l4` (its payload) and end at `end`, all within
    /// one frame (so each fits 16 bits: the callers' offsets come from a frame's parse).
    #[inline]
    fn new(l3: usize, l4: usize, end: usize, vip: VipServices, proto: u8, tagged: bool, v6: bool) -> Flow {
        debug_assert!(l3 <= l4 && l4 <= end && end <= usize::from(u16::MAX));
        Flow { l3: l3 as u16, l4: l4 as u16, end: end as u16, vip, proto, tagged, v6 }
    }

    /// Offset of the IP header in the frame.
    #[inline]
    pub fn l3(&self) -> usize {
        usize::from(self.l3)
    }

    /// Offset of the L4 header in the frame.
    #[inline]
    pub fn l4(&self) -> usize {
        usize::from(self.l4)
    }

    /// End of the IP packet in the frame.
    #[inline]
    pub fn end(&self) -> usize {
        usize::from(self.end)
    }

    /// ICMP over IPv4 or ICMPv6 over IPv6 (the protocols the `icmp` stage handles).
    fn is_icmp(&self) -> bool {
        self.proto == if self.v6 { IpProtocol::ICMPV6.0 } else { IpProtocol::ICMP.0 }
    }

    /// Client address, from the IP header of `frame` (the frame the IP stage parsed, before
    /// any rewrite). `src` and `dst` stay two accessors: one returning both as a tuple cost
    /// 80 instructions per packet (the tuple went through memory).
    #[inline]
    pub fn src(&self, frame: &[u8]) -> IpAddr {
        let ip = &frame[self.l3()..];
        if self.v6 {
            IpAddr::V6(Ipv6Packet::new_unchecked(ip).src_addr())
        } else {
            IpAddr::V4(Ipv4Packet::new_unchecked(ip).src_addr())
        }
    }

    /// The VIP, from the IP header of `frame` (as for [`Self::src`]).
    #[inline]
    pub fn dst(&self, frame: &[u8]) -> IpAddr {
        let ip = &frame[self.l3()..];
        if self.v6 {
            IpAddr::V6(Ipv6Packet::new_unchecked(ip).dst_addr())
        } else {
            IpAddr::V4(Ipv4Packet::new_unchecked(ip).dst_addr())
        }
    }
}

/// The per-packet context: borrowed pieces of the pipeline plus the packet's accounting.
pub(crate) struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub ct: &'a mut ConnTable,
    pub counters: &'a LcoreCounters,
    pub learned: &'a ArrayQueue<Neighbor>,
    pub learned_dropped: &'a mut u64,
    pub in_port: PortId,
    /// MAC of the arrival port, read once per burst (see [`Ctx::nic_mac`]).
    in_mac: crate::wire::EthernetAddress,
    pub now_ns: u64,
    acct: Acct,
}

impl Ctx<'_> {
    /// The exception path: the arrival port's kernel port, if it has one.
    pub fn to_kernel(&self) -> Verdict {
        match self.snap.peer(self.in_port) {
            Some(_) => Verdict::ToKernel,
            None => Verdict::Drop(DropReason::Unsupported),
        }
    }

    /// MAC of the arrival port (the source MAC of everything sent back out of it). Looked up
    /// once per burst: read per packet from the snapshot's port list, the load stood out in
    /// `perf annotate` of `forward` (a line shared with other heap data, often not in L1).
    #[inline]
    pub fn nic_mac(&self) -> crate::wire::EthernetAddress {
        self.in_mac
    }

    /// Pushes a learned neighbor to the control plane (never blocks; counts overflow).
    pub fn learn(&mut self, ip: IpAddr, mac: crate::wire::EthernetAddress) {
        if self.learned.push(Neighbor { ip, mac, port: self.in_port }).is_err() {
            *self.learned_dropped += 1;
            self.counters.learned_dropped.inc();
        }
    }

    pub fn mark_icmp_to_backend(&mut self) {
        self.acct.icmp_to_backend = true;
    }

    pub fn mark_pmtu(&mut self) {
        self.acct.pmtu = true;
    }

    pub fn mark_time_exceeded(&mut self) {
        self.acct.time_exceeded = true;
    }

    pub fn set_service(&mut self, si: u16, bi: Option<u16>) {
        self.acct.service = Some(si);
        self.acct.backend = bi;
    }

    /// The backend for a flow of service `si`: the tracked one (re-resolved by identity if a
    /// reload moved it), else the Maglev choice; tracks a new flow when `track` says so.
    /// `update` carries the TCP flags when the packet belongs to the flow itself (not an ICMP
    /// error about it).
    ///
    /// A SYN (`track == Some(Syn)`) that finds a `Closing` entry opens a new connection on a
    /// reused client port: it is scheduled like any new flow (the current Maglev choice, counted
    /// in `new_flows` and `conntrack_reused`), not pinned to the closed connection's backend —
    /// IPVS's `conn_reuse_mode` and Katran's "a SYN is always scheduled" give the same answer.
    pub fn choose_backend(&mut self, si: u16, key: &FlowKey, hash: u64, track: Option<State>, update: Option<Option<TcpSignal>>) -> Result<u16, DropReason> {
        let snap = self.snap;
        let svc = &snap.services[usize::from(si)];
        let maglev = |h: u64| svc.table.lookup(h);
        if let Some(mut e) = self.ct.lookup(key, hash, self.now_ns) {
            self.counters.conntrack_hits.inc();
            let idx = e.backend_index();
            let cached_ok = snap.backends.get(usize::from(idx)).is_some_and(|b| b.service == si && b.key == e.backend());
            let bi = if track == Some(State::Syn) && e.state() == State::Closing {
                let i = maglev(hash).ok_or(DropReason::NoBackend)?;
                e.set_backend(snap.backends[usize::from(i)].key, i);
                self.counters.conntrack_reused.inc();
                self.acct.new_flow = true;
                i
            } else if cached_ok {
                idx
            } else if let Some(i) = snap.find_backend(si, &e.backend()) {
                e.set_backend(e.backend(), i);
                self.counters.conntrack_rehomed.inc();
                i
            } else {
                // The flow's backend left the config: the new Maglev choice takes over.
                let i = maglev(hash).ok_or(DropReason::NoBackend)?;
                e.set_backend(snap.backends[usize::from(i)].key, i);
                self.counters.conntrack_backend_gone.inc();
                self.acct.untracked = true;
                i
            };
            if let Some(sig) = update {
                e.update(sig, self.now_ns);
            }
            return Ok(bi);
        }
        self.counters.conntrack_misses.inc();
        let bi = maglev(hash).ok_or(DropReason::NoBackend)?;
        match track {
            Some(state) => {
                let key_b = snap.backends[usize::from(bi)].key;
                match self.ct.insert(key, hash, state, key_b, bi, self.now_ns) {
                    Insert::Inserted => {
                        self.counters.conntrack_inserts.inc();
                        self.acct.new_flow = true;
                    }
                    Insert::EvictedSyn => {
                        self.counters.conntrack_inserts.inc();
                        self.counters.conntrack_evictions.inc();
                        self.acct.new_flow = true;
                    }
                    Insert::Full => {
                        self.counters.conntrack_full.inc();
                        self.acct.untracked = true;
                    }
                }
            }
            None => self.acct.untracked = true,
        }
        Ok(bi)
    }
}

/// One lcore's pipeline: its snapshot, its connection table and its counters.
#[derive(Debug)]
pub struct Pipeline {
    snap: Arc<Snapshot>,
    counters: Arc<LcoreCounters>,
    learned: Arc<ArrayQueue<Neighbor>>,
    conntrack: ConnTable,
    /// Per unresolved next hop of the current snapshot: earliest time of the next solicitation.
    solicit_due: Vec<u64>,
    solicit_cursor: usize,
    learned_dropped: u64,
}

impl Pipeline {
    /// A pipeline with a connection table of `conntrack_capacity` entries (allocated now, see
    /// [`crate::conntrack::BYTES_PER_ENTRY`]).
    pub fn new(snapshot: Arc<Snapshot>, counters: Arc<LcoreCounters>, learned: Arc<ArrayQueue<Neighbor>>, conntrack_capacity: usize) -> Self {
        let conntrack = ConnTable::new(conntrack_capacity, snapshot.timeouts);
        Self::with_conntrack(snapshot, counters, learned, conntrack)
    }

    /// A pipeline over a connection table the caller built (the runtime builds it on huge
    /// pages, see [`ConnTable::with_advice`]).
    pub fn with_conntrack(snapshot: Arc<Snapshot>, counters: Arc<LcoreCounters>, learned: Arc<ArrayQueue<Neighbor>>, conntrack: ConnTable) -> Self {
        let mut p = Pipeline {
            snap: snapshot,
            counters,
            learned,
            conntrack,
            solicit_due: Vec::new(),
            solicit_cursor: 0,
            learned_dropped: 0,
        };
        p.solicit_due = vec![0; p.snap.unresolved.len()];
        p
    }

    /// Switches to a new snapshot (between bursts). Conntrack entries are re-resolved lazily.
    pub fn set_snapshot(&mut self, s: Arc<Snapshot>) {
        self.conntrack.set_timeouts(s.timeouts);
        // Keep the rate limit of next hops that are still unresolved.
        let mut due = vec![0u64; s.unresolved.len()];
        for (i, u) in s.unresolved.iter().enumerate() {
            if let Some(j) = self.snap.unresolved.iter().position(|o| o == u) {
                due[i] = self.solicit_due.get(j).copied().unwrap_or(0);
            }
        }
        self.solicit_due = due;
        self.solicit_cursor = 0;
        self.snap = s;
        self.counters.snapshot_switches.inc();
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// The connection table (for stats and tests).
    pub fn conntrack(&self) -> &ConnTable {
        &self.conntrack
    }

    /// Neighbors that could not be queued because the learned queue was full.
    pub fn learned_dropped(&self) -> u64 {
        self.learned_dropped
    }

    /// MAC of port `id` (all zeros for a port the snapshot does not know).
    fn port_mac(&self, id: PortId) -> crate::wire::EthernetAddress {
        self.snap.port(id).map(|p| p.mac).unwrap_or_default()
    }

    /// Processes one frame received on `in_port` at `now_ns` (see the module docs).
    pub fn process<B: PacketBuf>(&mut self, buf: &mut B, in_port: PortId, now_ns: u64) -> Verdict {
        let in_mac = self.port_mac(in_port);
        self.run(buf, in_port, in_mac, now_ns, classify)
    }

    /// Runs `stage` (all of [`classify`], or the rest of a frame [`front`] already parsed) on
    /// one frame and counts its verdict at the one exit point.
    #[inline]
    fn run<B: PacketBuf>(&mut self, buf: &mut B, in_port: PortId, in_mac: crate::wire::EthernetAddress, now_ns: u64, stage: impl FnOnce(&mut Ctx<'_>, &mut B) -> Verdict) -> Verdict {
        let rx_len = buf.data().len() as u64;
        let mut ctx = Ctx {
            snap: &self.snap,
            ct: &mut self.conntrack,
            counters: &self.counters,
            learned: &self.learned,
            learned_dropped: &mut self.learned_dropped,
            in_port,
            in_mac,
            now_ns,
            acct: Acct::default(),
        };
        let verdict = stage(&mut ctx, buf);
        let acct = ctx.acct;
        // The one exit point where verdicts, drops, services and backends are counted.
        let c = &*self.counters;
        match verdict {
            Verdict::Forward(_) if acct.from_kernel => c.from_kernel.inc(),
            Verdict::Forward(_) => c.forwarded.inc(),
            // An expired packet is dropped as `ttl_exceeded` even when answered.
            Verdict::Reply if acct.time_exceeded => {
                c.drop(DropReason::TtlExceeded);
                c.time_exceeded_sent.inc();
            }
            Verdict::Reply => c.replied.inc(),
            Verdict::ToKernel => c.to_kernel.inc(),
            Verdict::Drop(r) => c.drop(r),
        }
        if acct.icmp_to_backend && matches!(verdict, Verdict::Forward(_)) {
            c.icmp_to_backend.inc();
        }
        if acct.pmtu && verdict == Verdict::Reply {
            c.pmtu_generated.inc();
        }
        if let Some(si) = acct.service {
            // Counters live in the identity-keyed slots the snapshot names (see `stats`).
            let slot = self.snap.services.get(usize::from(si)).map_or(usize::MAX, |s| usize::from(s.counter));
            if let Some(s) = c.services.get(slot) {
                s.packets.inc();
                s.bytes.add(rx_len);
                if acct.new_flow {
                    s.new_flows.inc();
                }
                if acct.untracked {
                    s.untracked.inc();
                }
            }
            if let (Some(bi), Verdict::Forward(_)) = (acct.backend, verdict) {
                let slot = self.snap.backends.get(usize::from(bi)).map_or(usize::MAX, |b| usize::from(b.counter));
                if let Some(b) = c.backends.get(slot) {
                    b.packets.inc();
                    b.bytes.add(rx_len);
                }
            }
        }
        verdict
    }

    /// Processes a burst received on `in_port`, writing frame `i`'s verdict to `verdicts[i]`;
    /// the same results as calling [`Self::process`] on each frame in order. Only the first
    /// `min(bufs.len(), verdicts.len(), BURST_SIZE)` frames are processed, so size `verdicts`
    /// like `bufs`. Warms the connection table with plain loads ([`TouchPrefetch`]); the
    /// runtime uses [`Self::process_burst_with`] and the CPU's prefetch instruction.
    pub fn process_burst<B: PacketBuf>(&mut self, bufs: &mut [B], in_port: PortId, now_ns: u64, verdicts: &mut [Verdict]) {
        self.process_burst_with(bufs, in_port, now_ns, verdicts, &TouchPrefetch);
    }

    /// [`Self::process_burst`] with a chosen prefetcher. Three passes over the burst, so the
    /// cache misses of all its flows overlap instead of stalling one packet at a time, and
    /// each frame is parsed and hashed once:
    /// 1. parse each frame up to the connection table ([`front`]: TCP/UDP to a VIP service,
    ///    every check passed), then, in a loop of their own, hash the flow keys and prefetch
    ///    each flow's bucket line (the hash is a chain of dependent multiplies; in a short
    ///    loop the CPU runs the chains of several frames at once. With pass 3 taking the key
    ///    from [`L4Front`]: 67.6 -> 65.9 ns a packet in `benches/pipeline.rs`, 1 K SYN flows);
    /// 2. with the bucket lines (mostly) arrived, prefetch the entry whose tag matches, or
    ///    else the service's Maglev slot for the flow;
    /// 3. finish each frame in order: from the connection table on for the frames of pass 1,
    ///    [`Self::process`] for the others (ARP, ICMP, non-VIP, malformed...).
    pub fn process_burst_with<B: PacketBuf, P: Prefetch>(&mut self, bufs: &mut [B], in_port: PortId, now_ns: u64, verdicts: &mut [Verdict], prefetch: &P) {
        let n = bufs.len().min(verdicts.len()).min(BURST_SIZE);
        let mut fronts: [Option<L4Front>; BURST_SIZE] = [None; BURST_SIZE];
        for (b, f) in bufs[..n].iter().zip(&mut fronts) {
            *f = front(&self.snap, in_port, b.data());
        }
        // The hashes in a loop of their own (see above).
        let mut hashes = [0u64; BURST_SIZE];
        for (f, h) in fronts[..n].iter().zip(&mut hashes) {
            if let Some(f) = f {
                *h = f.key.hash();
                self.conntrack.prefetch_bucket(*h, prefetch);
            }
        }
        for (f, &h) in fronts[..n].iter().zip(&hashes) {
            let Some(f) = f else { continue };
            if !self.conntrack.prefetch_entry(h, prefetch) {
                // No entry: the Maglev table answers (a new flow, or one not tracked).
                if let Some(s) = self.snap.services.get(usize::from(f.si)) {
                    s.table.prefetch(h, prefetch);
                }
            }
        }
        let in_mac = self.port_mac(in_port);
        for (((b, v), f), &h) in bufs[..n].iter_mut().zip(verdicts.iter_mut()).zip(&fronts).zip(&hashes) {
            *v = match f {
                Some(f) => self.run(b, in_port, in_mac, now_ns, |ctx, buf| l4_back(ctx, buf, f, h)),
                None => self.process(b, in_port, now_ns),
            };
        }
    }

    /// Builds one ARP request / IPv6 NS for an unresolved next hop that is due (at most once per
    /// second per next hop) into `buf` (a fresh empty buffer) and returns the port to send it on.
    pub fn solicit<B: PacketBuf>(&mut self, buf: &mut B, now_ns: u64) -> Option<PortId> {
        let n = self.snap.unresolved.len();
        for _ in 0..n {
            let i = self.solicit_cursor % n;
            self.solicit_cursor = (i + 1) % n;
            if self.solicit_due[i] > now_ns {
                continue;
            }
            let u = self.snap.unresolved[i];
            let mac = self.snap.port(u.port)?.mac;
            if neighbor::build_solicit(&self.snap, buf, u.ip, mac) {
                self.solicit_due[i] = now_ns.saturating_add(SOLICIT_INTERVAL_NS);
                return Some(u.port);
            }
        }
        None
    }

    /// Expires idle conntrack entries at the table's sweep pace
    /// ([`crate::conntrack::EXPIRE_SWEEP_NS`]), examining at most `budget` slots per call
    /// (called between bursts).
    pub fn expire(&mut self, now_ns: u64, budget: usize) {
        let freed = self.conntrack.expire_paced(now_ns, budget);
        self.counters.conntrack_expired.add(freed as u64);
        LcoreCounters::set(&self.counters.conntrack_entries, self.conntrack.len() as u64);
    }
}

/// Pass 1 of [`Pipeline::process_burst_with`] for one frame: the parse of [`classify`] up to
/// the connection table, for a TCP/UDP frame to a VIP service that passes every check on the
/// way; `None` for anything else (the frame then goes through [`classify`] in pass 3). Reads
/// only the frame and the snapshot, so running it early cannot change any result.
///
/// The common frame (untagged IPv4 without options) is parsed at fixed offsets by
/// [`front_plain_ipv4`]; every other frame, and every one it declines, by [`front_general`].
#[inline]
fn front(snap: &Snapshot, in_port: PortId, frame: &[u8]) -> Option<L4Front> {
    if snap.port(in_port)?.role == PortRole::Kernel {
        return None;
    }
    front_plain_ipv4(snap, frame).or_else(|| front_general(snap, frame))
}

/// [`front`] through the checked views: L2 (VLAN tag), IPv4 or IPv6 (options, extension
/// headers), L4. The reference for [`front_plain_ipv4`].
fn front_general(snap: &Snapshot, frame: &[u8]) -> Option<L4Front> {
    let l2 = L2Info::parse(frame).ok()?;
    let flow = match l2.ethertype {
        EtherType::IPV4 => ipv4_l3(snap, frame, l2),
        EtherType::IPV6 => ipv6_l3(snap, frame, l2),
        _ => return None,
    };
    match flow {
        L3::Vip(flow) if !flow.is_icmp() => l4_front(snap, frame, flow).ok(),
        _ => None,
    }
}

/// [`front`] for the frame nearly all VIP traffic is: Ethernet without a tag, IPv4 without
/// options, TCP or UDP. Reads the headers at fixed offsets from one bounds-checked 54-byte
/// prefix, with the same checks as the views ([`Ipv4Packet::check_len`], the header
/// checksum, not a fragment, [`TcpPacket::check_len`] / [`UdpPacket::check_len`]), and returns
/// `None` (the general parse decides) for any frame of another shape or failing any check.
/// When it returns `Some`, it is exactly what [`front_general`] returns: the test
/// `plain_ipv4_front_matches_the_general_parse` compares the two over mutated frames.
///
/// Cost: with it (and the 14-byte [`Flow`]) callgrind counted 1115 instructions a packet for
/// the whole pipeline in `benches/pipeline.rs` (1 K SYN flows), against 1305 through the
/// general parse alone.
#[inline]
fn front_plain_ipv4(snap: &Snapshot, frame: &[u8]) -> Option<L4Front> {
    const L3: usize = crate::wire::ethernet::HEADER_LEN;
    const L4: usize = L3 + crate::wire::ipv4::HEADER_LEN;
    const TCP_MIN: usize = crate::wire::tcp::HEADER_LEN;
    const UDP_MIN: usize = crate::wire::udp::HEADER_LEN;
    // Ethernet + IPv4 + a minimal TCP header: every TCP frame has it, and every UDP frame on an
    // Ethernet wire does too (its 60-byte minimum); a shorter one goes the general way. The
    // views below read their fields from these fixed-size slices, so their bounds checks fold
    // away.
    let h: &[u8; L4 + TCP_MIN] = frame.get(..L4 + TCP_MIN)?.try_into().ok()?;
    let eth = EthernetFrame::new_unchecked(&h[..L3]);
    let ip = Ipv4Packet::new_unchecked(&h[L3..L4]);
    // EtherType IPv4, version 4 with IHL 5 (no options).
    if eth.ethertype() != EtherType::IPV4 || ip.version() != 4 || ip.header_len() != crate::wire::ipv4::HEADER_LEN {
        return None;
    }
    let total = usize::from(ip.total_len());
    let l4_len = total.checked_sub(crate::wire::ipv4::HEADER_LEN)?;
    if total > frame.len() - L3 || ip.is_fragment() {
        return None;
    }
    let proto = ip.next_header();
    let dst = ip.dst_addr();
    let vip = snap.vip_services(IpAddr::V4(dst))?;
    if !ip.verify_checksum() {
        return None;
    }
    let l4 = &h[L4..];
    let (sport, dport, tcp) = match proto {
        IpProtocol::TCP => {
            let t = TcpPacket::new_unchecked(l4);
            let header_len = t.header_len();
            if l4_len < TCP_MIN || header_len < TCP_MIN || header_len > l4_len {
                return None;
            }
            (t.src_port(), t.dst_port(), Some(tcp_signal(t.flags())))
        }
        IpProtocol::UDP => {
            let u = UdpPacket::new_unchecked(l4);
            let declared = usize::from(u.len());
            if l4_len < UDP_MIN || declared < UDP_MIN || declared > l4_len {
                return None;
            }
            (u.src_port(), u.dst_port(), None)
        }
        _ => return None,
    };
    let si = snap.service_of(vip, proto.0, dport)?;
    let key = FlowKey::new(IpAddr::V4(ip.src_addr()), IpAddr::V4(dst), sport, dport, proto.0);
    let flow = Flow::new(L3, L4, L3 + total, vip, proto.0, false, false);
    Some(L4Front { flow, si, key, tcp })
}

/// The TCP flags the connection table looks at.
#[inline]
fn tcp_signal(f: TcpFlags) -> TcpSignal {
    TcpSignal { syn: f.contains(TcpFlags::SYN), ack: f.contains(TcpFlags::ACK), fin: f.contains(TcpFlags::FIN), rst: f.contains(TcpFlags::RST) }
}

/// Stages 1–4 (see the module docs).
fn classify<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B) -> Verdict {
    let Some(port) = ctx.snap.port(ctx.in_port) else {
        return Verdict::Drop(DropReason::Unsupported);
    };
    if port.role == PortRole::Kernel {
        ctx.acct.from_kernel = true;
        return match ctx.snap.peer(ctx.in_port) {
            Some(nic) => Verdict::Forward(nic),
            None => Verdict::Drop(DropReason::Unsupported),
        };
    }
    let l2 = match L2Info::parse(buf.data()) {
        Ok(l2) => l2,
        Err(e) => return Verdict::Drop(e.into()),
    };
    match l2.ethertype {
        EtherType::ARP => neighbor::arp(ctx, buf, &l2),
        EtherType::IPV4 => ipv4(ctx, buf, l2),
        EtherType::IPV6 => ipv6(ctx, buf, l2),
        _ => ctx.to_kernel(),
    }
}

/// What the IP stage found.
enum L3 {
    /// Traffic for a VIP that passed the IP checks.
    Vip(Flow),
    /// Not for a VIP: the kernel's (or neighbor discovery's).
    NotVip,
    /// Malformed or refused.
    Drop(DropReason),
}

/// The IPv4 stage's checks (see the module docs), without side effects.
fn ipv4_l3(snap: &Snapshot, frame: &[u8], l2: L2Info) -> L3 {
    let l3 = l2.l3_offset;
    let ip = match Ipv4Packet::new_checked(&frame[l3..]) {
        Ok(ip) => ip,
        Err(e) => return L3::Drop(e.into()),
    };
    let dst = IpAddr::V4(ip.dst_addr());
    let Some(vip) = snap.vip_services(dst) else {
        return L3::NotVip;
    };
    if !ip.verify_checksum() {
        return L3::Drop(DropReason::BadChecksum);
    }
    if ip.is_fragment() {
        return L3::Drop(DropReason::Fragment);
    }
    L3::Vip(Flow::new(l3, l3 + ip.header_len(), l3 + usize::from(ip.total_len()), vip, ip.next_header().0, l2.vid.is_some(), false))
}

/// The IPv6 stage's checks (see the module docs), without side effects.
fn ipv6_l3(snap: &Snapshot, frame: &[u8], l2: L2Info) -> L3 {
    let l3 = l2.l3_offset;
    let ip = match Ipv6Packet::new_checked(&frame[l3..]) {
        Ok(ip) => ip,
        Err(e) => return L3::Drop(e.into()),
    };
    let dst = ip.dst_addr();
    let Some(vip) = snap.vip_services(IpAddr::V6(dst)) else {
        return L3::NotVip;
    };
    let upper = match ip.upper_layer() {
        Ok(u) => u,
        Err(e) => return L3::Drop(e.into()),
    };
    if upper.fragment.is_some() {
        return L3::Drop(DropReason::Fragment);
    }
    let end = l3 + crate::wire::ipv6::HEADER_LEN + usize::from(ip.payload_len());
    L3::Vip(Flow::new(l3, l3 + upper.offset, end, vip, upper.protocol.0, l2.vid.is_some(), true))
}

fn ipv4<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, l2: L2Info) -> Verdict {
    match ipv4_l3(ctx.snap, buf.data(), l2) {
        L3::Vip(flow) if flow.is_icmp() => icmp::icmpv4(ctx, buf, flow),
        L3::Vip(flow) => l4_flow(ctx, buf, flow),
        L3::NotVip => ctx.to_kernel(),
        L3::Drop(r) => Verdict::Drop(r),
    }
}

fn ipv6<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, l2: L2Info) -> Verdict {
    match ipv6_l3(ctx.snap, buf.data(), l2) {
        L3::Vip(flow) if flow.is_icmp() => icmp::icmpv6(ctx, buf, flow),
        L3::Vip(flow) => l4_flow(ctx, buf, flow),
        L3::NotVip => {
            // Neighbor discovery (for a VIP at its solicited-node group, or advertisements to
            // the host) carries no extension headers in practice: ICMPv6 right after the header.
            // `ipv6_l3` checked the header's length.
            let ip = Ipv6Packet::new_unchecked(&buf.data()[l2.l3_offset..]);
            if ip.next_header() == IpProtocol::ICMPV6 {
                return neighbor::ndisc(ctx, buf, l2, crate::wire::ipv6::HEADER_LEN);
            }
            ctx.to_kernel()
        }
        L3::Drop(r) => Verdict::Drop(r),
    }
}

/// A TCP/UDP packet to a VIP service, parsed and checked up to the connection table, with its
/// flow key (which pass 3 uses as is, instead of reading it from the frame again).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct L4Front {
    flow: Flow,
    /// Service index.
    si: u16,
    /// The flow key (its hash is computed apart: see [`Pipeline::process_burst_with`]).
    key: FlowKey,
    /// TCP flags (`None` for UDP).
    tcp: Option<TcpSignal>,
}

/// Ports, service and flow key of a TCP/UDP packet to a VIP, without side effects.
fn l4_front(snap: &Snapshot, frame: &[u8], flow: Flow) -> Result<L4Front, DropReason> {
    // Ports and TCP flags, assigned field by field: returned as one `Result` tuple from a
    // helper, they were packed at odd byte offsets through the stack and read back across two
    // stores (15 instructions more per packet, and a store-forwarding stall).
    let l4 = &frame[flow.l4()..flow.end()];
    let (sport, dport, tcp);
    match IpProtocol(flow.proto) {
        IpProtocol::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            (sport, dport) = (t.src_port(), t.dst_port());
            tcp = Some(tcp_signal(t.flags()));
        }
        IpProtocol::UDP => {
            let u = UdpPacket::new_checked(l4)?;
            (sport, dport, tcp) = (u.src_port(), u.dst_port(), None);
        }
        _ => return Err(DropReason::NoService),
    }
    let si = snap.service_of(flow.vip, flow.proto, dport).ok_or(DropReason::NoService)?;
    let key = FlowKey::new(flow.src(frame), flow.dst(frame), sport, dport, flow.proto);
    Ok(L4Front { flow, si, key, tcp })
}

/// TCP/UDP to a VIP: service, backend, forward.
fn l4_flow<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, flow: Flow) -> Verdict {
    match l4_front(ctx.snap, buf.data(), flow) {
        Ok(f) => l4_back(ctx, buf, &f, f.key.hash()),
        Err(r) => Verdict::Drop(r),
    }
}

/// The connection-table and forwarding half of [`l4_flow`].
fn l4_back<B: PacketBuf>(ctx: &mut Ctx<'_>, buf: &mut B, f: &L4Front, hash: u64) -> Verdict {
    let si = f.si;
    ctx.set_service(si, None);
    let track = match f.tcp {
        Some(t) if t.syn && !t.ack && !t.rst && !t.fin => Some(State::Syn),
        Some(_) => None,
        None => Some(State::Udp),
    };
    let bi = match ctx.choose_backend(si, &f.key, hash, track, Some(f.tcp)) {
        Ok(bi) => bi,
        Err(r) => return Verdict::Drop(r),
    };
    ctx.set_service(si, Some(bi));
    // Ethernet padding after the IP packet must not be carried into a tunnel.
    buf.truncate(f.flow.end());
    forward::forward(ctx, buf, &f.flow, si, bi, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conntrack::Timeouts;
    use crate::wire::{checksum, EthernetAddress};

    const LB: [u8; 6] = [2, 0, 0, 0, 0, 1];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// VIP 198.18.0.100 with TCP :80, UDP on all ports and TCP :443; VIP 198.18.0.101 with TCP
    /// on all ports only; an IPv6 VIP (never taken by the IPv4 fast path).
    fn snapshot() -> Snapshot {
        let m = Some(EthernetAddress([2, 0, 0, 0, 1, 0x10]));
        let ipip = Mode::Tunnel(crate::pipeline::Encap::Ipip);
        let mut services = vec![
            ServiceSpec::new("web", ip("198.18.0.100"), 6, Some(80), ipip).backend(ip("198.18.1.10"), 1, m).backend(ip("198.18.1.20"), 1, m),
            ServiceSpec::new("dns", ip("198.18.0.100"), 17, None, ipip).backend(ip("198.18.1.11"), 1, m),
            ServiceSpec::new("tls", ip("198.18.0.100"), 6, Some(443), Mode::DsrL2).backend(ip("198.18.0.20"), 1, m),
            ServiceSpec::new("any", ip("198.18.0.101"), 6, None, ipip).backend(ip("198.18.1.12"), 1, m),
            ServiceSpec::new("web6", ip("fd00::100"), 6, Some(80), ipip).backend(ip("fd00:1::10"), 1, m),
        ];
        for s in &mut services {
            s.maglev_size = 251;
        }
        let builder = SnapshotBuilder {
            host: HostSpec {
                ipv4: Some(("198.18.0.2".parse().unwrap(), 24)),
                ipv6: Some(("fd00::2".parse().unwrap(), 64)),
                gateway4: Some("198.18.0.1".parse().unwrap()),
                gateway6: Some("fd00::1".parse().unwrap()),
                mtu: 1500,
            },
            timeouts: Timeouts::default(),
            services,
        };
        let ports = vec![PortInfo { id: PortId(0), name: "nic0".into(), role: PortRole::Nic, mac: EthernetAddress(LB), kernel: None }];
        builder.build(&ports, &NeighborTable::new()).expect("test snapshot builds")
    }

    /// An Ethernet frame (tagged with VLAN 7 when `tag`) carrying IPv4 with `options` words of
    /// options, protocol `proto`, `l4` as payload, then `pad` bytes of Ethernet padding.
    fn frame(tag: bool, options: usize, frag: u16, proto: u8, dst: [u8; 4], l4: &[u8], pad: usize) -> Vec<u8> {
        let mut f = LB.to_vec();
        f.extend_from_slice(&[2, 0, 0, 0, 9, 9]);
        if tag {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let l3 = f.len();
        let hl = 20 + 4 * options;
        let total = (hl + l4.len()) as u16;
        f.extend_from_slice(&[0x40 | (hl / 4) as u8, 0, (total >> 8) as u8, total as u8, 0x12, 0x34, (frag >> 8) as u8, frag as u8, 64, proto, 0, 0]);
        f.extend_from_slice(&[198, 18, 7, 9]);
        f.extend_from_slice(&dst);
        f.extend(std::iter::repeat_n(1u8, 4 * options));
        let c = checksum::checksum(&f[l3..l3 + hl]);
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(l4);
        f.extend(std::iter::repeat_n(0u8, pad));
        f
    }

    fn tcp(sport: u16, dport: u16, flags: u8, doff: u8, payload: usize) -> Vec<u8> {
        let mut t = vec![0u8; usize::from(doff) * 4 + payload];
        t[..4].copy_from_slice(&[(sport >> 8) as u8, sport as u8, (dport >> 8) as u8, dport as u8]);
        t[12] = doff << 4;
        t[13] = flags;
        t
    }

    fn udp(sport: u16, dport: u16, payload: usize) -> Vec<u8> {
        let len = (8 + payload) as u16;
        let mut u = vec![0u8; usize::from(len)];
        u[..6].copy_from_slice(&[(sport >> 8) as u8, sport as u8, (dport >> 8) as u8, dport as u8, (len >> 8) as u8, len as u8]);
        u
    }

    /// Re-computes the IPv4 header checksum of an untagged frame (so that a mutation reaches
    /// the checks after it), when the header is there.
    fn fix_checksum(f: &mut [u8]) {
        let hl = usize::from(f.get(14).copied().unwrap_or(0) & 0x0f) * 4;
        if hl >= 20 && f.len() >= 14 + hl {
            f[24..26].fill(0);
            let c = checksum::checksum(&f[14..14 + hl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
    }

    /// The fixed-offset parse of the common frame gives exactly the general parse's answer
    /// whenever it gives one, over hand-built frames of every shape and 200 000 mutations of
    /// them (random bytes of the headers changed, the IPv4 checksum fixed up in half of them so
    /// the later checks are reached); and it does take every plain frame the general parse
    /// accepts, so the common case cannot silently fall to the slow path.
    #[test]
    fn plain_ipv4_front_matches_the_general_parse() {
        let snap = snapshot();
        let vip = [198, 18, 0, 100];
        let bases = [
            frame(false, 0, 0, 6, vip, &tcp(40000, 80, 0x02, 5, 0), 6),
            frame(false, 0, 0x4000, 6, vip, &tcp(40001, 80, 0x18, 8, 100), 0),
            frame(false, 0, 0, 6, vip, &tcp(40002, 80, 0x11, 5, 0), 6),
            frame(false, 0, 0, 6, vip, &tcp(40003, 443, 0x04, 5, 0), 6),
            frame(false, 0, 0, 6, [198, 18, 0, 101], &tcp(40004, 22, 0x10, 6, 7), 0),
            frame(false, 0, 0, 17, vip, &udp(5353, 53, 30), 0),
            frame(false, 0, 0, 17, vip, &udp(5353, 53, 0), 18),
            frame(false, 0, 0, 17, [198, 18, 0, 101], &udp(5353, 53, 30), 0),
            frame(false, 0, 0, 6, [198, 18, 0, 102], &tcp(40005, 80, 0x02, 5, 0), 6),
            frame(false, 0, 0, 1, vip, &[8, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6),
            frame(false, 0, 0x2000, 6, vip, &tcp(40006, 80, 0x10, 5, 0), 6),
            frame(false, 0, 0x0001, 6, vip, &tcp(40007, 80, 0x10, 5, 0), 6),
            frame(false, 2, 0, 6, vip, &tcp(40008, 80, 0x02, 5, 0), 0),
            frame(true, 0, 0, 6, vip, &tcp(40009, 80, 0x02, 5, 0), 2),
        ];
        let mut plain_taken = 0;
        for f in &bases {
            let fast = front_plain_ipv4(&snap, f);
            let general = front_general(&snap, f);
            assert!(fast.is_none() || fast == general, "{f:02x?}: fast {fast:?}, general {general:?}");
            let plain = f[12..14] == [8, 0] && f[14] == 0x45 && f.len() >= 54;
            if plain && general.is_some() {
                assert!(fast.is_some(), "the fast path declined a plain frame: {f:02x?}");
                plain_taken += 1;
            }
        }
        assert_eq!(plain_taken, 7, "plain frames to a VIP service, TCP and UDP");

        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut agreed, mut declined) = (0, 0);
        for i in 0..200_000 {
            let mut f = bases[i % bases.len()].clone();
            for _ in 0..1 + rnd() % 3 {
                let r = rnd();
                let at = (r % 60) as usize;
                match r >> 32 & 3 {
                    0 => f.truncate(at),
                    _ if at < f.len() => f[at] = (r >> 40) as u8,
                    _ => {}
                }
            }
            if rnd() % 2 == 0 {
                fix_checksum(&mut f);
            }
            let general = front_general(&snap, &f);
            match front_plain_ipv4(&snap, &f) {
                Some(fast) => {
                    assert_eq!(Some(fast), general, "mutated frame {f:02x?}");
                    agreed += 1;
                }
                None if general.is_some() && f.len() >= 54 && f[12..14] == [8, 0] && f[14] == 0x45 => {
                    panic!("the fast path declined a plain frame the general parse takes: {f:02x?}")
                }
                None => declined += 1,
            }
        }
        // Both outcomes must be common, or the mutations did not exercise the checks.
        assert!(agreed > 20_000 && declined > 20_000, "agreed {agreed}, declined {declined}");
    }
}
