//! `dataplane pktgen`: a templated traffic generator and checker for the balancer's tunnel mode.
//!
//! Contract:
//! - [`FlowSpace`] maps a flow index `0..flows` (up to [`MAX_FLOWS`]) to a 5-tuple arithmetically
//!   (source address and port from the index, VIP round-robin, kind from the [`Mix`]): nothing is
//!   stored per flow on the send side, and the receive side gets the index back from the inner
//!   source address and port.
//! - [`Templates`] holds one prebuilt frame per traffic kind (TCP SYN, TCP established data, UDP);
//!   [`Templates::fill`] copies one and patches the per-flow fields, the [`Stamp`] (sequence +
//!   TSC) in the payload, and the IPv4 and L4 checksums from precomputed partial sums (no full
//!   checksum pass per packet).
//! - [`Checker::check`] takes what the forwarder sent back (Ethernet + outer IPv4 + IPIP inner
//!   packet) and reports a [`CheckError`] when the outer destination is not an expected backend,
//!   the inner packet differs from what this flow's template would have produced (other than the
//!   TTL decrement and the IPv4 checksum update), or the flow reached a different backend than
//!   before (per-flow record: a `u16` backend index per flow).
//! - [`plain_stamp`] reads the stamp back out of a frame that is not tunnelled (what an anchor
//!   forwarder such as testpmd `io` or `5tswap` returns), so the generator can time the anchor's
//!   latency too; such frames are counted as unchecked, never as correct.
//! - [`Histogram`] records latencies in fixed log-linear buckets: no allocation per packet.
//!
//! Pure code (no EAL): `engine` (feature `dpdk`) runs it over a DPDK port.

use std::net::Ipv4Addr;

use crate::wire::checksum;

#[cfg(feature = "dpdk")]
pub mod engine;


/// Most flows one run can address: 10 M 5-tuples. The checker keeps 2 bytes per flow, so the
/// per-flow record costs at most 20 MB.
pub const MAX_FLOWS: u32 = 10_000_000;
/// Source ports used per source address (1024..65535): flows beyond that move to the next source
/// address, so 10 M flows span 156 addresses.
pub const PORTS_PER_ADDR: u32 = 64_512;
/// First source port.
const FIRST_PORT: u16 = 1024;
/// Smallest and largest frame size accepted, FCS included (Ethernet's 64 B minimum to a 1500 B MTU
/// frame: 1518 B).
pub const MIN_FRAME: u16 = 64;
/// See [`MIN_FRAME`].
pub const MAX_FRAME: u16 = 1518;
/// Frame check sequence the NIC appends: not in the mbuf.
const FCS: usize = 4;
/// Bytes of the payload stamp: magic (4), sequence (4), TSC (8).
pub const STAMP_LEN: usize = 16;
/// Marks a payload as ours (`"dpgn"`).
const STAMP_MAGIC: u32 = 0x6470_676e;
/// Marker in the per-flow record for "no packet of this flow came back yet".
const UNSEEN: u16 = u16::MAX;
/// Most backends the checker tells apart (the record stores an index below [`UNSEEN`]).
pub const MAX_BACKENDS: usize = 1024;
/// TTL of generated packets; the forwarder sends them on with `TTL - 1`.
pub const TTL: u8 = 64;

const ETH: usize = 14;
const IP: usize = 20;
const TCP: usize = 20;
const UDP: usize = 8;

/// What the pure generator or checker rejects.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PktgenError {
    /// `--flows` out of range.
    #[error("--flows {0} is out of range: use 1 to {MAX_FLOWS}")]
    Flows(u32),
    /// `--size` out of range.
    #[error("--size {0} is out of range: use {MIN_FRAME} to {MAX_FRAME} (bytes, FCS included)")]
    Size(u16),
    /// No VIP given.
    #[error("no --vip given: name at least one service address of the forwarder")]
    NoVip,
    /// No backend or too many given.
    #[error("{0} backends given: name 1 to {MAX_BACKENDS} --backend addresses the forwarder may tunnel to")]
    Backends(usize),
    /// A mix that does not parse or sums to zero.
    #[error("--mix {0:?} is not valid: write e.g. \"syn=20,data=70,udp=10\" (weights, at least one non-zero)")]
    Mix(String),
}

