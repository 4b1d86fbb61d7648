//! The immutable forwarding state an lcore decides from, built off the packet path.
//!
//! Contract: a [`Snapshot`] is built by the control thread ([`Snapshot::build`] from a
//! validated [`Config`], or [`SnapshotBuilder`] directly in tests), published as
//! `Arc<Snapshot>`, and never changes afterwards. It holds everything `Pipeline::process`
//! needs: ports and their exception ports, the host's addresses, VIP → services, each service's
//! Maglev table, backends with their resolved next-hop MACs, MTU and conntrack timeouts, and the
//! next hops still waiting for ARP/ND. Lookups on it allocate nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::config::{Config, Encap as ConfigEncap, Mode as ConfigMode, PortRole, Protocol};
use crate::conntrack::Timeouts;
use crate::limits::{MAGLEV_DEFAULT_SIZE, MAX_BACKENDS, MAX_PORTS, MAX_SERVICES};
use crate::maglev::{backend_key, MaglevBackend, MaglevError, MaglevTable};
use crate::pipeline::forward::OuterHeader;
use crate::pipeline::PortId;
use crate::wire::EthernetAddress;

/// A DPDK port as the pipeline sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Index in `[[port]]` order.
    pub id: PortId,
    /// Config name.
    pub name: String,
    /// `nic` or `kernel`.
    pub role: PortRole,
    /// The port's MAC (the TAP of a kernel port carries its NIC's MAC).
    pub mac: EthernetAddress,
    /// For a NIC: its exception port.
    pub kernel: Option<PortId>,
}

/// A neighbor (IP → MAC) the pipeline saw in an ARP reply or IPv6 neighbor advertisement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    /// The neighbor's IP address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// The port it answered on.
    pub port: PortId,
}

/// IP → MAC, learned and static; owned by the control plane, copied into snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NeighborTable {
    map: HashMap<IpAddr, EthernetAddress>,
}

impl NeighborTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
    /// Records `ip` at `mac`; returns true if this changed the table.
    pub fn insert(&mut self, ip: IpAddr, mac: EthernetAddress) -> bool {
        self.map.insert(ip, mac) != Some(mac)
    }
    /// The MAC of `ip`, if known.
    pub fn get(&self, ip: &IpAddr) -> Option<EthernetAddress> {
        self.map.get(ip).copied()
    }
    /// Forgets `ip`.
    pub fn remove(&mut self, ip: &IpAddr) -> Option<EthernetAddress> {
        self.map.remove(ip)
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &EthernetAddress)> {
        self.map.iter()
    }
}

/// How a service reaches its backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Encapsulate (IPIP / IP6IP6 / 4in6, or GUE) towards the backend's address.
    Tunnel(Encap),
    /// Rewrite the destination MAC to the backend's, nothing else.
    DsrL2,
}

/// Tunnel encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encap {
    /// IP in IP; outer family = backend family.
    Ipip,
    /// GUE variant 0 (4-byte header) over UDP to `port`.
    Gue {
        /// UDP destination port.
        port: u16,
    },
}

/// An outer source address range: `addr` with its low `32 - len` (IPv4) or `128 - len` bits
/// (IPv6, at most 32 of them) replaced per flow by bits of the flow hash, so backends' RSS
/// spreads tunnelled flows over their queues (Katran's 172.16/16 trick). `len` = full width
/// means a fixed source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRange<A> {
    /// Base address.
    pub addr: A,
    /// Prefix length kept from `addr`.
    pub len: u8,
}

impl SourceRange<Ipv4Addr> {
    /// The outer source for a flow hash.
    #[inline]
    pub fn pick(&self, hash: u64) -> Ipv4Addr {
        if self.len >= 32 {
            return self.addr;
        }
        let host_mask = u32::MAX >> self.len;
        Ipv4Addr::from((u32::from(self.addr) & !host_mask) | ((hash >> 40) as u32 & host_mask))
    }
}

impl SourceRange<Ipv6Addr> {
    /// The outer source for a flow hash (varies at most the low 32 bits).
    #[inline]
    pub fn pick(&self, hash: u64) -> Ipv6Addr {
        if self.len >= 128 {
            return self.addr;
        }
        let bits = (128 - u32::from(self.len)).min(32);
        let host_mask = if bits == 32 { u128::from(u32::MAX) } else { (1u128 << bits) - 1 };
        Ipv6Addr::from((u128::from(self.addr) & !host_mask) | (u128::from((hash >> 32) as u32) & host_mask))
    }
}

