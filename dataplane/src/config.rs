//! The dataplane's TOML configuration: parsed, then validated up front into typed values.
//!
//! Contract:
//! - [`Config::parse`] / [`Config::load`] either return a [`Config`] in which every rule of
//!   `docs/CONFIG.md` holds (addresses parse, VIPs are unique, address families fit the
//!   forwarding mode, every limit of [`crate::limits`] is respected), or one [`ConfigError`]
//!   naming the offending field with a path such as `service[1].backend[0].weight` and saying
//!   what to change. Nothing downstream (snapshot builder, runtime) re-checks these rules.
//! - TOML syntax errors, unknown keys (every table is `deny_unknown_fields`) and type mismatches
//!   keep toml's own message with its line and column.
//! - Parsing is two-staged: serde reads a private `raw` mirror of the file whose leaves are
//!   strings and `i64`s, so range and format errors are reported by us with the field path
//!   rather than by serde with only a line number.
//! - The same text always gives the same `Config` (no clock, no environment, no I/O besides
//!   reading the file in `load`).
//!
//! The typed `Config` serializes (for the control socket's `config` command) back to the same
//! shape as the TOML file, with every default filled in.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::limits::{
    CONNTRACK_DEFAULT_CAPACITY, CONNTRACK_MAX_CAPACITY, CONNTRACK_MIN_CAPACITY, CPU_ID_MAX, LCORE_ID_MAX,
    MAGLEV_DEFAULT_SIZE, MAGLEV_MAX_SIZE, MAX_BACKENDS, MAX_LCORES, MAX_PORTS, MAX_SERVICES,
    MAX_TIMEOUT_SECS, MTU_MAX, MTU_MIN,
};
use crate::maglev::is_prime;
use crate::wire::EthernetAddress;

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/dataplane.sock";
/// Default UDP destination port of GUE encapsulation (the port Katran and GLB examples use).
pub const DEFAULT_GUE_PORT: u16 = 6080;
/// Default conntrack timeouts, seconds: half-open TCP, established TCP, closing TCP, UDP.
pub const DEFAULT_TCP_SYN_TIMEOUT: u32 = 5;
/// Established TCP flows idle this long are forgotten (seconds).
pub const DEFAULT_TCP_ESTABLISHED_TIMEOUT: u32 = 900;
/// TCP flows that saw FIN or RST are forgotten after this long (seconds).
pub const DEFAULT_TCP_CLOSING_TIMEOUT: u32 = 10;
/// UDP flows idle this long are forgotten (seconds).
pub const DEFAULT_UDP_TIMEOUT: u32 = 30;
/// Default host MTU.
pub const DEFAULT_MTU: u16 = 1500;

/// EAL arguments the runtime derives from the config; users must not pass them in `eal.args`.
const RESERVED_EAL_ARGS: &[(&str, &str)] = &[
    ("-l", "eal.lcores, eal.main_lcore and eal.cpus"),
    ("--lcores", "eal.lcores, eal.main_lcore and eal.cpus"),
    ("-c", "eal.lcores, eal.main_lcore and eal.cpus"),
    ("--main-lcore", "eal.main_lcore"),
    ("--master-lcore", "eal.main_lcore"),
    ("--vdev", "the [[port]] devargs"),
];

// ---------------------------------------------------------------------------------------------
// Typed configuration
// ---------------------------------------------------------------------------------------------

/// A validated dataplane configuration. See `docs/CONFIG.md` for every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// DPDK EAL settings.
    pub eal: EalConfig,
    /// DPDK ports, in `[[port]]` order; a port's index here is its [`crate::pipeline::PortId`].
    #[serde(rename = "port")]
    pub ports: Vec<PortConfig>,
    /// The host's own addresses on the NIC (owned by the kernel, reached through the TAP).
    pub host: HostConfig,
    /// Per-lcore connection tracking.
    pub conntrack: ConntrackConfig,
    /// The control socket.
    pub control: ControlConfig,
    /// Load-balanced services, in `[[service]]` order (the service's counter index).
    #[serde(rename = "service")]
    pub services: Vec<ServiceConfig>,
}

/// `[eal]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EalConfig {
    /// Extra EAL arguments; the runtime adds `-l`, `--main-lcore` and one `--vdev` per port.
    pub args: Vec<String>,
    /// The lcore running the control thread.
    pub main_lcore: u32,
    /// Forwarding lcores, each with one RX and one TX queue per port. Never contains `main_lcore`.
    pub lcores: Vec<u32>,
    /// `[eal.cpus]`: the CPU an lcore runs on, for the lcores that do not run on the CPU of their
    /// own number (see [`Self::cpu`]). Keys are `main_lcore` or one of `lcores`.
    #[serde(serialize_with = "cpus_as_table", skip_serializing_if = "BTreeMap::is_empty")]
    pub cpus: BTreeMap<u32, u32>,
}

impl EalConfig {
    /// The CPU lcore `lcore` is pinned to: its `[eal.cpus]` entry, else the CPU of the same
    /// number (EAL's default).
    pub fn cpu(&self, lcore: u32) -> u32 {
        self.cpus.get(&lcore).copied().unwrap_or(lcore)
    }

    /// EAL's `--lcores` value for `main_lcore` and `lcores`: `L@CPU` per lcore, e.g. `0@0,1@1,2@1`.
    pub fn lcores_arg(&self) -> String {
        std::iter::once(self.main_lcore).chain(self.lcores.iter().copied()).map(|l| format!("{l}@{}", self.cpu(l))).collect::<Vec<_>>().join(",")
    }
}

/// `[eal.cpus]` as TOML writes it: a table with the lcore ids as keys.
fn cpus_as_table<S: Serializer>(cpus: &BTreeMap<u32, u32>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(cpus.iter().map(|(l, c)| (l.to_string(), c)))
}

/// What a port is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortRole {
    /// A network-facing port: VIP traffic arrives here and leaves here.
    Nic,
    /// An exception port (TAP / virtio-user) into the kernel for one NIC's non-VIP traffic.
    Kernel,
}

/// `[[port]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortConfig {
    /// Unique name, used by `kernel` and in stats.
    pub name: String,
    /// A DPDK vdev string (`net_tap0,iface=dp0`) or a PCI address (`0000:03:00.0`).
    pub devargs: String,
    /// `nic` or `kernel`.
    pub role: PortRole,
    /// For a `nic`: the name of its `kernel` exception port (absent: non-VIP traffic is dropped
    /// as `unsupported`). Always `None` for a `kernel` port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

impl PortConfig {
    /// True for a PCI address (`DDDD:BB:DD.F` or `BB:DD.F`), false for a vdev string.
    pub fn is_pci(&self) -> bool {
        is_pci_address(&self.devargs)
    }
}

/// The value of `key` in vdev devargs `NAME,key=value,...` when the device name starts with
/// `driver` (e.g. `net_af_packet` for `net_af_packet0`); `None` for another driver or a missing
/// key. The one reader of vdev arguments for the config checks and the runtime's pool sizing.
pub fn devarg<'a>(devargs: &'a str, driver: &str, key: &str) -> Option<&'a str> {
    let mut parts = devargs.split(',');
    if !parts.next().is_some_and(|name| name.trim().starts_with(driver)) {
        return None;
    }
    parts.find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='))
}