/// Traffic kinds a flow can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP SYN (new connections: the forwarder's Maglev + conntrack insert path).
    Syn,
    /// TCP ACK|PSH with payload (established traffic).
    Data,
    /// UDP datagram.
    Udp,
}

/// Relative weights of the kinds; each flow has one kind for the whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    /// Weight of SYN flows.
    pub syn: u32,
    /// Weight of established data flows.
    pub data: u32,
    /// Weight of UDP flows.
    pub udp: u32,
}

impl Mix {
    /// Parses `syn=20,data=70,udp=10` (missing kinds weigh 0).
    pub fn parse(s: &str) -> Result<Mix, PktgenError> {
        let bad = || PktgenError::Mix(s.to_owned());
        let mut m = Mix { syn: 0, data: 0, udp: 0 };
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v: u32 = v.trim().parse().map_err(|_| bad())?;
            match k.trim() {
                "syn" => m.syn = v,
                "data" => m.data = v,
                "udp" => m.udp = v,
                _ => return Err(bad()),
            }
        }
        if m.total() == 0 || m.total() > 1_000_000 {
            return Err(bad());
        }
        Ok(m)
    }

    fn total(&self) -> u32 {
        self.syn.saturating_add(self.data).saturating_add(self.udp)
    }

    /// The kind of flow `flow`: spread evenly (a multiplicative hash of the index, so neighbouring
    /// flows get different kinds).
    pub fn kind(&self, flow: u32) -> Kind {
        let h = (u64::from(flow.wrapping_mul(0x9e37_79b1)) * u64::from(self.total())) >> 32;
        let h = h as u32;
        if h < self.syn {
            Kind::Syn
        } else if h < self.syn + self.data {
            Kind::Data
        } else {
            Kind::Udp
        }
    }
}

/// The flows of a run: index → 5-tuple and back.
#[derive(Clone, Debug)]
pub struct FlowSpace {
    /// Number of flows.
    pub flows: u32,
    /// First source address; flow `i` uses `src_base + i / PORTS_PER_ADDR`.
    pub src_base: Ipv4Addr,
    /// Service addresses, used round-robin by flow index.
    pub vips: Vec<Ipv4Addr>,
    /// Destination port of TCP flows.
    pub tcp_port: u16,
    /// Destination port of UDP flows.
    pub udp_port: u16,
    /// Kinds of flows.
    pub mix: Mix,
}

impl FlowSpace {
    /// Validates the parameters.
    pub fn new(flows: u32, src_base: Ipv4Addr, vips: Vec<Ipv4Addr>, tcp_port: u16, udp_port: u16, mix: Mix) -> Result<FlowSpace, PktgenError> {
        if flows == 0 || flows > MAX_FLOWS {
            return Err(PktgenError::Flows(flows));
        }
        if vips.is_empty() {
            return Err(PktgenError::NoVip);
        }
        Ok(FlowSpace { flows, src_base, vips, tcp_port, udp_port, mix })
    }

    /// Source address and port of flow `i`.
    pub fn source(&self, i: u32) -> (u32, u16) {
        (u32::from(self.src_base).wrapping_add(i / PORTS_PER_ADDR), FIRST_PORT + (i % PORTS_PER_ADDR) as u16)
    }

    /// The flow whose source is `addr:port`, if it is one of ours.
    pub fn index_of(&self, addr: u32, port: u16) -> Option<u32> {
        let a = addr.checked_sub(u32::from(self.src_base))?;
        let p = u32::from(port.checked_sub(FIRST_PORT)?);
        let i = a.checked_mul(PORTS_PER_ADDR)?.checked_add(p)?;
        (i < self.flows).then_some(i)
    }

    /// Destination address of flow `i`.
    pub fn vip(&self, i: u32) -> Ipv4Addr {
        self.vips[i as usize % self.vips.len()]
    }
}

/// Sequence number and send time carried in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Per-run packet sequence (low 32 bits).
    pub seq: u32,
    /// TSC at send time.
    pub tsc: u64,
}

/// One prebuilt frame of one kind, and the partial checksums of its fixed fields.
#[derive(Clone, Debug)]
struct Template {
    frame: Vec<u8>,
    /// Offset of the L4 header.
    l4: usize,
    /// Offset of the stamp.
    stamp: usize,
    /// Offset of the L4 checksum field.
    l4_csum: usize,
    /// One's-complement sum of the IPv4 header with source and destination zeroed.
    ip_partial: u16,
    /// Sum of the L4 segment (checksum, source port and stamp zeroed) and the pseudo-header
    /// without the addresses.
    l4_partial: u16,
}