/// A load-balanced service in a snapshot.
#[derive(Clone, Debug)]
pub struct Service {
    /// Name (stats label).
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// IP protocol number (6 or 17).
    pub proto: u8,
    /// Port, `None` = all ports.
    pub port: Option<u16>,
    /// Forwarding mode.
    pub mode: Mode,
    /// Outer IPv4 source for tunnels to IPv4 backends.
    pub source4: Option<SourceRange<Ipv4Addr>>,
    /// Outer IPv6 source for tunnels to IPv6 backends.
    pub source6: Option<SourceRange<Ipv6Addr>>,
    /// The Maglev table: global backend indices.
    pub table: MaglevTable,
    /// This service's backends in [`Snapshot::backends`].
    pub backends: Range<u16>,
    /// Its counter slot in `LcoreCounters::services` (stable across reloads, see `stats`).
    pub counter: u16,
}

/// A backend in a snapshot.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Address (tunnel destination, or the host whose MAC dsr-l2 uses).
    pub addr: IpAddr,
    /// Stable identity ([`backend_key`] of `addr`), what conntrack stores.
    pub key: [u8; 16],
    /// Owning service index.
    pub service: u16,
    /// Next-hop MAC, if resolved (static, or learned for the next hop).
    pub mac: Option<EthernetAddress>,
    /// Its counter slot in `LcoreCounters::backends` (stable across reloads, see `stats`).
    pub counter: u16,
    /// The tunnel header towards it, prepared (`None` in `dsr-l2` mode).
    pub outer: Option<OuterHeader>,
}

/// A next hop without a MAC yet: `Pipeline::solicit` asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// The IP to resolve.
    pub ip: IpAddr,
    /// The port to ask on.
    pub port: PortId,
}

/// Which counter slots are still free while a snapshot is built (one flag per slot).
struct SlotSet(Vec<bool>);

impl SlotSet {
    fn new(n: usize) -> Self {
        SlotSet(vec![true; n])
    }

    /// Sets slot `i` to `v`, returning its previous value.
    fn replace(&mut self, i: usize, v: bool) -> bool {
        std::mem::replace(&mut self.0[i], v)
    }
}

/// Why a snapshot could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A counter slot out of range or given twice (a control-plane bug, never config input).
    #[error("service {service:?}: counter slot {slot} is out of range or already taken; this is a bug in the control plane, please report it")]
    CounterSlot {
        /// The service being built.
        service: String,
        /// The slot.
        slot: u16,
    },
    /// Too many services.
    #[error("{0} services: at most {MAX_SERVICES} are supported")]
    TooManyServices(usize),
    /// Too many backends over all services.
    #[error("{0} backends over all services: at most {MAX_BACKENDS} are supported")]
    TooManyBackends(usize),
    /// Too many ports.
    #[error("{0} ports: at most {MAX_PORTS} are supported")]
    TooManyPorts(usize),
    /// A port's id does not match its position.
    #[error("port {0}: ids must be 0, 1, 2... in [[port]] order")]
    PortOrder(usize),
    /// Two services with the same VIP, protocol and port.
    #[error("service {0:?}: another service already has this VIP, protocol and port")]
    DuplicateService(String),
    /// The Maglev table could not be built.
    #[error("service {service:?}: {err}")]
    Maglev {
        /// Service name.
        service: String,
        /// Why.
        err: MaglevError,
    },
    /// IPv6 VIP with an IPv4 backend over plain IPIP (6in4 is not supported; use GUE or an IPv6
    /// backend).
    #[error("service {service:?}: backend {backend} is IPv4 but the VIP is IPv6; plain ipip cannot carry it (use encap = \"gue\" or an IPv6 backend)")]
    SixInFour {
        /// Service name.
        service: String,
        /// Backend address.
        backend: IpAddr,
    },
    /// A tunnel to a backend of a family without an outer source address.
    #[error("service {service:?}: no outer source address for {backend}: set host.ipv4/ipv6 or tunnel_source4/6")]
    NoTunnelSource {
        /// Service name.
        service: String,
        /// Backend address.
        backend: IpAddr,
    },
    /// A dsr-l2 backend whose family differs from the VIP's.
    #[error("service {service:?}: dsr-l2 backend {backend} must be the same address family as the VIP")]
    DsrFamily {
        /// Service name.
        service: String,
        /// Backend address.
        backend: IpAddr,
    },
}