/// An IPv4 address with its prefix length, e.g. `198.18.0.2/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    /// The address (host bits kept: it is the host's own address).
    pub addr: Ipv4Addr,
    /// Prefix length, 0..=32.
    pub len: u8,
}

impl Ipv4Prefix {
    /// True if `ip` is in the same subnet (on-link).
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.len == 0 { 0 } else { u32::MAX << (32 - u32::from(self.len)) };
        u32::from(self.addr) & mask == u32::from(ip) & mask
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Ipv4Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An IPv6 address with its prefix length, e.g. `fd00::2/64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    /// The address (host bits kept).
    pub addr: Ipv6Addr,
    /// Prefix length, 0..=128.
    pub len: u8,
}

impl Ipv6Prefix {
    /// True if `ip` is in the same subnet (on-link).
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let mask = if self.len == 0 { 0 } else { u128::MAX << (128 - u32::from(self.len)) };
        u128::from(self.addr) & mask == u128::from(ip) & mask
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Serialize for Ipv6Prefix {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `[host]`: the host's own addresses on the NIC. At least one of `ipv4`/`ipv6` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostConfig {
    /// The host's IPv4 address and on-link prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Prefix>,
    /// The host's IPv6 address and on-link prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Prefix>,
    /// IPv4 next hop for off-link backends (inside `ipv4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway4: Option<Ipv4Addr>,
    /// IPv6 next hop for off-link backends (inside `ipv6`, or link-local).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway6: Option<Ipv6Addr>,
    /// L3 MTU of the NIC's link, 576..=9000.
    pub mtu: u16,
}

impl HostConfig {
    /// True when `ip` is in one of the host's on-link prefixes.
    pub fn is_on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.ipv4.is_some_and(|p| p.contains(a)),
            IpAddr::V6(a) => self.ipv6.is_some_and(|p| p.contains(a)),
        }
    }

    /// The IP next hop towards `ip`: `ip` itself when on-link, else the gateway of its family.
    pub fn next_hop(&self, ip: IpAddr) -> Option<IpAddr> {
        if self.is_on_link(ip) {
            return Some(ip);
        }
        match ip {
            IpAddr::V4(_) => self.gateway4.map(IpAddr::V4),
            IpAddr::V6(_) => self.gateway6.map(IpAddr::V6),
        }
    }
}

/// `[conntrack]`: per-lcore connection tracking.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConntrackConfig {
    /// Entries per lcore (see `docs/CONFIG.md` for the memory it costs).
    pub capacity: usize,
    /// TCP flows that have not completed the handshake.
    #[serde(serialize_with = "ser_secs")]
    pub tcp_syn_timeout: Duration,
    /// Established TCP flows, idle.
    #[serde(serialize_with = "ser_secs")]
    pub tcp_established_timeout: Duration,
    /// TCP flows after FIN or RST.
    #[serde(serialize_with = "ser_secs")]
    pub tcp_closing_timeout: Duration,
    /// UDP flows, idle.
    #[serde(serialize_with = "ser_secs")]
    pub udp_timeout: Duration,
}

impl Default for ConntrackConfig {
    fn default() -> Self {
        ConntrackConfig {
            capacity: CONNTRACK_DEFAULT_CAPACITY,
            tcp_syn_timeout: Duration::from_secs(DEFAULT_TCP_SYN_TIMEOUT.into()),
            tcp_established_timeout: Duration::from_secs(DEFAULT_TCP_ESTABLISHED_TIMEOUT.into()),
            tcp_closing_timeout: Duration::from_secs(DEFAULT_TCP_CLOSING_TIMEOUT.into()),
            udp_timeout: Duration::from_secs(DEFAULT_UDP_TIMEOUT.into()),
        }
    }
}

/// `[control]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlConfig {
    /// Absolute path of the UNIX control socket.
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig { socket: PathBuf::from(DEFAULT_SOCKET) }
    }
}

/// Transport protocol of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// TCP: a flow starts with a SYN.
    Tcp,
    /// UDP: any datagram starts a flow.
    Udp,
}

impl Protocol {
    /// `"tcp"` / `"udp"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Tunnel encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encap {
    /// Plain IP-in-IP: IPIP (4in4), IP6IP6 (6in6) or 4in6, chosen by the address families.
    Ipip,
    /// Generic UDP Encapsulation (variant 0: a 4-byte GUE header after UDP, then the inner IP
    /// packet) to `port`.
    Gue {
        /// UDP destination port on the backends.
        port: u16,
    },
}

/// How a service's packets reach a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Direct server return through a tunnel to the backend's address.
    Tunnel {
        /// The encapsulation.
        encap: Encap,
        /// Outer IPv4 source (`tunnel_source4`: an address, or a prefix such as
        /// `172.16.0.0/16` whose host bits the pipeline fills from the flow hash so backend NICs
        /// spread flows over RSS queues; default the host IPv4 address); set when some backend
        /// is IPv4.
        source4: Option<Ipv4Prefix>,
        /// Outer IPv6 source (`tunnel_source6`: an address or a prefix, as for IPv4; default the
        /// host IPv6 address); set when some backend is IPv6.
        source6: Option<Ipv6Prefix>,
    },
    /// Direct server return on the same L2 segment: only the destination MAC is rewritten.
    DsrL2,
}

impl Mode {
    /// `"tunnel"` or `"dsr-l2"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Tunnel { .. } => "tunnel",
            Mode::DsrL2 => "dsr-l2",
        }
    }
}

/// `[[service]]`: one VIP, protocol and port (or all ports), balanced over its backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Unique name, the stats label.
    pub name: String,
    /// Virtual IP.
    pub vip: IpAddr,
    /// `tcp` or `udp`.
    pub protocol: Protocol,
    /// Destination port; `None` = every port of `protocol` on this VIP (a service with a
    /// specific port on the same VIP takes precedence).
    pub port: Option<u16>,
    /// Forwarding mode.
    pub mode: Mode,
    /// Maglev lookup table size: prime, >= number of backends, <= `MAGLEV_MAX_SIZE`.
    pub maglev_size: u32,
    /// Backends, in config order (the Maglev permutation order and counter order).
    pub backends: Vec<BackendConfig>,
}

/// `[[service.backend]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BackendConfig {
    /// The backend's address (tunnel destination, or the address whose MAC dsr-l2 uses).
    pub address: IpAddr,
    /// Maglev weight, 1..=65535.
    pub weight: u16,
    /// Static next-hop MAC; skips neighbor resolution.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser_opt_mac")]
    pub mac: Option<EthernetAddress>,
}