/// Prebuilt frames for every kind at one frame size.
#[derive(Clone, Debug)]
pub struct Templates {
    syn: Template,
    data: Template,
    udp: Template,
}

impl Templates {
    /// Frames of `size` bytes (FCS included) from `src_mac` to `dst_mac`. Sizes too small for the
    /// headers plus the [`STAMP_LEN`] stamp grow to the smallest that fits (70 B for TCP).
    pub fn new(size: u16, src_mac: [u8; 6], dst_mac: [u8; 6], space: &FlowSpace) -> Result<Templates, PktgenError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&size) {
            return Err(PktgenError::Size(size));
        }
        let data_len = usize::from(size) - FCS;
        let build = |kind: Kind| {
            let l4_len = if kind == Kind::Udp { UDP } else { TCP };
            let len = data_len.max(ETH + IP + l4_len + STAMP_LEN);
            let mut f = vec![0u8; len];
            f[0..6].copy_from_slice(&dst_mac);
            f[6..12].copy_from_slice(&src_mac);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            let ip = &mut f[ETH..ETH + IP];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((len - ETH) as u16).to_be_bytes());
            ip[6] = 0x40; // DF: the forwarder answers too-big instead of fragmenting
            ip[8] = TTL;
            ip[9] = if kind == Kind::Udp { 17 } else { 6 };
            let ip_partial = checksum::sum(ip);
            let l4 = ETH + IP;
            let seg_len = len - l4;
            let (dport, l4_csum) = match kind {
                Kind::Udp => (space.udp_port, l4 + 6),
                _ => (space.tcp_port, l4 + 16),
            };
            f[l4 + 2..l4 + 4].copy_from_slice(&dport.to_be_bytes());
            match kind {
                Kind::Udp => f[l4 + 4..l4 + 6].copy_from_slice(&(seg_len as u16).to_be_bytes()),
                Kind::Syn | Kind::Data => {
                    f[l4 + 4..l4 + 8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
                    f[l4 + 12] = 5 << 4;
                    f[l4 + 13] = if kind == Kind::Syn { 0x02 } else { 0x18 };
                    if kind == Kind::Data {
                        f[l4 + 8..l4 + 12].copy_from_slice(&0x2000_0000u32.to_be_bytes());
                    }
                    f[l4 + 14..l4 + 16].copy_from_slice(&0xffffu16.to_be_bytes());
                }
            }
            let stamp = l4 + l4_len;
            let proto = if kind == Kind::Udp { 17u16 } else { 6 };
            let l4_partial = checksum::combine(&[checksum::sum(&f[l4..]), proto, seg_len as u16]);
            Template { frame: f, l4, stamp, l4_csum, ip_partial, l4_partial }
        };
        Ok(Templates { syn: build(Kind::Syn), data: build(Kind::Data), udp: build(Kind::Udp) })
    }

    fn get(&self, kind: Kind) -> &Template {
        match kind {
            Kind::Syn => &self.syn,
            Kind::Data => &self.data,
            Kind::Udp => &self.udp,
        }
    }

    /// Frame length of flow `i` (bytes in the mbuf, FCS excluded).
    pub fn len(&self, space: &FlowSpace, i: u32) -> usize {
        self.get(space.mix.kind(i)).frame.len()
    }

    /// Writes the frame of flow `i` with `stamp` into `out` (exactly [`Templates::len`] bytes).
    pub fn fill(&self, space: &FlowSpace, i: u32, stamp: Stamp, out: &mut [u8]) {
        let t = self.get(space.mix.kind(i));
        out.copy_from_slice(&t.frame);
        let (src, sport) = space.source(i);
        let dst = u32::from(space.vip(i));
        let ip = &mut out[ETH..ETH + IP];
        ip[12..16].copy_from_slice(&src.to_be_bytes());
        ip[16..20].copy_from_slice(&dst.to_be_bytes());
        let addr_sum = checksum::combine(&[(src >> 16) as u16, src as u16, (dst >> 16) as u16, dst as u16]);
        let ip_csum = !checksum::combine(&[t.ip_partial, addr_sum]);
        ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());
        out[t.l4..t.l4 + 2].copy_from_slice(&sport.to_be_bytes());
        let s = t.stamp;
        out[s..s + 4].copy_from_slice(&STAMP_MAGIC.to_be_bytes());
        out[s + 4..s + 8].copy_from_slice(&stamp.seq.to_be_bytes());
        out[s + 8..s + 16].copy_from_slice(&stamp.tsc.to_be_bytes());
        let stamp_sum = checksum::sum(&out[s..s + STAMP_LEN]);
        let mut c = !checksum::combine(&[t.l4_partial, addr_sum, sport, stamp_sum]);
        if c == 0 && t.l4_csum == t.l4 + 6 {
            c = 0xffff; // UDP: zero means "no checksum"
        }
        out[t.l4_csum..t.l4_csum + 2].copy_from_slice(&c.to_be_bytes());
    }
}