/// The host's side of the NIC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostSpec {
    /// Own IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// Own IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// IPv4 gateway for off-link next hops.
    pub gateway4: Option<Ipv4Addr>,
    /// IPv6 gateway.
    pub gateway6: Option<Ipv6Addr>,
    /// L3 MTU of the NIC link.
    pub mtu: u16,
}

/// One backend as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Address.
    pub addr: IpAddr,
    /// Maglev weight.
    pub weight: u32,
    /// Static next-hop MAC.
    pub mac: Option<EthernetAddress>,
    /// Counter slot (`None` = its index in the snapshot's backend array).
    pub counter: Option<u16>,
}

/// One service as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Name.
    pub name: String,
    /// VIP.
    pub vip: IpAddr,
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Port, `None` = all.
    pub port: Option<u16>,
    /// Mode.
    pub mode: Mode,
    /// Outer IPv4 source (default: the host IPv4 address, fixed).
    pub source4: Option<SourceRange<Ipv4Addr>>,
    /// Outer IPv6 source (default: the host IPv6 address, fixed).
    pub source6: Option<SourceRange<Ipv6Addr>>,
    /// Maglev size.
    pub maglev_size: u32,
    /// Backends.
    pub backends: Vec<BackendSpec>,
    /// Counter slot (`None` = its index in config order).
    pub counter: Option<u16>,
}

impl ServiceSpec {
    /// A service with defaults (65537 slots, no backends).
    pub fn new(name: &str, vip: IpAddr, proto: u8, port: Option<u16>, mode: Mode) -> Self {
        ServiceSpec {
            name: name.to_string(),
            vip,
            proto,
            port,
            mode,
            source4: None,
            source6: None,
            maglev_size: MAGLEV_DEFAULT_SIZE,
            backends: Vec::new(),
            counter: None,
        }
    }

    /// Adds a backend (builder style).
    pub fn backend(mut self, addr: IpAddr, weight: u32, mac: Option<EthernetAddress>) -> Self {
        self.backends.push(BackendSpec { addr, weight, mac, counter: None });
        self
    }
}

/// Everything a snapshot is built from, independent of the TOML layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotBuilder {
    /// Host addresses, gateways, MTU.
    pub host: HostSpec,
    /// Conntrack idle timeouts.
    pub timeouts: Timeouts,
    /// Services in config order (their counter index).
    pub services: Vec<ServiceSpec>,
}

/// The immutable forwarding state (see the module docs).
#[derive(Debug)]
pub struct Snapshot {
    ports: Vec<PortInfo>,
    /// For each port: where its non-VIP traffic goes (NIC → its kernel port, kernel → its NIC).
    peer: [Option<PortId>; MAX_PORTS],
    /// Host addresses, gateways, MTU.
    pub host: HostSpec,
    /// Conntrack timeouts.
    pub timeouts: Timeouts,
    /// IPv4 VIPs, sorted, each with its services (a range of `services_by_vip`). Two integer
    /// indexes, one per family, so a lookup is a binary search over plain integers (it runs for
    /// every packet) and an IPv6 packet to `::ffff:a.b.c.d` never matches IPv4 VIP a.b.c.d.
    vips4: Vec<(u32, VipServices)>,
    /// IPv6 VIPs, the same way.
    vips6: Vec<(u128, VipServices)>,
    /// Service indices grouped by VIP (port-specific first, then all-ports).
    services_by_vip: Vec<u16>,
    /// Services in config order.
    pub services: Vec<Service>,
    /// Backends of all services, grouped by service.
    pub backends: Vec<Backend>,
    /// Next hops to solicit.
    pub unresolved: Vec<Unresolved>,
}

fn key_of(ip: IpAddr) -> [u8; 16] {
    backend_key(ip)
}

