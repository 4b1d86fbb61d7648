//! The control plane: owns the running config, builds and publishes snapshots, serves the
//! control socket, merges learned neighbors, sums counters.
//!
//! Contract:
//! - [`Control::new`] validates the port list against the config, binds the control socket and
//!   builds the initial [`Snapshot`] ([`Control::snapshot`]) that the runtime hands to each
//!   `Pipeline::new`. Nothing is sent on the lcore channels until something changes.
//! - [`Control::run`] loops on the control thread until the shutdown flag is set or a client
//!   sends `shutdown`. It sleeps in the socket's epoll wait: a request is answered as soon as it
//!   arrives; the flags (SIGHUP, SIGTERM), learned neighbors and snapshots an lcore could not
//!   take yet are looked at every [`HOUSEKEEPING_INTERVAL`] ([`RETRY_INTERVAL`] while a snapshot
//!   or a neighbor republish is pending). It never touches the packet path: lcores only see new
//!   `Arc<Snapshot>`s on their bounded channels (looked at between bursts).
//! - **Reload** (SIGHUP through [`Control::reload_flag`], or `{"cmd":"reload"}`): re-read the
//!   file, validate, refuse changes that need a restart ([`crate::config::restart_only_change`]:
//!   `[eal]`, `[[port]]`, `conntrack.capacity`, `control.socket`), build the snapshot, and only
//!   then switch. Any failure leaves the running config and snapshot untouched and is reported
//!   (socket answer, log, `stats.control.last_reload_error`) with the offending field named.
//!   Established flows survive: conntrack keeps backend identities across snapshots.
//! - **Neighbors**: ARP/ND replies the lcores push on their `learned` queues are merged every
//!   poll; when a wanted next hop gets a new MAC the snapshot is rebuilt and republished, at most
//!   once per [`NEIGHBOR_REPUBLISH_INTERVAL`] (an ARP flapper cannot make the control thread
//!   rebuild Maglev tables in a loop).
//! - **Publishing** never blocks: a full lcore channel keeps the newest snapshot pending for
//!   that lcore and retries on the next poll; a disconnected one (lcore gone) is logged once.
//! - Requests: `stats`, `reload`, `shutdown`, `config` (the running config, defaults filled in),
//!   `neighbors` (wanted next hops and what was learned). Answers are `{"ok":true,...}` or
//!   `{"ok":false,"error":"..."}`.
//!
//! The CLI pieces the binary calls ([`check_config`], [`client_request`], [`client_command`])
//! live here too, so `main.rs` stays argument parsing.

pub mod neighbors;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Sender, TrySendError};
use crossbeam::queue::ArrayQueue;
use serde_json::{json, Value};

use crate::config::{self, Config, ConfigError, Encap, Mode, PortRole};
use crate::conntrack;
use crate::pipeline::{BuildError, Neighbor, PortId, PortInfo, Snapshot, SnapshotBuilder};
use crate::stats::{BackendCounters, CounterSlots, LcoreCounters, ServiceCounters, StatsLabels, StatsReport};
use crate::wire::EthernetAddress;

pub use neighbors::Neighbors;
pub use server::{Request, Server};

/// Longest sleep of an idle control loop between two looks at the reload and shutdown flags
/// and the lcores' learned neighbors (so the most a SIGHUP or a new ARP reply waits). Requests
/// on the socket wake it at once. It was a fixed 10 ms poll: 100 wake-ups a second, each one
/// preempting whatever busy-polls on the main lcore's CPU (on a 2-CPU machine, the packet
/// generator: about 110 extra involuntary switches of it a second, measured with schedstat).
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// The loop's sleep while a snapshot waits for room in an lcore's channel or a neighbor change
/// waits for [`NEIGHBOR_REPUBLISH_INTERVAL`].
pub const RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// Least time between two snapshot rebuilds caused by neighbor changes.
pub const NEIGHBOR_REPUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// How long a CLI client waits for an answer. A reload of a large config builds up to
/// `MAX_SERVICES` Maglev tables, which takes seconds, not minutes.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest answer a client accepts (a stats report of `MAX_BACKENDS` backends is ~1 MiB).
const MAX_ANSWER: u64 = 64 << 20;