/// Why a returned frame failed the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The outer destination is not one of the expected backends.
    #[error("wrong backend: the forwarder tunnelled flow {flow} to {addr}, which is not one of the expected --backend addresses")]
    WrongBackend {
        /// Flow index.
        flow: u32,
        /// Outer destination.
        addr: Ipv4Addr,
    },
    /// The inner packet is not what was sent (first differing byte offset in the inner packet).
    #[error("corrupted inner packet of flow {flow}: byte {offset} of the inner IP packet differs from what was sent")]
    Corrupted {
        /// Flow index.
        flow: u32,
        /// Offset in the inner IP packet.
        offset: usize,
    },
    /// The inner TTL is not the sent TTL minus one.
    #[error("inner TTL of flow {flow} is {ttl}, expected {}", TTL - 1)]
    Ttl {
        /// Flow index.
        flow: u32,
        /// TTL seen.
        ttl: u8,
    },
    /// A bad inner IPv4 or L4 checksum.
    #[error("bad inner checksum in flow {flow}: the forwarder did not update it correctly")]
    Checksum {
        /// Flow index.
        flow: u32,
    },
    /// The flow reached a different backend than its earlier packets.
    #[error("flow {flow} moved from backend {from} to {to}: per-flow consistency broken")]
    FlowMoved {
        /// Flow index.
        flow: u32,
        /// Backend of earlier packets.
        from: Ipv4Addr,
        /// Backend of this packet.
        to: Ipv4Addr,
    },
}

/// What a returned frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A correct tunnelled copy of flow `flow`, sent at `stamp`.
    Ok {
        /// Flow index.
        flow: u32,
        /// The stamp it carried.
        stamp: Stamp,
    },
    /// Not one of ours (ARP, other traffic, a frame that is not IPv4-in-IPv4 of our flows): counted,
    /// not a failure.
    Foreign,
    /// One of ours, wrong.
    Failed(CheckError),
}

/// Checks returned frames against the flow space and templates; keeps the per-flow backend record.
#[derive(Debug)]
pub struct Checker {
    space: FlowSpace,
    templates: Templates,
    backends: Vec<Ipv4Addr>,
    /// Backend index per flow ([`UNSEEN`] before the first returned packet): 2 B per flow.
    seen: Vec<u16>,
    scratch: Vec<u8>,
}

impl Checker {
    /// A checker expecting `backends` (1 to [`MAX_BACKENDS`]).
    pub fn new(space: FlowSpace, templates: Templates, backends: Vec<Ipv4Addr>) -> Result<Checker, PktgenError> {
        if backends.is_empty() || backends.len() > MAX_BACKENDS {
            return Err(PktgenError::Backends(backends.len()));
        }
        let seen = vec![UNSEEN; space.flows as usize];
        let scratch = vec![0u8; usize::from(MAX_FRAME)];
        Ok(Checker { space, templates, backends, seen, scratch })
    }

    /// Number of distinct flows that came back so far.
    pub fn flows_seen(&self) -> usize {
        self.seen.iter().filter(|&&b| b != UNSEEN).count()
    }