impl SnapshotBuilder {
    /// Builds the snapshot for `ports` with the MACs known in `neighbors`.
    pub fn build(&self, ports: &[PortInfo], neighbors: &NeighborTable) -> Result<Snapshot, BuildError> {
        if ports.len() > MAX_PORTS {
            return Err(BuildError::TooManyPorts(ports.len()));
        }
        if self.services.len() > MAX_SERVICES {
            return Err(BuildError::TooManyServices(self.services.len()));
        }
        let total: usize = self.services.iter().map(|s| s.backends.len()).sum();
        if total > MAX_BACKENDS {
            return Err(BuildError::TooManyBackends(total));
        }
        let mut peer = [None; MAX_PORTS];
        for (i, p) in ports.iter().enumerate() {
            if usize::from(p.id.0) != i {
                return Err(BuildError::PortOrder(i));
            }
            if p.role == PortRole::Nic {
                if let Some(k) = p.kernel {
                    peer[i] = Some(k);
                    if let Some(slot) = peer.get_mut(usize::from(k.0)) {
                        *slot = Some(p.id);
                    }
                }
            }
        }
        let first_nic = ports.iter().find(|p| p.role == PortRole::Nic).map(|p| p.id);
        let host = self.host;
        let mut services = Vec::with_capacity(self.services.len());
        let mut backends: Vec<Backend> = Vec::with_capacity(total);
        let mut unresolved: Vec<Unresolved> = Vec::new();
        // Counter slots must be in range and unique, or two identities would share counts.
        let mut service_slot_free = SlotSet::new(MAX_SERVICES);
        let mut backend_slot_free = SlotSet::new(MAX_BACKENDS);
        for (si, spec) in self.services.iter().enumerate() {
            let start = backends.len() as u16;
            let counter = spec.counter.unwrap_or(si as u16);
            if usize::from(counter) >= MAX_SERVICES || !service_slot_free.replace(usize::from(counter), false) {
                return Err(BuildError::CounterSlot { service: spec.name.clone(), slot: counter });
            }
            let source4 = spec.source4.or(host.ipv4.map(|(a, _)| SourceRange { addr: a, len: 32 }));
            let source6 = spec.source6.or(host.ipv6.map(|(a, _)| SourceRange { addr: a, len: 128 }));
            for b in &spec.backends {
                match spec.mode {
                    Mode::Tunnel(encap) => {
                        if encap == Encap::Ipip && spec.vip.is_ipv6() && b.addr.is_ipv4() {
                            return Err(BuildError::SixInFour { service: spec.name.clone(), backend: b.addr });
                        }
                        let has_source = if b.addr.is_ipv4() { source4.is_some() } else { source6.is_some() };
                        if !has_source {
                            return Err(BuildError::NoTunnelSource { service: spec.name.clone(), backend: b.addr });
                        }
                    }
                    Mode::DsrL2 => {
                        if b.addr.is_ipv4() != spec.vip.is_ipv4() {
                            return Err(BuildError::DsrFamily { service: spec.name.clone(), backend: b.addr });
                        }
                    }
                }
                let next_hop = next_hop(&host, b.addr);
                let mac = b.mac.or_else(|| next_hop.and_then(|nh| neighbors.get(&nh)));
                if mac.is_none() {
                    if let (Some(ip), Some(port)) = (next_hop, first_nic) {
                        if !unresolved.iter().any(|u| u.ip == ip) {
                            unresolved.push(Unresolved { ip, port });
                        }
                    }
                }
                let counter = b.counter.unwrap_or(backends.len() as u16);
                if usize::from(counter) >= MAX_BACKENDS || !backend_slot_free.replace(usize::from(counter), false) {
                    return Err(BuildError::CounterSlot { service: spec.name.clone(), slot: counter });
                }
                let outer = match spec.mode {
                    Mode::Tunnel(encap) => Some(
                        OuterHeader::new(encap, spec.vip.is_ipv6(), b.addr, source4, source6)
                            .ok_or_else(|| BuildError::NoTunnelSource { service: spec.name.clone(), backend: b.addr })?,
                    ),
                    Mode::DsrL2 => None,
                };
                backends.push(Backend { addr: b.addr, key: key_of(b.addr), service: si as u16, mac, counter, outer });
            }
            let end = backends.len() as u16;
            let mb: Vec<MaglevBackend> = (start..end)
                .zip(&spec.backends)
                .map(|(i, b)| MaglevBackend { key: key_of(b.addr), weight: b.weight, index: i })
                .collect();
            let table = MaglevTable::build(&mb, spec.maglev_size)
                .map_err(|err| BuildError::Maglev { service: spec.name.clone(), err })?;
            services.push(Service {
                name: spec.name.clone(),
                vip: spec.vip,
                proto: spec.proto,
                port: spec.port,
                mode: spec.mode,
                source4,
                source6,
                table,
                backends: start..end,
                counter,
            });
        }
        // VIP index: sorted keys; per VIP, port-specific services before all-ports ones.
        let mut order: Vec<u16> = (0..services.len() as u16).collect();
        order.sort_by_key(|&i| {
            let s = &services[usize::from(i)];
            (vip_key(s.vip), s.port.is_none(), s.proto, s.port)
        });
        for w in order.windows(2) {
            let (a, b) = (&services[usize::from(w[0])], &services[usize::from(w[1])]);
            if a.vip == b.vip && a.proto == b.proto && a.port == b.port {
                return Err(BuildError::DuplicateService(b.name.clone()));
            }
        }
        let mut vips4: Vec<(u32, VipServices)> = Vec::new();
        let mut vips6: Vec<(u128, VipServices)> = Vec::new();
        for (pos, &si) in order.iter().enumerate() {
            // `order` is sorted by `vip_key`: each VIP's services are adjacent, and each family's
            // VIPs come in ascending integer order (big-endian bytes).
            let pos = pos as u16;
            match services[usize::from(si)].vip {
                IpAddr::V4(a) => extend_run(&mut vips4, u32::from(a), pos),
                IpAddr::V6(a) => extend_run(&mut vips6, u128::from(a), pos),
            }
        }
        Ok(Snapshot {
            ports: ports.to_vec(),
            peer,
            host,
            timeouts: self.timeouts,
            vips4,
            vips6,
            services_by_vip: order,
            services,
            backends,
            unresolved,
        })
    }
}