impl Serialize for ServiceConfig {
    /// The TOML shape: `mode`, `encap`, `gue_port`, `tunnel_source4/6` as separate keys.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("vip", &self.vip)?;
        m.serialize_entry("protocol", &self.protocol)?;
        if let Some(p) = self.port {
            m.serialize_entry("port", &p)?;
        }
        m.serialize_entry("mode", self.mode.as_str())?;
        if let Mode::Tunnel { encap, source4, source6 } = self.mode {
            match encap {
                Encap::Ipip => m.serialize_entry("encap", "ipip")?,
                Encap::Gue { port } => {
                    m.serialize_entry("encap", "gue")?;
                    m.serialize_entry("gue_port", &port)?;
                }
            }
            if let Some(p) = source4 {
                let v = if p.len == 32 { p.addr.to_string() } else { format!("{}/{}", p.addr, p.len) };
                m.serialize_entry("tunnel_source4", &v)?;
            }
            if let Some(p) = source6 {
                let v = if p.len == 128 { p.addr.to_string() } else { format!("{}/{}", p.addr, p.len) };
                m.serialize_entry("tunnel_source6", &v)?;
            }
        }
        m.serialize_entry("maglev_size", &self.maglev_size)?;
        m.serialize_entry("backend", &self.backends)?;
        m.end()
    }
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

fn ser_opt_mac<S: Serializer>(mac: &Option<EthernetAddress>, s: S) -> Result<S::Ok, S::Error> {
    match mac {
        Some(m) => s.collect_str(m),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source} (check the path and its permissions)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key or a value of the wrong type; toml's message carries the
    /// line and column.
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// Every field is valid but the forwarding state (Maglev tables...) cannot be built from
    /// them; reported by `check-config`, which builds it as a reload would.
    #[error("the config is valid but its forwarding state cannot be built: {0}")]
    Unbuildable(String),
    /// A field breaks a rule; `field` is its path, e.g. `service[1].backend[0].weight`.
    #[error("{field}: {problem}")]
    Invalid {
        /// Path of the offending field.
        field: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, problem: Problem) -> Self {
        ConfigError::Invalid { field: field.into(), problem }
    }

    /// The offending field's path, for [`ConfigError::Invalid`].
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// One rule a field breaks. The message is written to follow `"<field>: "`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A required field is absent.
    #[error("is required but missing")]
    Missing,
    /// A string or list that must have content is empty.
    #[error("must not be empty")]
    Empty,
    /// A number outside its range.
    #[error("must be {min}..={max}, got {got}")]
    OutOfRange {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
        /// The value given.
        got: i64,
    },
    /// A list longer than its limit.
    #[error("has {got} entries, at most {max} are supported ({limit} in limits.rs)")]
    TooMany {
        /// The limit.
        max: usize,
        /// Entries given.
        got: usize,
        /// Name of the limit constant.
        limit: &'static str,
    },
    /// A keyword field with a value outside its set.
    #[error("must be one of {allowed}, got {got:?}")]
    NotOneOf {
        /// The accepted values.
        allowed: &'static str,
        /// The value given.
        got: String,
    },
    /// Not an IP address.
    #[error("{0:?} is not an IPv4 or IPv6 address")]
    NotAnAddress(String),
    /// Not an IPv4 address.
    #[error("{0:?} is not an IPv4 address")]
    NotAnIpv4(String),
    /// Not an IPv6 address.
    #[error("{0:?} is not an IPv6 address")]
    NotAnIpv6(String),
    /// Not `address/length` of the right family.
    #[error("{got:?} is not an {family} address with a prefix length, like {example:?}")]
    NotAPrefix {
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// A well-formed example.
        example: &'static str,
        /// The value given.
        got: String,
    },
    /// Not `xx:xx:xx:xx:xx:xx`.
    #[error("{0:?} is not a MAC address like \"02:00:00:00:01:10\"")]
    NotAMac(String),
    /// A MAC that cannot be a next hop.
    #[error("{0} is a multicast/broadcast MAC; a next hop must be unicast")]
    MulticastMac(String),
    /// Not usable as a unicast host address.
    #[error("{0} cannot be used here (unspecified, multicast or broadcast address)")]
    NotUnicast(IpAddr),
    /// Maglev sizes must be prime.
    #[error("must be a prime number (e.g. 65537, 131071, 262147), got {0}")]
    NotPrime(u32),
    /// Maglev table smaller than the backend list.
    #[error("{size} is smaller than the {backends} backends; use a prime >= 100 x backends")]
    MaglevTooSmall {
        /// Table size.
        size: u32,
        /// Number of backends.
        backends: usize,
    },
    /// A name or key given twice.
    #[error("{what} is already used by {first}")]
    Duplicate {
        /// The duplicated value.
        what: String,
        /// Path of the first use.
        first: String,
    },
    /// A nic's `kernel` names no port.
    #[error("no [[port]] is named {0:?}")]
    UnknownPort(String),
    /// A nic's `kernel` names a port whose role is not `kernel`.
    #[error("port {0:?} has role \"nic\"; an exception port must have role = \"kernel\"")]
    NotAKernelPort(String),
    /// `kernel` on a kernel port.
    #[error("only a role = \"nic\" port has an exception port; remove this key")]
    KernelOnKernelPort,
    /// A kernel port no nic uses.
    #[error("no nic names kernel port {0:?} as its `kernel`; set it on a nic or remove the port")]
    UnusedKernelPort(String),
    /// No nic port.
    #[error("no port has role = \"nic\"; at least one NIC is needed")]
    NoNic,
    /// An af_packet `qpairs=` that is not the number of forwarding lcores.
    #[error("qpairs={got} but there are {lcores} forwarding lcores (eal.lcores); set qpairs={lcores}: each lcore polls one queue pair")]
    QueuePairs {
        /// The value as written.
        got: String,
        /// Number of forwarding lcores.
        lcores: usize,
    },
    /// An `[eal.cpus]` key that is not one of the config's lcores.
    #[error("{key:?} is not an lcore of this config (eal.main_lcore {main}, eal.lcores {lcores:?}); keys are lcore ids")]
    NotAnLcore {
        /// The key as written.
        key: String,
        /// `eal.main_lcore`.
        main: u32,
        /// `eal.lcores`.
        lcores: Vec<u32>,
    },
    /// The main lcore is also a forwarding lcore.
    #[error("contains eal.main_lcore {0}; the main lcore runs the control thread, pick other lcores")]
    MainLcoreForwards(u32),
    /// An EAL argument the runtime sets itself.
    #[error("{arg:?} is set by the dataplane from {from}; remove it")]
    ReservedEalArg {
        /// The argument.
        arg: String,
        /// The config fields it is derived from.
        from: &'static str,
    },
    /// Neither host address is set.
    #[error("at least one of host.ipv4 and host.ipv6 must be set")]
    NoHostAddress,
    /// A gateway without a host address of its family.
    #[error("{family} gateway needs host.{key} to be set")]
    GatewayWithoutAddress {
        /// `IPv4` / `IPv6`.
        family: &'static str,
        /// `ipv4` / `ipv6`.
        key: &'static str,
    },
    /// A gateway outside the host prefix.
    #[error("{gateway} is not on-link in {prefix}; the gateway must be reachable directly")]
    GatewayOffLink {
        /// The gateway.
        gateway: IpAddr,
        /// The host prefix.
        prefix: String,
    },
    /// A VIP equal to a host address.
    #[error("{0} is the host's own address (it belongs to the kernel); pick another VIP")]
    VipIsHostAddress(IpAddr),
    /// A key that only makes sense with another setting.
    #[error("only valid with {needs}; remove it or set {needs}")]
    NotApplicable {
        /// The setting it needs, e.g. `encap = "gue"`.
        needs: &'static str,
    },
    /// IPv6 VIP with an IPv4 backend over plain IPIP.
    #[error("IPv6 VIP {vip} cannot be tunnelled to IPv4 backend {backend} with encap = \"ipip\" (6in4 is not supported); use an IPv6 backend address or encap = \"gue\"")]
    SixInFour {
        /// The VIP.
        vip: IpAddr,
        /// The backend.
        backend: IpAddr,
    },
    /// A tunnel backend of a family with no outer source address.
    #[error("{family} backend {backend} needs an outer {family} source: set tunnel_source{digit} on the service or host.ipv{digit}")]
    NoTunnelSource {
        /// `IPv4` / `IPv6`.
        family: &'static str,
        /// `4` / `6`.
        digit: u8,
        /// The backend.
        backend: IpAddr,
    },
    /// A dsr-l2 backend of the other address family than the VIP.
    #[error("dsr-l2 forwards the client's packet unchanged, so backend {backend} must be the same address family as VIP {vip}")]
    DsrL2Family {
        /// The VIP.
        vip: IpAddr,
        /// The backend.
        backend: IpAddr,
    },
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), which would alias an IPv4 address.
    #[error("{0} is an IPv4-mapped IPv6 address; write the IPv4 address instead")]
    V4Mapped(IpAddr),
    /// A dsr-l2 backend that is not on the host's L2 segment.
    #[error("dsr-l2 backend {backend} is not on-link in {prefix} and has no static mac; dsr-l2 backends must share the NIC's L2 segment (or set mac)")]
    DsrL2OffLink {
        /// The backend.
        backend: IpAddr,
        /// The host prefix of its family, or "no host prefix of that family".
        prefix: String,
    },
    /// A tunnel backend that cannot be reached: off-link, no gateway, no static mac.
    #[error("backend {backend} is not on-link in {prefix} and host.gateway{digit} is not set; set host.gateway{digit} or a static mac")]
    Unreachable {
        /// The backend.
        backend: IpAddr,
        /// The host prefix of its family.
        prefix: String,
        /// `4` / `6`.
        digit: u8,
    },
    /// The control socket path is relative.
    #[error("{0:?} is not an absolute path")]
    NotAbsolute(String),
}