    /// Checks one returned frame.
    pub fn check(&mut self, frame: &[u8]) -> Outcome {
        // Ethernet (untagged) + outer IPv4 without options + IPv4 inner (IPIP, protocol 4).
        if frame.len() < ETH + IP + IP + UDP || frame[12..14] != [0x08, 0x00] {
            return Outcome::Foreign;
        }
        let outer = &frame[ETH..];
        if outer[0] != 0x45 || outer[9] != 4 {
            return Outcome::Foreign;
        }
        let outer_dst = Ipv4Addr::new(outer[16], outer[17], outer[18], outer[19]);
        let inner = &frame[ETH + IP..];
        if inner[0] != 0x45 {
            return Outcome::Foreign;
        }
        let src = u32::from_be_bytes([inner[12], inner[13], inner[14], inner[15]]);
        let sport = u16::from_be_bytes([inner[20], inner[21]]);
        let Some(flow) = self.space.index_of(src, sport) else { return Outcome::Foreign };
        let kind = self.space.mix.kind(flow);
        let len = self.templates.len(&self.space, flow);
        let inner_len = len - ETH;
        let Some(backend) = self.backends.iter().position(|&b| b == outer_dst) else {
            return Outcome::Failed(CheckError::WrongBackend { flow, addr: outer_dst });
        };
        if inner.len() < inner_len {
            return Outcome::Failed(CheckError::Corrupted { flow, offset: inner.len() });
        }
        let inner = &inner[..inner_len];
        let t = self.templates.get(kind);
        let s = t.stamp - ETH;
        let stamp = Stamp {
            seq: u32::from_be_bytes(inner[s + 4..s + 8].try_into().unwrap_or_default()),
            tsc: u64::from_be_bytes(inner[s + 8..s + 16].try_into().unwrap_or_default()),
        };
        let mut expected = std::mem::take(&mut self.scratch);
        self.templates.fill(&self.space, flow, stamp, &mut expected[..len]);
        let result = (|| {
            let exp = &expected[ETH..len];
            // Every byte but TTL (8) and the IPv4 checksum (10, 11) must be what was sent:
            // compared as three slices (word-wide compares), the first differing byte looked for
            // only after a difference. (A byte loop with the exceptions in its condition was the
            // generator's costliest code, so the forwarder's runs measured the generator.)
            if exp[..8] != inner[..8] || exp[9] != inner[9] || exp[12..] != inner[12..] {
                let offset = (0..exp.len()).find(|&o| o != 8 && o != 10 && o != 11 && exp[o] != inner[o]).unwrap_or(0);
                return Err(CheckError::Corrupted { flow, offset });
            }
            if inner[8] != TTL - 1 {
                return Err(CheckError::Ttl { flow, ttl: inner[8] });
            }
            if checksum::sum(&inner[..IP]) != 0xffff {
                return Err(CheckError::Checksum { flow });
            }
            Ok(())
        })();
        self.scratch = expected;
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        let slot = &mut self.seen[flow as usize];
        let b = backend as u16;
        if *slot == UNSEEN {
            *slot = b;
        } else if *slot != b {
            return Outcome::Failed(CheckError::FlowMoved { flow, from: self.backends[usize::from(*slot)], to: outer_dst });
        }
        Outcome::Ok { flow, stamp }
    }
}

/// The stamp of a returned frame that is a plain (not tunnelled) copy of one of ours, as an anchor
/// forwarder returns it: testpmd `io` (unchanged) or `5tswap` (MACs, addresses and ports swapped,
/// payload untouched). Untagged Ethernet, IPv4 with any header length, TCP (any data offset) or
/// UDP, then the stamp with its magic at the start of the payload; anything else is `None`.
/// Nothing else is checked: these frames prove only that a packet came back and when.
pub fn plain_stamp(frame: &[u8]) -> Option<Stamp> {
    if frame.get(12..14)? != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[ETH..];
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if *ip.first()? >> 4 != 4 || ihl < IP {
        return None;
    }
    let l4 = ip.get(ihl..)?;
    let payload = match ip.get(9)? {
        6 => l4.get(usize::from(*l4.get(12)? >> 4) * 4..)?,
        17 => l4.get(UDP..)?,
        _ => return None,
    };
    let stamp = payload.get(..STAMP_LEN)?;
    if stamp[..4] != STAMP_MAGIC.to_be_bytes() {
        return None;
    }
    Some(Stamp {
        seq: u32::from_be_bytes(stamp[4..8].try_into().ok()?),
        tsc: u64::from_be_bytes(stamp[8..16].try_into().ok()?),
    })
}