/// The next hop towards `ip`: itself when on-link, else the gateway of its family.
fn next_hop(host: &HostSpec, ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => match host.ipv4 {
            Some((h, len)) if same_prefix(&h.octets(), &a.octets(), len) => Some(ip),
            _ => host.gateway4.map(IpAddr::V4),
        },
        IpAddr::V6(a) => match host.ipv6 {
            Some((h, len)) if same_prefix(&h.octets(), &a.octets(), len) => Some(ip),
            _ => host.gateway6.map(IpAddr::V6),
        },
    }
}

fn same_prefix(a: &[u8], b: &[u8], len: u8) -> bool {
    let len = usize::from(len).min(a.len() * 8);
    let (full, rest) = (len / 8, len % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// The sort key that groups services by VIP: the 16-byte form plus the family, so an IPv4 VIP
/// and the IPv4-mapped IPv6 address `::ffff:a.b.c.d` are different VIPs.
fn vip_key(ip: IpAddr) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..16].copy_from_slice(&key_of(ip));
    k[16] = u8::from(ip.is_ipv6());
    k
}

/// The services of one VIP: `services_by_vip[start..end]` (port-specific ones first). Found once
/// per packet by [`Snapshot::vip_services`] and carried with the packet, so the service lookup
/// does not search the VIP again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipServices {
    start: u16,
    end: u16,
}

/// The services of `vip` in one family's index (built by [`extend_run`]), if it is a VIP.
#[inline]
fn find_run<K: Ord>(index: &[(K, VipServices)], vip: K) -> Option<VipServices> {
    index.binary_search_by(|(v, _)| v.cmp(&vip)).ok().map(|i| index[i].1)
}

/// Adds position `pos` of `services_by_vip` to the index: to `vip`'s run if it is the last entry,
/// else as a new entry.
fn extend_run<K: PartialEq>(index: &mut Vec<(K, VipServices)>, vip: K, pos: u16) {
    match index.last_mut() {
        Some((last, r)) if *last == vip => r.end = pos + 1,
        _ => index.push((vip, VipServices { start: pos, end: pos + 1 })),
    }
}

impl Snapshot {
    /// Builds from a validated config.
    pub fn build(config: &Config, ports: &[PortInfo], neighbors: &NeighborTable) -> Result<Snapshot, BuildError> {
        SnapshotBuilder::from_config(config).build(ports, neighbors)
    }

    /// The ports.
    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    /// A port by id.
    #[inline]
    pub fn port(&self, id: PortId) -> Option<&PortInfo> {
        self.ports.get(usize::from(id.0))
    }

    /// Where a port's exception traffic goes (NIC ↔ kernel port).
    #[inline]
    pub fn peer(&self, id: PortId) -> Option<PortId> {
        self.peer.get(usize::from(id.0)).copied().flatten()
    }