/// The control plane's end of one forwarding lcore.
#[derive(Debug, Clone)]
pub struct LcoreLink {
    /// EAL lcore id (stats label).
    pub lcore_id: u32,
    /// New snapshots for the lcore (`crossbeam::channel::bounded(SNAPSHOT_QUEUE_DEPTH)`).
    pub snapshots: Sender<Arc<Snapshot>>,
    /// The lcore's counters.
    pub counters: Arc<LcoreCounters>,
    /// Neighbors the lcore's pipeline learned (`ArrayQueue::new(LEARNED_QUEUE_CAPACITY)`).
    pub learned: Arc<ArrayQueue<Neighbor>>,
}

/// Why the control plane could not start, or a client request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The control socket could not be created.
    #[error("cannot bind control socket {}: {source} (check that the directory exists and is writable, or set control.socket)", path.display())]
    Bind {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// Another running dataplane answers on the socket.
    #[error("control socket {} is in use by a running dataplane; stop it first or set another control.socket", path.display())]
    InUse {
        /// Socket path.
        path: PathBuf,
    },
    /// The socket path is taken by something that is not a socket.
    #[error("{} exists and is not a socket; remove it or set another control.socket", path.display())]
    NotASocket {
        /// Socket path.
        path: PathBuf,
    },
    /// The runtime's port list does not match `[[port]]`.
    #[error("port list mismatch: the config has {config} ports, the runtime opened {runtime} (port ids must follow [[port]] order)")]
    PortMismatch {
        /// Ports in the config.
        config: usize,
        /// Ports given to `Control::new`.
        runtime: usize,
    },
    /// The initial snapshot could not be built.
    #[error("cannot build the forwarding state: {0}")]
    Build(#[from] BuildError),
    /// A client could not reach the socket.
    #[error("cannot connect to control socket {}: {source} (is the dataplane running? are you root?)", path.display())]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// A client's exchange failed midway.
    #[error("control socket {}: {source}", path.display())]
    Io {
        /// Socket path.
        path: PathBuf,
        /// OS error (a timeout after `CLIENT_TIMEOUT` shows as `WouldBlock`/`TimedOut`).
        source: std::io::Error,
    },
    /// The answer was not the JSON line the protocol promises.
    #[error("unexpected answer from the dataplane: {0}")]
    BadAnswer(String),
    /// The dataplane answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// Why a reload was refused. The running config stays in place in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file is unreadable or invalid.
    #[error("{}: {source}; still running the previous config", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        source: ConfigError,
    },
    /// A field changed that only a restart can apply.
    #[error("{field}: changed, but {why}; restart the dataplane to apply it (still running the previous config)")]
    NeedsRestart {
        /// The field path.
        field: &'static str,
        /// Why it needs a restart.
        why: String,
    },
    /// The snapshot could not be built.
    #[error("cannot build the forwarding state: {0}; still running the previous config")]
    Build(#[from] BuildError),
}

/// The control plane (see the module docs).
#[derive(Debug)]
pub struct Control {
    config: Config,
    config_path: PathBuf,
    ports: Vec<PortInfo>,
    lcores: Vec<LcoreLink>,
    /// Per lcore: a snapshot its full channel could not take yet.
    pending: Vec<Option<Arc<Snapshot>>>,
    /// Per lcore: its channel is disconnected (logged once).
    gone: Vec<bool>,
    neighbors: Neighbors,
    snapshot: Arc<Snapshot>,
    /// Identity → counter slot, kept across reloads.
    slots: CounterSlots,
    /// Labels (names, slots, baselines) of the running config.
    labels: StatsLabels,
    server: Server,
    reload_flag: Arc<AtomicBool>,
    shutdown_requested: bool,
    neighbors_dirty: bool,
    last_neighbor_publish: Option<Instant>,
    reloads: u64,
    reload_errors: u64,
    last_reload_error: Option<String>,
    snapshots_published: u64,
}

impl Control {
    /// Binds the control socket and builds the initial snapshot (see the module docs).
    pub fn new(config: Config, config_path: PathBuf, ports: Vec<PortInfo>, lcores: Vec<LcoreLink>) -> Result<Self, ControlError> {
        if ports.len() != config.ports.len() {
            return Err(ControlError::PortMismatch { config: config.ports.len(), runtime: ports.len() });
        }
        let neighbors = Neighbors::new(&config);
        let mut slots = CounterSlots::new();
        let counters: Vec<&LcoreCounters> = lcores.iter().map(|l| &*l.counters).collect();
        let labels = slots.assign(&config, &counters);
        let snapshot = Arc::new(build_snapshot(&config, &ports, &neighbors, &labels)?);
        let server = Server::bind(&config.control.socket)?;
        let n = lcores.len();
        Ok(Control {
            slots,
            labels,
            config,
            config_path,
            ports,
            lcores,
            pending: vec![None; n],
            gone: vec![false; n],
            neighbors,
            snapshot,
            server,
            reload_flag: Arc::new(AtomicBool::new(false)),
            shutdown_requested: false,
            neighbors_dirty: false,
            last_neighbor_publish: None,
            reloads: 0,
            reload_errors: 0,
            last_reload_error: None,
            snapshots_published: 0,
        })
    }

    /// The current snapshot (the initial one right after `new`).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// The running config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A flag that requests a reload at the next poll when set; register it for SIGHUP with
    /// `signal_hook::flag::register(SIGHUP, control.reload_flag())`.
    pub fn reload_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reload_flag)
    }

    /// Requests a reload at the next poll.
    pub fn request_reload(&self) {
        self.reload_flag.store(true, Ordering::Relaxed);
    }

    /// Runs until `shutdown` is set or a client sends `shutdown` (see the module docs).
    pub fn run(&mut self, shutdown: &AtomicBool) -> Result<(), ControlError> {
        tracing::info!(socket = %self.server.path().display(), lcores = self.lcores.len(), "control plane running");
        while !shutdown.load(Ordering::Relaxed) && !self.shutdown_requested {
            self.poll_once(Instant::now());
            let busy = self.neighbors_dirty || self.pending.iter().any(Option::is_some);
            self.server.wait(if busy { RETRY_INTERVAL } else { HOUSEKEEPING_INTERVAL });
        }
        self.server.flush_all(Instant::now() + Duration::from_secs(1));
        tracing::info!("control plane stopped");
        Ok(())
    }

    /// One iteration of the loop at `now`: socket, reload flag, neighbors, pending publishes.
    pub fn poll_once(&mut self, now: Instant) {
        for (id, req) in self.server.poll() {
            let answer = match req {
                Ok(r) => self.handle(&r.cmd, now),
                Err(e) => json!({"ok": false, "error": e}),
            };
            self.server.respond(id, &answer);
        }
        if self.reload_flag.swap(false, Ordering::Relaxed) {
            // Outcome is logged and kept for `stats` by `reload`.
            let _ = self.reload();
        }
        self.merge_neighbors(now);
        self.retry_pending();
    }

    fn handle(&mut self, cmd: &str, now: Instant) -> Value {
        match cmd {
            "stats" => json!({"ok": true, "stats": self.stats()}),
            "reload" => match self.reload() {
                Ok(summary) => json!({"ok": true, "message": summary}),
                Err(e) => json!({"ok": false, "error": e.to_string()}),
            },
            "shutdown" => {
                tracing::info!("shutdown requested on the control socket");
                self.shutdown_requested = true;
                json!({"ok": true, "message": "shutting down"})
            }
            "config" => json!({"ok": true, "path": self.config_path, "config": self.config}),
            "neighbors" => {
                let names: Vec<String> = self.ports.iter().map(|p| p.name.clone()).collect();
                json!({"ok": true, "neighbors": self.neighbors.rows(now, &names)})
            }
            other => json!({
                "ok": false,
                "error": format!("unknown command {other:?}; known: stats, reload, shutdown, config, neighbors"),
            }),
        }
    }

    /// Every lcore's counters summed, labelled by the running config, with the control
    /// plane's own counters.
    pub fn stats(&self) -> StatsReport {
        let lc: Vec<(u32, &LcoreCounters)> = self.lcores.iter().map(|l| (l.lcore_id, &*l.counters)).collect();
        let mut r = StatsReport::collect(&self.labels, &lc);
        r.control.reloads = self.reloads;
        r.control.reload_errors = self.reload_errors;
        r.control.last_reload_error = self.last_reload_error.clone();
        r.control.snapshots_published = self.snapshots_published;
        r.control.neighbors_learned = self.neighbors.learned_len() as u64;
        r.control.unresolved_next_hops = self.snapshot.unresolved.len() as u64;
        r
    }

    /// Re-reads the config file and switches to it (see the module docs). Returns a one-line
    /// summary of what changed.
    pub fn reload(&mut self) -> Result<String, ReloadError> {
        match self.try_reload() {
            Ok(summary) => {
                self.reloads += 1;
                self.last_reload_error = None;
                tracing::info!(path = %self.config_path.display(), "reloaded: {summary}");
                Ok(summary)
            }
            Err(e) => {
                self.reload_errors += 1;
                self.last_reload_error = Some(e.to_string());
                tracing::error!("reload refused: {e}");
                Err(e)
            }
        }
    }

    fn try_reload(&mut self) -> Result<String, ReloadError> {
        let new = Config::load(&self.config_path)
            .map_err(|source| ReloadError::Config { path: self.config_path.clone(), source })?;
        if let Some((field, why)) = config::restart_only_change(&self.config, &new) {
            return Err(ReloadError::NeedsRestart { field, why });
        }
        let neighbors = self.neighbors.for_config(&new);
        // Slots are assigned on a copy, kept only if the snapshot builds: a refused reload
        // leaves every identity where it was.
        let mut slots = self.slots.clone();
        let counters: Vec<&LcoreCounters> = self.lcores.iter().map(|l| &*l.counters).collect();
        let labels = slots.assign(&new, &counters);
        let snapshot = Arc::new(build_snapshot(&new, &self.ports, &neighbors, &labels)?);
        let summary = config::describe_change(&self.config, &new);
        self.slots = slots;
        self.labels = labels;
        self.config = new;
        self.neighbors = neighbors;
        self.publish(snapshot);
        Ok(summary)
    }

    fn merge_neighbors(&mut self, now: Instant) {
        for link in &self.lcores {
            while let Some(n) = link.learned.pop() {
                if self.neighbors.observe(n, now) {
                    tracing::info!(ip = %n.ip, mac = %n.mac, "next hop resolved");
                    self.neighbors_dirty = true;
                }
            }
        }
        let due = self.last_neighbor_publish.is_none_or(|t| now.duration_since(t) >= NEIGHBOR_REPUBLISH_INTERVAL);
        if self.neighbors_dirty && due {
            self.neighbors_dirty = false;
            self.last_neighbor_publish = Some(now);
            match build_snapshot(&self.config, &self.ports, &self.neighbors, &self.labels) {
                Ok(s) => self.publish(Arc::new(s)),
                // The config built before with fewer MACs; a MAC cannot make it fail, but if
                // it ever does the running snapshot stays.
                Err(e) => tracing::error!("cannot rebuild the snapshot with new neighbors: {e}"),
            }
        }
    }

    fn publish(&mut self, snapshot: Arc<Snapshot>) {
        self.snapshot = Arc::clone(&snapshot);
        self.snapshots_published += 1;
        for slot in &mut self.pending {
            *slot = Some(Arc::clone(&snapshot));
        }
        self.retry_pending();
    }

    fn retry_pending(&mut self) {
        for (i, link) in self.lcores.iter().enumerate() {
            let Some(s) = self.pending[i].take() else { continue };
            match link.snapshots.try_send(s) {
                Ok(()) => {}
                Err(TrySendError::Full(s)) => self.pending[i] = Some(s),
                Err(TrySendError::Disconnected(_)) => {
                    if !self.gone[i] {
                        self.gone[i] = true;
                        tracing::error!(lcore = link.lcore_id, "lcore no longer takes snapshots (its loop ended)");
                    }
                }
            }
        }
    }
}