/// Sub-buckets per power of two: latencies are kept to within 1/32 (about 3 %).
const SUB_BUCKETS: usize = 32;
/// Powers of two covered: up to 2^40 ns (18 minutes). 40 × 32 × 8 B = 10 KB of counters.
const OCTAVES: usize = 40;

/// Fixed log-linear latency histogram in nanoseconds.
#[derive(Clone, Debug)]
pub struct Histogram {
    buckets: Box<[u64; SUB_BUCKETS * OCTAVES]>,
    count: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { buckets: Box::new([0; SUB_BUCKETS * OCTAVES]), count: 0, max: 0 }
    }
}

impl Histogram {
    fn index(ns: u64) -> usize {
        if ns < SUB_BUCKETS as u64 {
            return ns as usize;
        }
        let octave = 63 - ns.leading_zeros() as usize; // >= 5
        let sub = (ns >> (octave - 5)) as usize & (SUB_BUCKETS - 1);
        ((octave - 4) * SUB_BUCKETS + sub).min(SUB_BUCKETS * OCTAVES - 1)
    }

    fn lower(index: usize) -> u64 {
        if index < SUB_BUCKETS {
            return index as u64;
        }
        let octave = index / SUB_BUCKETS + 4;
        let sub = (index % SUB_BUCKETS) as u64;
        (1u64 << octave) + (sub << (octave - 5))
    }

    /// Records one latency.
    pub fn record(&mut self, ns: u64) {
        self.buckets[Self::index(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The latency below which a fraction `q` (0..=1) of the samples lie (bucket lower bound);
    /// 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            acc += c;
            if acc >= target {
                return Self::lower(i).min(self.max);
            }
        }
        self.max
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const BACKENDS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 0, 11), Ipv4Addr::new(198, 18, 0, 12)];

    fn space(flows: u32, mix: &str) -> FlowSpace {
        FlowSpace::new(flows, Ipv4Addr::new(10, 0, 0, 1), vec![Ipv4Addr::new(198, 18, 0, 100)], 80, 53, Mix::parse(mix).unwrap()).unwrap()
    }

    fn frame(space: &FlowSpace, t: &Templates, i: u32, seq: u32) -> Vec<u8> {
        let mut f = vec![0; t.len(space, i)];
        t.fill(space, i, Stamp { seq, tsc: 1234 + u64::from(seq) }, &mut f);
        f
    }

    /// What the forwarder does in tunnel mode (IPIP): TTL - 1 with the checksum updated, a new
    /// outer IPv4 header to `backend`, new MACs.
    fn encap(sent: &[u8], backend: Ipv4Addr) -> Vec<u8> {
        let mut inner = sent[ETH..].to_vec();
        inner[8] -= 1;
        inner[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&inner[..IP]);
        inner[10..12].copy_from_slice(&c.to_be_bytes());
        let mut out = vec![0u8; ETH + IP];
        out[12..14].copy_from_slice(&[8, 0]);
        out[ETH] = 0x45;
        out[ETH + 2..ETH + 4].copy_from_slice(&((IP + inner.len()) as u16).to_be_bytes());
        out[ETH + 8] = 64;
        out[ETH + 9] = 4;
        out[ETH + 16..ETH + 20].copy_from_slice(&backend.octets());
        out.extend_from_slice(&inner);
        out
    }

    fn checker(s: &FlowSpace, t: &Templates) -> Checker {
        Checker::new(s.clone(), t.clone(), BACKENDS.to_vec()).unwrap()
    }

    /// Generated frames have valid IPv4 and L4 checksums (the incremental patching is right) for
    /// every kind and for sizes from the minimum to a full MTU frame.
    #[test]
    fn pktgen_templates_have_valid_checksums() {
        for size in [64u16, 65, 128, 1000, 1518] {
            let s = space(200_000, "syn=1,data=1,udp=1");
            let t = Templates::new(size, SRC_MAC, DST_MAC, &s).unwrap();
            for i in [0u32, 1, 2, 3, 64_511, 64_512, 199_999] {
                let f = frame(&s, &t, i, i * 7);
                assert!(f.len() >= usize::from(size) - FCS);
                assert_eq!(checksum::sum(&f[ETH..ETH + IP]), 0xffff, "ip checksum, size {size} flow {i}");
                let ip = &f[ETH..];
                let pseudo = checksum::PseudoHeader::V4 {
                    src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                    dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
                };
                let proto = crate::wire::IpProtocol(ip[9]);
                assert!(checksum::verify_upper_layer(&pseudo, proto, &ip[IP..]), "l4 checksum, size {size} flow {i}");
            }
        }
    }