    /// True if `ip` is a VIP.
    #[inline]
    pub fn is_vip(&self, ip: IpAddr) -> bool {
        self.vip_services(ip).is_some()
    }

    /// The services of VIP `ip`, `None` if `ip` is not a VIP.
    #[inline]
    pub fn vip_services(&self, ip: IpAddr) -> Option<VipServices> {
        match ip {
            IpAddr::V4(a) => find_run(&self.vips4, u32::from(a)),
            IpAddr::V6(a) => find_run(&self.vips6, u128::from(a)),
        }
    }

    /// The service for (VIP, protocol, port): the port-specific one, else the VIP's all-ports
    /// service of that protocol.
    #[inline]
    pub fn service_for(&self, vip: IpAddr, proto: u8, port: u16) -> Option<u16> {
        self.service_of(self.vip_services(vip)?, proto, port)
    }

    /// [`Self::service_for`] among the services of a VIP already looked up.
    #[inline]
    pub fn service_of(&self, vip: VipServices, proto: u8, port: u16) -> Option<u16> {
        let list = self.services_by_vip.get(usize::from(vip.start)..usize::from(vip.end))?;
        let mut any = None;
        for &si in list {
            let s = &self.services[usize::from(si)];
            if s.proto != proto {
                continue;
            }
            match s.port {
                Some(p) if p == port => return Some(si),
                None if any.is_none() => any = Some(si),
                _ => {}
            }
        }
        any
    }

    /// The backend with identity `key` among service `si`'s backends.
    #[inline]
    pub fn find_backend(&self, si: u16, key: &[u8; 16]) -> Option<u16> {
        let r = self.services.get(usize::from(si))?.backends.clone();
        r.into_iter().find(|&i| self.backends[usize::from(i)].key == *key)
    }

    /// Host IPv4 address, if any.
    pub fn host_ipv4(&self) -> Option<Ipv4Addr> {
        self.host.ipv4.map(|(a, _)| a)
    }

    /// Host IPv6 address, if any.
    pub fn host_ipv6(&self) -> Option<Ipv6Addr> {
        self.host.ipv6.map(|(a, _)| a)
    }
}

impl SnapshotBuilder {
    /// Puts the services (config order) and backends (`Config::backends` order) in the counter
    /// slots the control plane assigned (`stats::CounterSlots`); slots not given stay
    /// positional.
    pub fn with_counter_slots(mut self, services: &[u16], backends: &[u16]) -> SnapshotBuilder {
        let mut backend_slots = backends.iter();
        for (si, spec) in self.services.iter_mut().enumerate() {
            spec.counter = services.get(si).copied();
            for b in &mut spec.backends {
                b.counter = backend_slots.next().copied();
            }
        }
        self
    }