/// The snapshot of `config` with its services and backends in the counter slots of `labels`.
fn build_snapshot(config: &Config, ports: &[PortInfo], neighbors: &Neighbors, labels: &StatsLabels) -> Result<Snapshot, BuildError> {
    SnapshotBuilder::from_config(config)
        .with_counter_slots(&labels.service_slots(), &labels.backend_slots())
        .build(ports, &neighbors.table())
}

// ---------------------------------------------------------------------------------------------
// Runtime helpers
// ---------------------------------------------------------------------------------------------

/// The pipeline's view of the configured ports, with the MAC of each (in `[[port]]` order, as
/// read from DPDK by the runtime).
pub fn port_infos(config: &Config, macs: &[EthernetAddress]) -> Vec<PortInfo> {
    config
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| PortInfo {
            id: PortId(i as u16),
            name: p.name.clone(),
            role: p.role,
            mac: macs.get(i).copied().unwrap_or_default(),
            kernel: p.kernel.as_deref().and_then(|k| config.port_index(k)).map(|k| PortId(k as u16)),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// CLI pieces
// ---------------------------------------------------------------------------------------------

/// Bytes the running dataplane needs for `config`: `(per-lcore connection table, per-lcore
/// counters, Maglev tables of one snapshot)`.
pub fn memory_estimate(config: &Config) -> (usize, usize, usize) {
    let buckets = config.conntrack.capacity.clamp(conntrack::MIN_CAPACITY, conntrack::MAX_CAPACITY).div_ceil(conntrack::WAYS).next_power_of_two();
    let table = buckets * conntrack::WAYS * conntrack::BYTES_PER_ENTRY;
    let counters = std::mem::size_of::<LcoreCounters>()
        + crate::limits::MAX_SERVICES * std::mem::size_of::<ServiceCounters>()
        + crate::limits::MAX_BACKENDS * std::mem::size_of::<BackendCounters>();
    let maglev = config.services.iter().map(|s| s.maglev_size as usize * std::mem::size_of::<u16>()).sum();
    (table, counters, maglev)
}

fn mib(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

/// `dataplane check-config FILE`: loads and validates `path`, builds its Maglev tables (as a
/// reload would), and returns a summary: services, backends, Maglev sizes, memory estimate.
pub fn check_config(path: &Path) -> Result<String, ConfigError> {
    use std::fmt::Write as _;
    let c = Config::load(path)?;
    let mut o = String::new();
    let _ = writeln!(o, "{}: OK", path.display());
    let _ = writeln!(
        o,
        "eal: main lcore {}, forwarding lcores {:?}, extra args [{}]",
        c.eal.main_lcore,
        c.eal.lcores,
        c.eal.args.join(" ")
    );
    for p in &c.ports {
        let role = match p.role {
            PortRole::Nic => "nic",
            PortRole::Kernel => "kernel",
        };
        let exc = p.kernel.as_deref().map(|k| format!(", exception port {k}")).unwrap_or_default();
        let _ = writeln!(o, "port {}: {role}, {}{exc}", p.name, p.devargs);
    }
    let h = &c.host;
    let _ = writeln!(
        o,
        "host: ipv4 {} gateway4 {} ipv6 {} gateway6 {} mtu {}",
        h.ipv4.map_or("-".into(), |p| p.to_string()),
        h.gateway4.map_or("-".into(), |a| a.to_string()),
        h.ipv6.map_or("-".into(), |p| p.to_string()),
        h.gateway6.map_or("-".into(), |a| a.to_string()),
        h.mtu
    );
    let _ = writeln!(o, "services: {}, backends: {}", c.services.len(), c.backend_count());
    for s in &c.services {
        let port = s.port.map_or("*".to_string(), |p| p.to_string());
        let vip = match s.vip {
            std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
            a => format!("{a}:{port}"),
        };
        let mode = match s.mode {
            Mode::DsrL2 => "dsr-l2".to_string(),
            Mode::Tunnel { encap: Encap::Ipip, .. } => "tunnel ipip".to_string(),
            Mode::Tunnel { encap: Encap::Gue { port }, .. } => format!("tunnel gue:{port}"),
        };
        let backends: Vec<String> = s
            .backends
            .iter()
            .map(|b| match b.mac {
                Some(m) => format!("{} w{} mac {m}", b.address, b.weight),
                None => format!("{} w{}", b.address, b.weight),
            })
            .collect();
        let _ = writeln!(
            o,
            "  {} {} {vip} {mode} maglev {}: {}",
            s.name,
            s.protocol.as_str(),
            s.maglev_size,
            backends.join(", ")
        );
        if u64::from(s.maglev_size) < 100 * s.backends.len() as u64 {
            let _ = writeln!(
                o,
                "  warning: {}: maglev_size {} < 100 x {} backends; shares may be uneven by more than 1 %",
                s.name,
                s.maglev_size,
                s.backends.len()
            );
        }
    }
    // Build the forwarding state as `reload` would, so a config that passes here also loads.
    // MACs are unknown offline; they only matter for resolution, not for the build.
    let ports = port_infos(&c, &[]);
    if let Err(e) = Snapshot::build(&c, &ports, &crate::pipeline::NeighborTable::new()) {
        return Err(ConfigError::Unbuildable(e.to_string()));
    }
    let (table, counters, maglev) = memory_estimate(&c);
    let n = c.eal.lcores.len();
    let _ = writeln!(
        o,
        "memory: connection table {} x {n} lcores = {} ({} flows per lcore); counters {} x {n} lcores; Maglev tables {} per snapshot (x2 during a reload)",
        mib(table),
        mib(table * n),
        table / conntrack::BYTES_PER_ENTRY,
        mib(counters),
        mib(maglev)
    );
    Ok(o)
}

/// Sends `{"cmd": cmd}` to the control socket and returns the answer when it is `ok`.
pub fn client_request(socket: &Path, cmd: &str) -> Result<Value, ControlError> {
    use std::io::{BufRead, BufReader, Read, Write};
    let io = |source| ControlError::Io { path: socket.to_path_buf(), source };
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|source| ControlError::Connect { path: socket.to_path_buf(), source })?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(&json!({ "cmd": cmd })).map_err(|e| ControlError::BadAnswer(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream.take(MAX_ANSWER)).read_line(&mut answer).map_err(io)?;
    if answer.is_empty() {
        return Err(ControlError::BadAnswer("the dataplane closed the connection without answering".into()));
    }
    let v: Value = serde_json::from_str(&answer).map_err(|e| ControlError::BadAnswer(e.to_string()))?;
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(v),
        Some(Value::Bool(false)) => {
            Err(ControlError::Refused(v.get("error").and_then(Value::as_str).unwrap_or("refused without a reason").to_string()))
        }
        _ => Err(ControlError::BadAnswer(format!("no \"ok\" field in {answer:?}"))),
    }
}

/// How `dataplane stats` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned tables for humans.
    Table,
    /// The JSON answer, pretty-printed.
    Json,
    /// Prometheus text exposition.
    Prometheus,
}

/// Renders an answer of `cmd` for the terminal.
pub fn format_answer(cmd: &str, answer: &Value, format: OutputFormat) -> Result<String, ControlError> {
    let bad = |e: &dyn std::fmt::Display| ControlError::BadAnswer(e.to_string());
    if format == OutputFormat::Json {
        return serde_json::to_string_pretty(answer).map(|s| s + "\n").map_err(|e| bad(&e));
    }
    match cmd {
        "stats" => {
            let r: StatsReport = serde_json::from_value(answer.get("stats").cloned().unwrap_or(Value::Null)).map_err(|e| bad(&e))?;
            Ok(match format {
                OutputFormat::Prometheus => r.render_prometheus(),
                _ => r.render_table(),
            })
        }
        "config" => {
            let c = answer.get("config").cloned().unwrap_or(Value::Null);
            toml::to_string(&c).map_err(|e| bad(&e))
        }
        "neighbors" => {
            use std::fmt::Write as _;
            let mut o = format!("{:<40}{:<20}{:<12}{:>8}\n", "NEXT HOP", "MAC", "PORT", "AGE");
            for n in answer.get("neighbors").and_then(Value::as_array).into_iter().flatten() {
                let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
                let age = n.get("age_secs").and_then(Value::as_u64).map_or("-".to_string(), |a| format!("{a}s"));
                let mac = if n.get("mac").is_some_and(Value::is_null) { "unresolved".into() } else { s("mac") };
                let _ = writeln!(o, "{:<40}{:<20}{:<12}{:>8}", s("ip"), mac, s("port"), age);
            }
            Ok(o)
        }
        _ => Ok(answer.get("message").and_then(Value::as_str).unwrap_or("ok").to_string() + "\n"),
    }
}

/// `dataplane stats|reload|shutdown|config|neighbors`: one request, rendered for the terminal.
pub fn client_command(socket: &Path, cmd: &str, format: OutputFormat) -> Result<String, ControlError> {
    let answer = client_request(socket, cmd)?;
    format_answer(cmd, &answer, format)
}