    /// Flow indexes map to distinct 5-tuples and back, across source-address boundaries, and
    /// addresses outside the space are not ours.
    #[test]
    fn pktgen_flow_space_round_trips() {
        let s = space(MAX_FLOWS, "syn=1");
        for i in [0, 1, PORTS_PER_ADDR - 1, PORTS_PER_ADDR, MAX_FLOWS - 1] {
            let (a, p) = s.source(i);
            assert_eq!(s.index_of(a, p), Some(i));
        }
        let (a, p) = s.source(MAX_FLOWS - 1);
        assert_eq!(s.index_of(a, p + 1), None);
        assert_eq!(s.index_of(u32::from(Ipv4Addr::new(10, 0, 0, 0)), 2000), None);
        assert_eq!(s.index_of(u32::from(Ipv4Addr::new(10, 0, 0, 1)), 80), None);
    }

    /// The mix parser accepts weights, rejects garbage and an all-zero mix, and the kinds are
    /// spread in proportion.
    #[test]
    fn pktgen_mix_parses_and_spreads() {
        assert!(Mix::parse("syn=0").is_err());
        assert!(Mix::parse("tcp=1").is_err());
        assert!(Mix::parse("syn").is_err());
        let m = Mix::parse("syn=1,data=2,udp=1").unwrap();
        let mut n = [0u32; 3];
        for i in 0..100_000 {
            n[m.kind(i) as usize] += 1;
        }
        for (k, want) in [(0, 25_000), (1, 50_000), (2, 25_000)] {
            assert!(n[k].abs_diff(want) < 2_000, "{n:?}");
        }
    }

    /// A correct IPIP copy passes, and the stamp comes back out.
    #[test]
    fn pktgen_checker_accepts_correct_tunnelled_copy() {
        let s = space(1000, "syn=1,data=1,udp=1");
        let t = Templates::new(64, SRC_MAC, DST_MAC, &s).unwrap();
        let mut c = checker(&s, &t);
        for i in 0..1000 {
            let f = frame(&s, &t, i, i);
            match c.check(&encap(&f, BACKENDS[(i % 2) as usize])) {
                Outcome::Ok { flow, stamp } => {
                    assert_eq!(flow, i);
                    assert_eq!(stamp, Stamp { seq: i, tsc: 1234 + u64::from(i) });
                }
                o => panic!("flow {i}: {o:?}"),
            }
        }
        assert_eq!(c.flows_seen(), 1000);
    }

    /// A frame tunnelled to an address that is not an expected backend is a wrong-backend failure.
    #[test]
    fn pktgen_checker_reports_wrong_backend() {
        let s = space(10, "syn=1");
        let t = Templates::new(128, SRC_MAC, DST_MAC, &s).unwrap();
        let mut c = checker(&s, &t);
        let f = frame(&s, &t, 3, 0);
        let wrong = Ipv4Addr::new(198, 18, 0, 13);
        assert_eq!(c.check(&encap(&f, wrong)), Outcome::Failed(CheckError::WrongBackend { flow: 3, addr: wrong }));
    }

    /// Any flipped byte of the inner packet (header or payload, stamp included) is reported.
    #[test]
    fn pktgen_checker_reports_flipped_inner_byte() {
        let s = space(10, "data=1");
        let t = Templates::new(100, SRC_MAC, DST_MAC, &s).unwrap();
        let f = frame(&s, &t, 5, 9);
        let good = encap(&f, BACKENDS[0]);
        for off in [ETH + IP + 1, ETH + IP + 9, ETH + IP + 22, ETH + IP + 40, good.len() - 1] {
            let mut c = checker(&s, &t);
            let mut bad = good.clone();
            bad[off] ^= 0x10;
            match c.check(&bad) {
                Outcome::Failed(CheckError::Corrupted { .. } | CheckError::Checksum { .. } | CheckError::Ttl { .. }) => {}
                // A flipped source port or address turns it into another (or no) flow: with the
                // stamp and checksum it still cannot pass as correct.
                Outcome::Failed(_) | Outcome::Foreign => {}
                o => panic!("offset {off}: {o:?}"),
            }
        }
        // A TTL that was not decremented is reported.
        let mut c = checker(&s, &t);
        let mut bad = f[ETH..].to_vec();
        bad.splice(0..0, good[..ETH + IP].iter().copied());
        assert!(matches!(c.check(&bad), Outcome::Failed(CheckError::Ttl { ttl: TTL, .. })));
        // Payload byte flipped: reported as corruption at that inner offset.
        let mut c = checker(&s, &t);
        let mut bad = good.clone();
        bad[good.len() - 1] ^= 1;
        assert_eq!(c.check(&bad), Outcome::Failed(CheckError::Corrupted { flow: 5, offset: good.len() - 1 - ETH - IP }));
    }