// ---------------------------------------------------------------------------------------------
// The raw file shape (serde), every leaf a string or an integer
// ---------------------------------------------------------------------------------------------

mod raw {
    use serde::Deserialize;

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Config {
        pub eal: Option<Eal>,
        #[serde(default)]
        pub port: Vec<Port>,
        pub host: Option<Host>,
        #[serde(default)]
        pub conntrack: Conntrack,
        #[serde(default)]
        pub control: Control,
        #[serde(default)]
        pub service: Vec<Service>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Eal {
        #[serde(default)]
        pub args: Vec<String>,
        pub main_lcore: Option<i64>,
        pub lcores: Option<Vec<i64>>,
        pub cpus: Option<std::collections::BTreeMap<String, i64>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Port {
        pub name: Option<String>,
        pub devargs: Option<String>,
        pub role: Option<String>,
        pub kernel: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Host {
        pub ipv4: Option<String>,
        pub ipv6: Option<String>,
        pub gateway4: Option<String>,
        pub gateway6: Option<String>,
        pub mtu: Option<i64>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Conntrack {
        pub capacity: Option<i64>,
        pub tcp_syn_timeout: Option<i64>,
        pub tcp_established_timeout: Option<i64>,
        pub tcp_closing_timeout: Option<i64>,
        pub udp_timeout: Option<i64>,
    }

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    pub struct Control {
        pub socket: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Service {
        pub name: Option<String>,
        pub vip: Option<String>,
        pub protocol: Option<String>,
        pub port: Option<i64>,
        pub mode: Option<String>,
        pub encap: Option<String>,
        pub gue_port: Option<i64>,
        pub tunnel_source4: Option<String>,
        pub tunnel_source6: Option<String>,
        pub maglev_size: Option<i64>,
        #[serde(default)]
        pub backend: Vec<Backend>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Backend {
        pub address: Option<String>,
        pub weight: Option<i64>,
        pub mac: Option<String>,
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

type Result<T, E = ConfigError> = std::result::Result<T, E>;

impl Config {
    /// Parses and validates TOML text. See the module docs.
    pub fn parse(text: &str) -> Result<Config> {
        let raw: raw::Config = toml::from_str(text)?;
        validate(raw)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text)
    }

    /// Index of the port named `name` (its `PortId`).
    pub fn port_index(&self, name: &str) -> Option<usize> {
        self.ports.iter().position(|p| p.name == name)
    }

    /// Every backend of every service in counter order: `(backend counter index, service index,
    /// backend)`. Backend counter indices number the backends of all services consecutively in
    /// config order; the snapshot builder and the stats report both rely on this order.
    pub fn backends(&self) -> impl Iterator<Item = (usize, usize, &BackendConfig)> + '_ {
        self.services
            .iter()
            .enumerate()
            .flat_map(|(si, s)| s.backends.iter().map(move |b| (si, b)))
            .enumerate()
            .map(|(bi, (si, b))| (bi, si, b))
    }

    /// Total number of backends over all services.
    pub fn backend_count(&self) -> usize {
        self.services.iter().map(|s| s.backends.len()).sum()
    }
}

fn required<T>(v: Option<T>, field: impl FnOnce() -> String) -> Result<T> {
    v.ok_or_else(|| ConfigError::invalid(field(), Problem::Missing))
}

fn non_empty(v: Option<String>, field: impl Fn() -> String) -> Result<String> {
    let s = required(v, &field)?;
    if s.trim().is_empty() {
        return Err(ConfigError::invalid(field(), Problem::Empty));
    }
    Ok(s)
}

fn in_range(v: i64, min: i64, max: i64, field: impl FnOnce() -> String) -> Result<i64> {
    if v < min || v > max {
        return Err(ConfigError::invalid(field(), Problem::OutOfRange { min, max, got: v }));
    }
    Ok(v)
}

fn parse_ip(s: &str, field: impl FnOnce() -> String) -> Result<IpAddr> {
    IpAddr::from_str(s.trim()).map_err(|_| ConfigError::invalid(field(), Problem::NotAnAddress(s.into())))
}

fn parse_ipv4(s: &str, field: impl FnOnce() -> String) -> Result<Ipv4Addr> {
    Ipv4Addr::from_str(s.trim()).map_err(|_| ConfigError::invalid(field(), Problem::NotAnIpv4(s.into())))
}

fn parse_ipv6(s: &str, field: impl FnOnce() -> String) -> Result<Ipv6Addr> {
    Ipv6Addr::from_str(s.trim()).map_err(|_| ConfigError::invalid(field(), Problem::NotAnIpv6(s.into())))
}

fn split_prefix(s: &str, max_len: u8) -> Option<(&str, u8)> {
    let (a, l) = s.trim().split_once('/')?;
    if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = l.parse().ok()?;
    (len <= max_len).then_some((a, len))
}

fn parse_prefix4(s: &str, field: &str) -> Result<Ipv4Prefix> {
    let bad = || {
        ConfigError::invalid(
            field,
            Problem::NotAPrefix { family: "IPv4", example: "198.18.0.2/24", got: s.into() },
        )
    };
    let (a, len) = split_prefix(s, 32).ok_or_else(bad)?;
    let addr = Ipv4Addr::from_str(a).map_err(|_| bad())?;
    let p = Ipv4Prefix { addr, len };
    if !is_unicast(IpAddr::V4(addr)) {
        return Err(ConfigError::invalid(field, Problem::NotUnicast(IpAddr::V4(addr))));
    }
    Ok(p)
}

fn parse_prefix6(s: &str, field: &str) -> Result<Ipv6Prefix> {
    let bad = || {
        ConfigError::invalid(
            field,
            Problem::NotAPrefix { family: "IPv6", example: "fd00::2/64", got: s.into() },
        )
    };
    let (a, len) = split_prefix(s, 128).ok_or_else(bad)?;
    let addr = Ipv6Addr::from_str(a).map_err(|_| bad())?;
    if !is_unicast(IpAddr::V6(addr)) {
        return Err(ConfigError::invalid(field, Problem::NotUnicast(IpAddr::V6(addr))));
    }
    Ok(Ipv6Prefix { addr, len })
}

/// Parses `xx:xx:xx:xx:xx:xx` (also `-` separated), hex digits in either case.
pub fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let s = s.trim();
    let sep = if s.contains('-') { '-' } else { ':' };
    let mut out = [0u8; 6];
    let mut n = 0;
    for part in s.split(sep) {
        if n == 6 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(EthernetAddress(out))
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// `::ffff:a.b.c.d`: the snapshot keys IPv4 addresses in this form, so such an IPv6 address
/// would be confused with the IPv4 one.
fn is_v4_mapped(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
}

/// `DDDD:BB:DD.F` or `BB:DD.F`, hex digits.
fn is_pci_address(s: &str) -> bool {
    let s = s.split(',').next().unwrap_or("");
    let parts: Vec<&str> = s.split(':').collect();
    let (dom, bus, devfn) = match parts.as_slice() {
        [d, b, df] => (Some(*d), *b, *df),
        [b, df] => (None, *b, *df),
        _ => return false,
    };
    let hex = |x: &str, n: usize| x.len() == n && x.bytes().all(|c| c.is_ascii_hexdigit());
    let Some((dev, func)) = devfn.split_once('.') else { return false };
    dom.is_none_or(|d| hex(d, 4)) && hex(bus, 2) && hex(dev, 2) && hex(func, 1)
}

fn validate(raw: raw::Config) -> Result<Config> {
    let eal = validate_eal(raw.eal)?;
    let ports = validate_ports(raw.port)?;
    check_queue_pairs(&ports, &eal)?;
    let host = validate_host(raw.host)?;
    let conntrack = validate_conntrack(raw.conntrack)?;
    let control = validate_control(raw.control)?;
    let services = validate_services(raw.service, &host)?;
    Ok(Config { eal, ports, host, conntrack, control, services })
}

/// An af_packet port's `qpairs=N` must equal the number of forwarding lcores. The PMD puts its N
/// sockets in one kernel fanout group, so with more queues than lcores the flows the kernel
/// hashes to an unpolled queue would be lost without a trace; with fewer, the port cannot be
/// configured. (Without `qpairs` the PMD has one queue, and more lcores are refused at start
/// with a message that names `qpairs`.)
fn check_queue_pairs(ports: &[PortConfig], eal: &EalConfig) -> Result<()> {
    for (i, p) in ports.iter().enumerate() {
        if let Some(v) = devarg(&p.devargs, "net_af_packet", "qpairs") {
            if v.parse::<usize>().ok() != Some(eal.lcores.len()) {
                return Err(ConfigError::invalid(format!("port[{i}].devargs"), Problem::QueuePairs { got: v.into(), lcores: eal.lcores.len() }));
            }
        }
    }
    Ok(())
}

fn validate_eal(raw: Option<raw::Eal>) -> Result<EalConfig> {
    let raw = required(raw, || "eal".into())?;
    for (i, a) in raw.args.iter().enumerate() {
        let key = a.split('=').next().unwrap_or(a);
        // Short options may carry their value attached (`-l1-3`, `-c0x6`).
        let reserved = RESERVED_EAL_ARGS.iter().find(|(r, _)| {
            *r == key || (r.len() == 2 && !key.starts_with("--") && key.starts_with(r))
        });
        if let Some((_, from)) = reserved {
            return Err(ConfigError::invalid(
                format!("eal.args[{i}]"),
                Problem::ReservedEalArg { arg: a.clone(), from },
            ));
        }
    }
    let max = i64::from(LCORE_ID_MAX);
    let main = in_range(required(raw.main_lcore, || "eal.main_lcore".into())?, 0, max, || {
        "eal.main_lcore".into()
    })? as u32;
    let list = required(raw.lcores, || "eal.lcores".into())?;
    if list.is_empty() {
        return Err(ConfigError::invalid("eal.lcores", Problem::Empty));
    }
    if list.len() > MAX_LCORES {
        return Err(ConfigError::invalid(
            "eal.lcores",
            Problem::TooMany { max: MAX_LCORES, got: list.len(), limit: "MAX_LCORES" },
        ));
    }
    let mut lcores = Vec::with_capacity(list.len());
    for (i, &l) in list.iter().enumerate() {
        let l = in_range(l, 0, max, || format!("eal.lcores[{i}]"))? as u32;
        if l == main {
            return Err(ConfigError::invalid(format!("eal.lcores[{i}]"), Problem::MainLcoreForwards(main)));
        }
        if let Some(j) = lcores.iter().position(|&x| x == l) {
            return Err(ConfigError::invalid(
                format!("eal.lcores[{i}]"),
                Problem::Duplicate { what: format!("lcore {l}"), first: format!("eal.lcores[{j}]") },
            ));
        }
        lcores.push(l);
    }
    let mut cpus = BTreeMap::new();
    for (key, &cpu) in raw.cpus.iter().flatten() {
        let field = || format!("eal.cpus.{key}");
        let lcore = key.parse::<u32>().ok().filter(|l| *l == main || lcores.contains(l)).ok_or_else(|| {
            ConfigError::invalid(field(), Problem::NotAnLcore { key: key.clone(), main, lcores: lcores.clone() })
        })?;
        let cpu = in_range(cpu, 0, i64::from(CPU_ID_MAX), field)? as u32;
        if cpus.insert(lcore, cpu).is_some() {
            // "1" and "01" are the same lcore: refuse rather than let the last one win.
            return Err(ConfigError::invalid(field(), Problem::Duplicate { what: format!("lcore {lcore}"), first: "another key of eal.cpus".into() }));
        }
    }
    Ok(EalConfig { args: raw.args, main_lcore: main, lcores, cpus })
}

fn validate_ports(raw: Vec<raw::Port>) -> Result<Vec<PortConfig>> {
    if raw.is_empty() {
        return Err(ConfigError::invalid("port", Problem::Missing));
    }
    if raw.len() > MAX_PORTS {
        return Err(ConfigError::invalid(
            "port",
            Problem::TooMany { max: MAX_PORTS, got: raw.len(), limit: "MAX_PORTS" },
        ));
    }
    let mut ports: Vec<PortConfig> = Vec::with_capacity(raw.len());
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, p) in raw.into_iter().enumerate() {
        let name = non_empty(p.name, || format!("port[{i}].name"))?;
        if let Some(j) = names.get(&name) {
            return Err(ConfigError::invalid(
                format!("port[{i}].name"),
                Problem::Duplicate { what: format!("{name:?}"), first: format!("port[{j}]") },
            ));
        }
        names.insert(name.clone(), i);
        let devargs = non_empty(p.devargs, || format!("port[{i}].devargs"))?;
        if let Some(j) = ports.iter().position(|q| q.devargs == devargs) {
            return Err(ConfigError::invalid(
                format!("port[{i}].devargs"),
                Problem::Duplicate { what: format!("{devargs:?}"), first: format!("port[{j}]") },
            ));
        }
        let role = match required(p.role, || format!("port[{i}].role"))?.as_str() {
            "nic" => PortRole::Nic,
            "kernel" => PortRole::Kernel,
            other => {
                return Err(ConfigError::invalid(
                    format!("port[{i}].role"),
                    Problem::NotOneOf { allowed: "\"nic\", \"kernel\"", got: other.into() },
                ))
            }
        };
        if role == PortRole::Kernel && p.kernel.is_some() {
            return Err(ConfigError::invalid(format!("port[{i}].kernel"), Problem::KernelOnKernelPort));
        }
        ports.push(PortConfig { name, devargs, role, kernel: p.kernel });
    }
    if !ports.iter().any(|p| p.role == PortRole::Nic) {
        return Err(ConfigError::invalid("port", Problem::NoNic));
    }
    let mut users: HashMap<&str, usize> = HashMap::new();
    for (i, p) in ports.iter().enumerate() {
        let Some(k) = &p.kernel else { continue };
        let field = || format!("port[{i}].kernel");
        let Some(target) = ports.iter().find(|q| &q.name == k) else {
            return Err(ConfigError::invalid(field(), Problem::UnknownPort(k.clone())));
        };
        if target.role != PortRole::Kernel {
            return Err(ConfigError::invalid(field(), Problem::NotAKernelPort(k.clone())));
        }
        if let Some(j) = users.insert(k, i) {
            return Err(ConfigError::invalid(
                field(),
                Problem::Duplicate {
                    what: format!("kernel port {k:?}"),
                    first: format!("port[{j}].kernel (one exception port per nic)"),
                },
            ));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        if p.role == PortRole::Kernel && !users.contains_key(p.name.as_str()) {
            return Err(ConfigError::invalid(format!("port[{i}]"), Problem::UnusedKernelPort(p.name.clone())));
        }
    }
    Ok(ports)
}

fn validate_host(raw: Option<raw::Host>) -> Result<HostConfig> {
    let raw = required(raw, || "host".into())?;
    let ipv4 = raw.ipv4.as_deref().map(|s| parse_prefix4(s, "host.ipv4")).transpose()?;
    let ipv6 = raw.ipv6.as_deref().map(|s| parse_prefix6(s, "host.ipv6")).transpose()?;
    if ipv4.is_none() && ipv6.is_none() {
        return Err(ConfigError::invalid("host", Problem::NoHostAddress));
    }
    let gateway4 = match raw.gateway4.as_deref() {
        None => None,
        Some(s) => {
            let g = parse_ipv4(s, || "host.gateway4".into())?;
            let Some(p) = ipv4 else {
                return Err(ConfigError::invalid(
                    "host.gateway4",
                    Problem::GatewayWithoutAddress { family: "IPv4", key: "ipv4" },
                ));
            };
            if !is_unicast(IpAddr::V4(g)) {
                return Err(ConfigError::invalid("host.gateway4", Problem::NotUnicast(IpAddr::V4(g))));
            }
            if !p.contains(g) {
                return Err(ConfigError::invalid(
                    "host.gateway4",
                    Problem::GatewayOffLink { gateway: IpAddr::V4(g), prefix: p.to_string() },
                ));
            }
            Some(g)
        }
    };
    let gateway6 = match raw.gateway6.as_deref() {
        None => None,
        Some(s) => {
            let g = parse_ipv6(s, || "host.gateway6".into())?;
            let Some(p) = ipv6 else {
                return Err(ConfigError::invalid(
                    "host.gateway6",
                    Problem::GatewayWithoutAddress { family: "IPv6", key: "ipv6" },
                ));
            };
            if !is_unicast(IpAddr::V6(g)) {
                return Err(ConfigError::invalid("host.gateway6", Problem::NotUnicast(IpAddr::V6(g))));
            }
            // Routers commonly advertise themselves by link-local address (fe80::/10).
            let link_local = g.segments()[0] & 0xffc0 == 0xfe80;
            if !p.contains(g) && !link_local {
                return Err(ConfigError::invalid(
                    "host.gateway6",
                    Problem::GatewayOffLink { gateway: IpAddr::V6(g), prefix: p.to_string() },
                ));
            }
            Some(g)
        }
    };
    let mtu = match raw.mtu {
        None => DEFAULT_MTU,
        Some(m) => in_range(m, MTU_MIN.into(), MTU_MAX.into(), || "host.mtu".into())? as u16,
    };
    Ok(HostConfig { ipv4, ipv6, gateway4, gateway6, mtu })
}

fn validate_conntrack(raw: raw::Conntrack) -> Result<ConntrackConfig> {
    let d = ConntrackConfig::default();
    let capacity = match raw.capacity {
        None => d.capacity,
        Some(c) => in_range(c, CONNTRACK_MIN_CAPACITY as i64, CONNTRACK_MAX_CAPACITY as i64, || {
            "conntrack.capacity".into()
        })? as usize,
    };
    let secs = |v: Option<i64>, default: Duration, name: &str| -> Result<Duration> {
        match v {
            None => Ok(default),
            Some(s) => {
                let s = in_range(s, 1, MAX_TIMEOUT_SECS.into(), || format!("conntrack.{name}"))?;
                Ok(Duration::from_secs(s as u64))
            }
        }
    };
    Ok(ConntrackConfig {
        capacity,
        tcp_syn_timeout: secs(raw.tcp_syn_timeout, d.tcp_syn_timeout, "tcp_syn_timeout")?,
        tcp_established_timeout: secs(
            raw.tcp_established_timeout,
            d.tcp_established_timeout,
            "tcp_established_timeout",
        )?,
        tcp_closing_timeout: secs(raw.tcp_closing_timeout, d.tcp_closing_timeout, "tcp_closing_timeout")?,
        udp_timeout: secs(raw.udp_timeout, d.udp_timeout, "udp_timeout")?,
    })
}

fn validate_control(raw: raw::Control) -> Result<ControlConfig> {
    let socket = match raw.socket {
        None => PathBuf::from(DEFAULT_SOCKET),
        Some(s) => {
            if s.is_empty() {
                return Err(ConfigError::invalid("control.socket", Problem::Empty));
            }
            let p = PathBuf::from(&s);
            if !p.is_absolute() {
                return Err(ConfigError::invalid("control.socket", Problem::NotAbsolute(s)));
            }
            p
        }
    };
    Ok(ControlConfig { socket })
}

fn prefix_of(host: &HostConfig, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => host.ipv4.map_or("no host.ipv4".into(), |p| format!("host.ipv4 {p}")),
        IpAddr::V6(_) => host.ipv6.map_or("no host.ipv6".into(), |p| format!("host.ipv6 {p}")),
    }
}

fn validate_services(raw: Vec<raw::Service>, host: &HostConfig) -> Result<Vec<ServiceConfig>> {
    if raw.len() > MAX_SERVICES {
        return Err(ConfigError::invalid(
            "service",
            Problem::TooMany { max: MAX_SERVICES, got: raw.len(), limit: "MAX_SERVICES" },
        ));
    }
    let total: usize = raw.iter().map(|s| s.backend.len()).sum();
    if total > MAX_BACKENDS {
        return Err(ConfigError::invalid(
            "service",
            Problem::TooMany { max: MAX_BACKENDS, got: total, limit: "MAX_BACKENDS (over all services)" },
        ));
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut keys: HashMap<(IpAddr, Protocol, Option<u16>), usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let f = |k: &str| format!("service[{i}].{k}");
        let name = non_empty(s.name, || f("name"))?;
        if let Some(j) = names.get(&name) {
            return Err(ConfigError::invalid(
                f("name"),
                Problem::Duplicate { what: format!("{name:?}"), first: format!("service[{j}]") },
            ));
        }
        names.insert(name.clone(), i);
        let vip = parse_ip(&required(s.vip, || f("vip"))?, || f("vip"))?;
        if !is_unicast(vip) {
            return Err(ConfigError::invalid(f("vip"), Problem::NotUnicast(vip)));
        }
        if is_v4_mapped(vip) {
            return Err(ConfigError::invalid(f("vip"), Problem::V4Mapped(vip)));
        }
        if host.ipv4.is_some_and(|p| IpAddr::V4(p.addr) == vip)
            || host.ipv6.is_some_and(|p| IpAddr::V6(p.addr) == vip)
        {
            return Err(ConfigError::invalid(f("vip"), Problem::VipIsHostAddress(vip)));
        }
        let protocol = match required(s.protocol, || f("protocol"))?.as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(ConfigError::invalid(
                    f("protocol"),
                    Problem::NotOneOf { allowed: "\"tcp\", \"udp\"", got: other.into() },
                ))
            }
        };
        let port = s.port.map(|p| in_range(p, 1, 65535, || f("port")).map(|p| p as u16)).transpose()?;
        let key = (vip, protocol, port);
        if let Some(j) = keys.get(&key) {
            let what = match port {
                Some(p) => format!("{} {vip} port {p}", protocol.as_str()),
                None => format!("{} {vip} (all ports)", protocol.as_str()),
            };
            return Err(ConfigError::invalid(
                f("vip"),
                Problem::Duplicate { what, first: format!("service[{j}]") },
            ));
        }
        keys.insert(key, i);

        // Backends first: the mode checks need their addresses.
        if s.backend.is_empty() {
            return Err(ConfigError::invalid(f("backend"), Problem::Empty));
        }
        let mut backends: Vec<BackendConfig> = Vec::with_capacity(s.backend.len());
        for (k, b) in s.backend.into_iter().enumerate() {
            let bf = |x: &str| format!("service[{i}].backend[{k}].{x}");
            let address = parse_ip(&required(b.address, || bf("address"))?, || bf("address"))?;
            if !is_unicast(address) {
                return Err(ConfigError::invalid(bf("address"), Problem::NotUnicast(address)));
            }
            if is_v4_mapped(address) {
                return Err(ConfigError::invalid(bf("address"), Problem::V4Mapped(address)));
            }
            if let Some(j) = backends.iter().position(|x| x.address == address) {
                return Err(ConfigError::invalid(
                    bf("address"),
                    Problem::Duplicate {
                        what: address.to_string(),
                        first: format!("service[{i}].backend[{j}]"),
                    },
                ));
            }
            let weight = match b.weight {
                None => 1,
                Some(w) => in_range(w, 1, 65535, || bf("weight"))? as u16,
            };
            let mac = match b.mac {
                None => None,
                Some(m) => {
                    let mac = parse_mac(&m).ok_or_else(|| ConfigError::invalid(bf("mac"), Problem::NotAMac(m.clone())))?;
                    if !mac.is_unicast() || mac == EthernetAddress::UNSPECIFIED {
                        return Err(ConfigError::invalid(bf("mac"), Problem::MulticastMac(mac.to_string())));
                    }
                    Some(mac)
                }
            };
            backends.push(BackendConfig { address, weight, mac });
        }

        let mode_str = s.mode.unwrap_or_else(|| "tunnel".into());
        let mode = match mode_str.as_str() {
            "tunnel" => {
                let encap = match s.encap.as_deref().unwrap_or("ipip") {
                    "ipip" => {
                        if s.gue_port.is_some() {
                            return Err(ConfigError::invalid(
                                f("gue_port"),
                                Problem::NotApplicable { needs: "encap = \"gue\"" },
                            ));
                        }
                        Encap::Ipip
                    }
                    "gue" => Encap::Gue {
                        port: match s.gue_port {
                            None => DEFAULT_GUE_PORT,
                            Some(p) => in_range(p, 1, 65535, || f("gue_port"))? as u16,
                        },
                    },
                    other => {
                        return Err(ConfigError::invalid(
                            f("encap"),
                            Problem::NotOneOf { allowed: "\"ipip\", \"gue\"", got: other.into() },
                        ))
                    }
                };
                let src4 = s
                    .tunnel_source4
                    .as_deref()
                    .map(|a| match a.contains('/') {
                        true => parse_prefix4(a, &f("tunnel_source4")),
                        false => parse_ipv4(a, || f("tunnel_source4")).map(|addr| Ipv4Prefix { addr, len: 32 }),
                    })
                    .transpose()?;
                let src6 = s
                    .tunnel_source6
                    .as_deref()
                    .map(|a| match a.contains('/') {
                        true => parse_prefix6(a, &f("tunnel_source6")),
                        false => parse_ipv6(a, || f("tunnel_source6")).map(|addr| Ipv6Prefix { addr, len: 128 }),
                    })
                    .transpose()?;
                let src4 = src4.or(host.ipv4.map(|p| Ipv4Prefix { addr: p.addr, len: 32 }));
                let src6 = src6.or(host.ipv6.map(|p| Ipv6Prefix { addr: p.addr, len: 128 }));
                let mut need4 = false;
                let mut need6 = false;
                for (k, b) in backends.iter().enumerate() {
                    let bf = format!("service[{i}].backend[{k}].address");
                    match (vip, b.address) {
                        (IpAddr::V6(_), IpAddr::V4(_)) if encap == Encap::Ipip => {
                            return Err(ConfigError::invalid(
                                bf,
                                Problem::SixInFour { vip, backend: b.address },
                            ))
                        }
                        (_, IpAddr::V4(_)) => need4 = true,
                        (_, IpAddr::V6(_)) => need6 = true,
                    }
                    let (have, family, digit) = match b.address {
                        IpAddr::V4(_) => (src4.is_some(), "IPv4", 4),
                        IpAddr::V6(_) => (src6.is_some(), "IPv6", 6),
                    };
                    if !have {
                        return Err(ConfigError::invalid(
                            bf,
                            Problem::NoTunnelSource { family, digit, backend: b.address },
                        ));
                    }
                    if b.mac.is_none() && host.next_hop(b.address).is_none() {
                        return Err(ConfigError::invalid(
                            bf,
                            Problem::Unreachable { backend: b.address, prefix: prefix_of(host, b.address), digit },
                        ));
                    }
                }
                Mode::Tunnel {
                    encap,
                    source4: if need4 { src4 } else { None },
                    source6: if need6 { src6 } else { None },
                }
            }
            "dsr-l2" => {
                for (key, present) in [
                    ("encap", s.encap.is_some()),
                    ("gue_port", s.gue_port.is_some()),
                    ("tunnel_source4", s.tunnel_source4.is_some()),
                    ("tunnel_source6", s.tunnel_source6.is_some()),
                ] {
                    if present {
                        return Err(ConfigError::invalid(f(key), Problem::NotApplicable { needs: "mode = \"tunnel\"" }));
                    }
                }
                for (k, b) in backends.iter().enumerate() {
                    if b.address.is_ipv4() != vip.is_ipv4() {
                        return Err(ConfigError::invalid(
                            format!("service[{i}].backend[{k}].address"),
                            Problem::DsrL2Family { vip, backend: b.address },
                        ));
                    }
                    if b.mac.is_none() && !host.is_on_link(b.address) {
                        return Err(ConfigError::invalid(
                            format!("service[{i}].backend[{k}].address"),
                            Problem::DsrL2OffLink { backend: b.address, prefix: prefix_of(host, b.address) },
                        ));
                    }
                }
                Mode::DsrL2
            }
            other => {
                return Err(ConfigError::invalid(
                    f("mode"),
                    Problem::NotOneOf { allowed: "\"tunnel\", \"dsr-l2\"", got: other.into() },
                ))
            }
        };

        let maglev_size = match s.maglev_size {
            None => MAGLEV_DEFAULT_SIZE,
            Some(m) => in_range(m, 2, MAGLEV_MAX_SIZE.into(), || f("maglev_size"))? as u32,
        };
        if !is_prime(maglev_size) {
            return Err(ConfigError::invalid(f("maglev_size"), Problem::NotPrime(maglev_size)));
        }
        if (maglev_size as usize) < backends.len() {
            return Err(ConfigError::invalid(
                f("maglev_size"),
                Problem::MaglevTooSmall { size: maglev_size, backends: backends.len() },
            ));
        }
        out.push(ServiceConfig { name, vip, protocol, port, mode, maglev_size, backends });
    }
    Ok(out)
}

/// Fields whose change needs an EAL or port restart: a reload that changes one is refused.
/// Returns the path of the first such field that differs, with a description of the change.
pub fn restart_only_change(old: &Config, new: &Config) -> Option<(&'static str, String)> {
    if old.eal != new.eal {
        return Some(("eal", "EAL arguments and lcores are fixed at start".into()));
    }
    if old.ports != new.ports {
        return Some(("port", "ports are opened once at start".into()));
    }
    if old.conntrack.capacity != new.conntrack.capacity {
        return Some((
            "conntrack.capacity",
            format!(
                "tables are allocated at start ({} -> {})",
                old.conntrack.capacity, new.conntrack.capacity
            ),
        ));
    }
    if old.control.socket != new.control.socket {
        return Some(("control.socket", "the control socket is bound at start".into()));
    }
    None
}

/// Names of services and backends that a reload adds or removes (for the log line).
pub fn describe_change(old: &Config, new: &Config) -> String {
    let key = |c: &Config| -> HashSet<String> {
        c.services
            .iter()
            .flat_map(|s| s.backends.iter().map(move |b| format!("{}/{}", s.name, b.address)))
            .collect()
    };
    let (o, n) = (key(old), key(new));
    let mut added: Vec<_> = n.difference(&o).cloned().collect();
    let mut removed: Vec<_> = o.difference(&n).cloned().collect();
    added.sort();
    removed.sort();
    format!(
        "{} services, {} backends; backends added: [{}], removed: [{}]",
        new.services.len(),
        new.backend_count(),
        added.join(", "),
        removed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MACs parse with either separator and any case, and nothing else passes.
    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:00:00:01:1A"), Some(EthernetAddress([2, 0, 0, 0, 1, 0x1a])));
        assert_eq!(parse_mac("02-00-00-00-01-1a"), Some(EthernetAddress([2, 0, 0, 0, 1, 0x1a])));
        for bad in ["", "02:00:00:00:01", "02:00:00:00:01:10:11", "2:0:0:0:1:10", "zz:00:00:00:01:10"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    /// Prefix membership decides on-link-ness, including /0 and /32 edge cases.
    #[test]
    fn prefixes() {
        let p = Ipv4Prefix { addr: "198.18.0.2".parse().unwrap(), len: 24 };
        assert!(p.contains("198.18.0.200".parse().unwrap()));
        assert!(!p.contains("198.18.1.2".parse().unwrap()));
        assert!(Ipv4Prefix { addr: Ipv4Addr::LOCALHOST, len: 0 }.contains("8.8.8.8".parse().unwrap()));
        let h = Ipv4Prefix { addr: "10.0.0.1".parse().unwrap(), len: 32 };
        assert!(!h.contains("10.0.0.2".parse().unwrap()));
        let p6 = Ipv6Prefix { addr: "fd00::2".parse().unwrap(), len: 64 };
        assert!(p6.contains("fd00::99".parse().unwrap()));
        assert!(!p6.contains("fd00:1::2".parse().unwrap()));
    }

    /// PCI addresses are told apart from vdev strings.
    #[test]
    fn pci() {
        let port = |d: &str| PortConfig { name: "p".into(), devargs: d.into(), role: PortRole::Nic, kernel: None };
        assert!(port("0000:03:00.0").is_pci());
        assert!(port("03:00.1").is_pci());
        assert!(!port("net_tap0,iface=dp0").is_pci());
        assert!(!port("net_af_packet0,iface=lb0").is_pci());
    }
}