    /// The builder input for a validated config.
    pub fn from_config(config: &Config) -> SnapshotBuilder {
        let h = &config.host;
        let host = HostSpec {
            ipv4: h.ipv4.map(|p| (p.addr, p.len)),
            ipv6: h.ipv6.map(|p| (p.addr, p.len)),
            gateway4: h.gateway4,
            gateway6: h.gateway6,
            mtu: h.mtu,
        };
        let c = &config.conntrack;
        let secs = |d: std::time::Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        let timeouts = Timeouts {
            tcp_syn: secs(c.tcp_syn_timeout),
            tcp_established: secs(c.tcp_established_timeout),
            tcp_closing: secs(c.tcp_closing_timeout),
            udp: secs(c.udp_timeout),
        };
        let services = config
            .services
            .iter()
            .map(|s| {
                let (mode, source4, source6) = match s.mode {
                    ConfigMode::DsrL2 => (Mode::DsrL2, None, None),
                    ConfigMode::Tunnel { encap, source4, source6 } => {
                        let encap = match encap {
                            ConfigEncap::Ipip => Encap::Ipip,
                            ConfigEncap::Gue { port } => Encap::Gue { port },
                        };
                        (
                            Mode::Tunnel(encap),
                            source4.map(|p| SourceRange { addr: p.addr, len: p.len }),
                            source6.map(|p| SourceRange { addr: p.addr, len: p.len }),
                        )
                    }
                };
                ServiceSpec {
                    name: s.name.clone(),
                    vip: s.vip,
                    proto: match s.protocol {
                        Protocol::Tcp => 6,
                        Protocol::Udp => 17,
                    },
                    port: s.port,
                    mode,
                    source4,
                    source6,
                    maglev_size: s.maglev_size,
                    backends: s
                        .backends
                        .iter()
                        .map(|b| BackendSpec { addr: b.address, weight: u32::from(b.weight), mac: b.mac, counter: None })
                        .collect(),
                    counter: None,
                }
            })
            .collect();
        SnapshotBuilder { host, timeouts, services }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Vec<PortInfo> {
        vec![
            PortInfo { id: PortId(0), name: "nic0".into(), role: PortRole::Nic, mac: EthernetAddress([2, 0, 0, 0, 0, 1]), kernel: Some(PortId(1)) },
            PortInfo { id: PortId(1), name: "kni0".into(), role: PortRole::Kernel, mac: EthernetAddress([2, 0, 0, 0, 0, 1]), kernel: None },
        ]
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn host() -> HostSpec {
        HostSpec {
            ipv4: Some(("198.18.0.2".parse().unwrap(), 24)),
            ipv6: Some(("fd00::2".parse().unwrap(), 64)),
            gateway4: Some("198.18.0.1".parse().unwrap()),
            gateway6: None,
            mtu: 1500,
        }
    }

    fn builder(services: Vec<ServiceSpec>) -> SnapshotBuilder {
        SnapshotBuilder { host: host(), timeouts: Timeouts::default(), services }
    }

    const IPIP: Mode = Mode::Tunnel(Encap::Ipip);

    /// A port-specific service wins over the VIP's all-ports service of the same protocol; the
    /// other protocol and other VIPs do not match.
    #[test]
    fn service_lookup_prefers_the_exact_port() {
        let s = builder(vec![
            ServiceSpec::new("all", ip("198.18.0.100"), 6, None, IPIP).backend(ip("198.18.1.1"), 1, None),
            ServiceSpec::new("web", ip("198.18.0.100"), 6, Some(80), IPIP).backend(ip("198.18.1.2"), 1, None),
            ServiceSpec::new("dns", ip("198.18.0.100"), 17, Some(53), IPIP).backend(ip("198.18.1.3"), 1, None),
            ServiceSpec::new("v6", ip("fd00::100"), 6, Some(80), IPIP).backend(ip("fd00:1::1"), 1, None),
        ])
        .build(&ports(), &NeighborTable::new())
        .unwrap();
        let vip = ip("198.18.0.100");
        assert_eq!(s.service_for(vip, 6, 80), Some(1));
        assert_eq!(s.service_for(vip, 6, 8080), Some(0));
        assert_eq!(s.service_for(vip, 17, 53), Some(2));
        assert_eq!(s.service_for(vip, 17, 54), None);
        assert_eq!(s.service_for(ip("fd00::100"), 6, 80), Some(3));
        assert_eq!(s.service_for(ip("198.18.0.101"), 6, 80), None);
        // An IPv6 packet to the IPv4-mapped form of a v4 VIP is not VIP traffic.
        assert!(s.is_vip(vip));
        assert!(!s.is_vip(ip("::ffff:198.18.0.100")));
        assert!(s.is_vip(vip));
        assert_eq!(s.peer(PortId(0)), Some(PortId(1)));
        assert_eq!(s.peer(PortId(1)), Some(PortId(0)));
        assert_eq!(s.peer(PortId(9)), None);
    }

    /// Next hops: backends with a static MAC need nothing; on-link backends are resolved
    /// themselves, off-link ones through the gateway (asked once); a learned MAC resolves.
    #[test]
    fn next_hops_and_unresolved() {
        let b = builder(vec![ServiceSpec::new("s", ip("198.18.0.100"), 6, None, IPIP)
            .backend(ip("198.18.0.10"), 1, Some(EthernetAddress([2, 0, 0, 0, 0, 0x10])))
            .backend(ip("198.18.0.11"), 1, None)
            .backend(ip("10.9.9.9"), 1, None)
            .backend(ip("10.9.9.10"), 1, None)]);
        let s = b.build(&ports(), &NeighborTable::new()).unwrap();
        let want: Vec<IpAddr> = vec![ip("198.18.0.11"), ip("198.18.0.1")];
        assert_eq!(s.unresolved.iter().map(|u| u.ip).collect::<Vec<_>>(), want);
        assert!(s.unresolved.iter().all(|u| u.port == PortId(0)));
        let mut n = NeighborTable::new();
        n.insert(ip("198.18.0.1"), EthernetAddress([2, 0, 0, 0, 0, 0xfe]));
        let s = b.build(&ports(), &n).unwrap();
        assert_eq!(s.unresolved.len(), 1);
        assert_eq!(s.backends[2].mac, Some(EthernetAddress([2, 0, 0, 0, 0, 0xfe])));
        assert_eq!(s.backends[0].mac, Some(EthernetAddress([2, 0, 0, 0, 0, 0x10])));
    }

    /// Outer source ranges keep the prefix and take the host bits from the flow hash.
    #[test]
    fn source_ranges_vary_host_bits_only() {
        let r = SourceRange { addr: "172.16.0.0".parse::<Ipv4Addr>().unwrap(), len: 16 };
        for h in [0u64, u64::MAX, 0x0123_4567_89ab_cdef] {
            let a = r.pick(h).octets();
            assert_eq!(&a[..2], &[172, 16]);
        }
        assert_ne!(r.pick(0), r.pick(u64::MAX));
        let fixed = SourceRange { addr: "198.18.0.2".parse::<Ipv4Addr>().unwrap(), len: 32 };
        assert_eq!(fixed.pick(12345), fixed.addr);
        let r6 = SourceRange { addr: "fd00:ffff::".parse::<Ipv6Addr>().unwrap(), len: 96 };
        assert_eq!(r6.pick(0xdead_beef_0000_0000), "fd00:ffff::dead:beef".parse::<Ipv6Addr>().unwrap());
    }

    /// Configuration mistakes the builder catches: 6in4 over plain IPIP, no outer source,
    /// dsr-l2 across families, duplicate services, a non-prime table.
    #[test]
    fn build_errors() {
        let ports = ports();
        let n = NeighborTable::new();
        let six_in_four = builder(vec![ServiceSpec::new("x", ip("fd00::100"), 6, None, IPIP).backend(ip("198.18.1.1"), 1, None)]);
        assert!(matches!(six_in_four.build(&ports, &n), Err(BuildError::SixInFour { .. })));
        let mut no_v6 = builder(vec![ServiceSpec::new("x", ip("198.18.0.100"), 6, None, IPIP).backend(ip("fd00:1::1"), 1, None)]);
        no_v6.host.ipv6 = None;
        assert!(matches!(no_v6.build(&ports, &n), Err(BuildError::NoTunnelSource { .. })));
        let dsr = builder(vec![ServiceSpec::new("x", ip("198.18.0.100"), 6, None, Mode::DsrL2).backend(ip("fd00::1"), 1, None)]);
        assert!(matches!(dsr.build(&ports, &n), Err(BuildError::DsrFamily { .. })));
        let dup = builder(vec![
            ServiceSpec::new("a", ip("198.18.0.100"), 6, Some(80), IPIP),
            ServiceSpec::new("b", ip("198.18.0.100"), 6, Some(80), IPIP),
        ]);
        assert_eq!(dup.build(&ports, &n).unwrap_err(), BuildError::DuplicateService("b".into()));
        let mut s = ServiceSpec::new("p", ip("198.18.0.100"), 6, None, IPIP);
        s.maglev_size = 1000;
        assert!(matches!(builder(vec![s]).build(&ports, &n), Err(BuildError::Maglev { .. })));
    }

    /// The shipped example config builds into a snapshot (the seam with `config.rs`).
    #[test]
    fn example_config_builds() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/dataplane.toml");
        let config = Config::load(std::path::Path::new(path)).expect("example config is valid");
        let ports: Vec<PortInfo> = config
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| PortInfo {
                id: PortId(i as u16),
                name: p.name.clone(),
                role: p.role,
                mac: EthernetAddress([2, 0, 0, 0, 0, i as u8]),
                kernel: p.kernel.as_ref().and_then(|k| config.port_index(k)).map(|k| PortId(k as u16)),
            })
            .collect();
        let s = Snapshot::build(&config, &ports, &NeighborTable::new()).expect("snapshot builds");
        assert_eq!(s.services.len(), config.services.len());
        assert_eq!(s.backends.len(), config.backend_count());
        assert_eq!(s.timeouts.tcp_established, 900);
        for svc in &s.services {
            assert!(svc.table.slots().iter().all(|&b| b == crate::maglev::NO_BACKEND || svc.backends.contains(&b)));
        }
    }
}