    /// A flow that reaches another (valid) backend than before is reported as moved.
    #[test]
    fn pktgen_checker_reports_flow_moved() {
        let s = space(10, "syn=1");
        let t = Templates::new(64, SRC_MAC, DST_MAC, &s).unwrap();
        let mut c = checker(&s, &t);
        let f = frame(&s, &t, 7, 1);
        assert!(matches!(c.check(&encap(&f, BACKENDS[0])), Outcome::Ok { .. }));
        assert!(matches!(c.check(&encap(&f, BACKENDS[0])), Outcome::Ok { .. }));
        assert_eq!(
            c.check(&encap(&f, BACKENDS[1])),
            Outcome::Failed(CheckError::FlowMoved { flow: 7, from: BACKENDS[0], to: BACKENDS[1] })
        );
    }

    /// Frames that are not IPIP copies of our flows (ARP, the plain sent frame) are foreign.
    #[test]
    fn pktgen_checker_ignores_foreign_frames() {
        let s = space(10, "syn=1");
        let t = Templates::new(64, SRC_MAC, DST_MAC, &s).unwrap();
        let mut c = checker(&s, &t);
        assert_eq!(c.check(&frame(&s, &t, 1, 1)), Outcome::Foreign);
        let mut arp = vec![0u8; 60];
        arp[12..14].copy_from_slice(&[8, 6]);
        assert_eq!(c.check(&arp), Outcome::Foreign);
        assert_eq!(c.check(&[]), Outcome::Foreign);
    }

    /// An anchor's plain return (unchanged, or with MACs, addresses and ports swapped as testpmd
    /// 5tswap does) yields the stamp that was sent, for every kind; a tunnelled copy, a frame
    /// without our magic and a truncated frame do not.
    #[test]
    fn pktgen_plain_stamp_reads_anchor_returns() {
        let s = space(100, "syn=1,data=1,udp=1");
        let t = Templates::new(64, SRC_MAC, DST_MAC, &s).unwrap();
        for i in 0..3 {
            let f = frame(&s, &t, i, 40 + i);
            let want = Some(Stamp { seq: 40 + i, tsc: 1234 + u64::from(40 + i) });
            assert_eq!(plain_stamp(&f), want, "kind {:?}", s.mix.kind(i));
            let mut swapped = f.clone();
            swapped[0..12].rotate_left(6);
            swapped[ETH + 12..ETH + 20].rotate_left(4);
            swapped[ETH + IP..ETH + IP + 4].rotate_left(2);
            assert_eq!(plain_stamp(&swapped), want);
            assert_eq!(plain_stamp(&encap(&f, BACKENDS[0])), None);
            assert_eq!(plain_stamp(&f[..f.len() - STAMP_LEN]), None);
            let mut other = f.clone();
            other[t.get(s.mix.kind(i)).stamp] ^= 1;
            assert_eq!(plain_stamp(&other), None);
        }
    }

    /// Quantiles come out within the bucket precision (1/32) of the true values.
    #[test]
    fn pktgen_histogram_quantiles() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        for ns in 1..=10_000u64 {
            h.record(ns * 100);
        }
        for (q, want) in [(0.5, 500_000u64), (0.99, 990_000), (0.999, 999_000)] {
            let got = h.quantile(q);
            assert!(got <= want && got as f64 >= want as f64 * (1.0 - 1.0 / 16.0), "q{q}: {got} vs {want}");
        }
        assert_eq!(h.count(), 10_000);
    }
}
