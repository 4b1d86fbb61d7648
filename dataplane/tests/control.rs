//! The control plane without DPDK: a real `Control` with real counters, channels and learned
//! queues standing in for the lcores, driven through its real UNIX control socket.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver, TryRecvError};
use crossbeam::queue::ArrayQueue;

use dataplane::config::Config;
use dataplane::control::{check_config, client_request, format_answer, port_infos, Control, ControlError, LcoreLink, OutputFormat};
use dataplane::limits::{LEARNED_QUEUE_CAPACITY, SNAPSHOT_QUEUE_DEPTH};
use dataplane::pipeline::{DropReason, Neighbor, PortId, Snapshot};
use dataplane::stats::{LcoreCounters, StatsReport};
use dataplane::wire::EthernetAddress;

fn config_text(sock: &Path, backends: &[&str], weight: u32) -> String {
    let mut t = format!(
        r#"
[eal]
main_lcore = 0
lcores = [1, 2]

[[port]]
name = "nic0"
devargs = "net_null0"
role = "nic"
kernel = "kni0"
[[port]]
name = "kni0"
devargs = "net_tap0,iface=dp0"
role = "kernel"

[host]
ipv4 = "198.18.0.2/24"

[control]
socket = "{}"

[[service]]
name = "web"
vip = "198.18.0.100"
protocol = "tcp"
port = 80
maglev_size = 251
"#,
        sock.display()
    );
    for b in backends {
        t.push_str(&format!("[[service.backend]]\naddress = \"{b}\"\nweight = {weight}\n"));
    }
    t
}

/// A running `Control` on its own thread with two fake lcores.
struct Harness {
    dir: PathBuf,
    path: PathBuf,
    sock: PathBuf,
    receivers: Vec<Receiver<Arc<Snapshot>>>,
    counters: Vec<Arc<LcoreCounters>>,
    learned: Vec<Arc<ArrayQueue<Neighbor>>>,
    initial: Arc<Snapshot>,
    shutdown: Arc<AtomicBool>,
    reload_flag: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<Result<(), ControlError>>>,
}

impl Harness {
    fn start(tag: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!("dp-control-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("dp.sock");
        let path = dir.join("dataplane.toml");
        std::fs::write(&path, config_text(&sock, &["198.18.0.10", "198.18.0.11"], 1)).unwrap();
        let config = Config::load(&path).unwrap();
        let macs = [EthernetAddress([2, 0, 0, 0, 0, 1]), EthernetAddress([2, 0, 0, 0, 0, 1])];
        let ports = port_infos(&config, &macs);
        let (mut links, mut receivers, mut counters, mut learned) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for lcore_id in [1, 2] {
            let (tx, rx) = bounded(SNAPSHOT_QUEUE_DEPTH);
            let c = Arc::new(LcoreCounters::new());
            let q = Arc::new(ArrayQueue::new(LEARNED_QUEUE_CAPACITY));
            links.push(LcoreLink { lcore_id, snapshots: tx, counters: Arc::clone(&c), learned: Arc::clone(&q) });
            receivers.push(rx);
            counters.push(c);
            learned.push(q);
        }
        let mut control = Control::new(config, path.clone(), ports, links).unwrap();
        let initial = control.snapshot();
        let reload_flag = control.reload_flag();
        let shutdown = Arc::new(AtomicBool::new(false));
        let sd = Arc::clone(&shutdown);
        let thread = std::thread::spawn(move || control.run(&sd));
        Harness { dir, path, sock, receivers, counters, learned, initial, shutdown, reload_flag, thread: Some(thread) }
    }

    fn write_config(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    fn stats(&self) -> StatsReport {
        let v = client_request(&self.sock, "stats").unwrap();
        serde_json::from_value(v["stats"].clone()).unwrap()
    }

    /// Every lcore's next snapshot, waiting at most 2 s each.
    fn next_snapshots(&self) -> Vec<Arc<Snapshot>> {
        self.receivers.iter().map(|r| r.recv_timeout(Duration::from_secs(2)).expect("a snapshot on every lcore")).collect()
    }

    fn assert_no_snapshot(&self) {
        for r in &self.receivers {
            assert!(matches!(r.try_recv(), Err(TryRecvError::Empty)), "nothing may be published");
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn addrs(s: &Snapshot) -> Vec<String> {
    s.backends.iter().map(|b| b.addr.to_string()).collect()
}

/// `stats` sums what the lcores counted, labelled by the config's names, and renders as
/// Prometheus text and as a table.
#[test]
fn stats_sum_lcore_counters() {
    let h = Harness::start("stats");
    let (a, b) = (&h.counters[0], &h.counters[1]);
    a.ports[0].rx_packets.add(100);
    b.ports[0].rx_packets.add(50);
    a.services[0].packets.add(7);
    b.services[0].packets.add(3);
    a.services[0].new_flows.add(2);
    a.backends[1].bytes.add(1500);
    b.backends[1].bytes.add(500);
    LcoreCounters::drop(a, DropReason::NoBackend);
    LcoreCounters::drop(b, DropReason::NoBackend);
    LcoreCounters::drop(b, DropReason::NoBackend);
    let r = h.stats();
    assert_eq!(r.ports[0].name, "nic0");
    assert_eq!(r.ports[0].rx_packets, 150);
    assert_eq!(r.services[0].name, "web");
    assert_eq!(r.services[0].packets, 10);
    assert_eq!(r.services[0].new_flows, 2);
    assert_eq!((r.backends[1].address.as_str(), r.backends[1].bytes), ("198.18.0.11", 2000));
    assert_eq!(r.drops_of(DropReason::NoBackend), 3);
    assert_eq!(r.lcores.iter().map(|l| l.lcore).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r.control.unresolved_next_hops, 2, "no backend MAC known yet");

    let v = client_request(&h.sock, "stats").unwrap();
    let prom = format_answer("stats", &v, OutputFormat::Prometheus).unwrap();
    assert!(prom.contains("dataplane_drops_total{reason=\"no_backend\"} 3\n"), "{prom}");
    let table = format_answer("stats", &v, OutputFormat::Table).unwrap();
    assert!(table.contains("198.18.0.11") && table.contains("no_backend 3"), "{table}");
}

/// A reload with a changed backend list publishes one new snapshot to every lcore, with the
/// new backends; stats follow the new labels.
#[test]
fn reload_publishes_to_every_lcore() {
    let h = Harness::start("reload");
    assert_eq!(addrs(&h.initial), vec!["198.18.0.10", "198.18.0.11"]);
    h.assert_no_snapshot();
    h.write_config(&config_text(&h.sock, &["198.18.0.10", "198.18.0.12", "198.18.0.13"], 1));
    let v = client_request(&h.sock, "reload").unwrap();
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("added: [web/198.18.0.12, web/198.18.0.13], removed: [web/198.18.0.11]"), "{msg}");
    for s in h.next_snapshots() {
        assert_eq!(addrs(&s), vec!["198.18.0.10", "198.18.0.12", "198.18.0.13"]);
    }
    h.assert_no_snapshot();
    let r = h.stats();
    assert_eq!(r.control.reloads, 1);
    assert_eq!(r.backends.len(), 3);
    assert_eq!(r.backends[2].address, "198.18.0.13");
    let cfg = client_request(&h.sock, "config").unwrap();
    assert_eq!(cfg["config"]["service"][0]["backend"][2]["address"], "198.18.0.13");

    // SIGHUP path: the flag main registers for the signal.
    h.write_config(&config_text(&h.sock, &["198.18.0.10"], 1));
    h.reload_flag.store(true, Ordering::Relaxed);
    for s in h.next_snapshots() {
        assert_eq!(addrs(&s), vec!["198.18.0.10"]);
    }
}

/// A broken file is refused with the field named; the old config keeps running and nothing
/// is published. A change that needs a restart is refused the same way.
#[test]
fn bad_reload_keeps_old_config() {
    let h = Harness::start("badreload");
    h.write_config(&config_text(&h.sock, &["198.18.0.10"], 0));
    let err = client_request(&h.sock, "reload").unwrap_err();
    let want = format!("{}: service[0].backend[0].weight: must be 1..=65535, got 0", h.path.display());
    assert!(matches!(&err, ControlError::Refused(m) if m.starts_with(&want)), "{err}");
    h.assert_no_snapshot();

    h.write_config(&config_text(&h.sock, &["198.18.0.10"], 1).replace("lcores = [1, 2]", "lcores = [1, 3]"));
    let err = client_request(&h.sock, "reload").unwrap_err().to_string();
    assert!(err.starts_with("eal: changed, but EAL arguments and lcores are fixed at start"), "{err}");
    h.assert_no_snapshot();

    let r = h.stats();
    assert_eq!(r.control.reloads, 0);
    assert_eq!(r.control.reload_errors, 2);
    assert!(r.control.last_reload_error.unwrap().starts_with("eal: changed"));
    assert_eq!(r.backends.len(), 2, "still the old config's backends");
    let cfg = client_request(&h.sock, "config").unwrap();
    assert_eq!(cfg["config"]["service"][0]["backend"].as_array().unwrap().len(), 2);
}

/// An ARP reply learned by an lcore for a backend resolves its MAC in a republished snapshot;
/// the same reply again changes nothing.
#[test]
fn learned_neighbor_republishes() {
    let h = Harness::start("neigh");
    assert!(h.initial.backends.iter().all(|b| b.mac.is_none()));
    let mac = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
    let n = Neighbor { ip: "198.18.0.10".parse().unwrap(), mac, port: PortId(0) };
    h.learned[1].push(n).unwrap();
    for s in h.next_snapshots() {
        assert_eq!(s.backends[0].mac, Some(mac));
        assert_eq!(s.backends[1].mac, None);
        assert_eq!(s.unresolved.len(), 1);
    }
    h.learned[0].push(n).unwrap();
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline && !h.learned[0].is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    h.assert_no_snapshot();
    let v = client_request(&h.sock, "neighbors").unwrap();
    let rows = v["neighbors"].as_array().unwrap();
    assert_eq!(rows[0]["ip"], "198.18.0.10");
    assert_eq!(rows[0]["mac"], "02:00:00:00:00:10");
    assert!(rows[1]["mac"].is_null());
    assert_eq!(h.stats().control.neighbors_learned, 1);
}

/// `dataplane config` prints the running config as TOML that parses back to the same config
/// (the JSON answer loses nothing on the way).
#[test]
fn config_dump_parses_back() {
    let h = Harness::start("dump");
    let v = client_request(&h.sock, "config").unwrap();
    assert_eq!(v["path"], h.path.display().to_string());
    let text = format_answer("config", &v, OutputFormat::Table).unwrap();
    assert_eq!(Config::parse(&text).unwrap(), Config::load(&h.path).unwrap(), "{text}");
}

/// `shutdown` on the socket ends `run`, which removes the socket file; unknown commands are
/// refused without stopping anything.
#[test]
fn shutdown_ends_run() {
    let mut h = Harness::start("shutdown");
    let err = client_request(&h.sock, "frobnicate").unwrap_err().to_string();
    assert!(err.starts_with("unknown command \"frobnicate\""), "{err}");
    let v = client_request(&h.sock, "shutdown").unwrap();
    assert_eq!(v["message"], "shutting down");
    let t = h.thread.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !t.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(t.is_finished(), "run returned");
    t.join().unwrap().unwrap();
    assert!(!h.sock.exists(), "socket removed");
    assert!(matches!(client_request(&h.sock, "stats"), Err(ControlError::Connect { .. })));
}

/// A second control plane on the same socket is refused while the first runs.
#[test]
fn second_instance_is_refused() {
    let h = Harness::start("second");
    let config = Config::load(&h.path).unwrap();
    let ports = port_infos(&config, &[]);
    let err = Control::new(config, h.path.clone(), ports, Vec::new()).unwrap_err();
    assert!(matches!(err, ControlError::InUse { .. }), "{err}");
    assert!(client_request(&h.sock, "stats").is_ok(), "first instance unaffected");
}

/// `check-config` summarises the shipped example and estimates memory.
#[test]
fn check_config_summary() {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/dataplane.toml"));
    let s = check_config(path).unwrap();
    assert!(s.contains("services: 4, backends: 9"), "{s}");
    assert!(s.contains("web tcp 198.18.0.100:80 tunnel ipip maglev 65537"), "{s}");
    assert!(s.contains("connection table 64.0 MiB x 1 lcores"), "{s}");
    let bad = std::env::temp_dir().join(format!("dp-check-{}.toml", std::process::id()));
    std::fs::write(&bad, "[eal]\nmain_lcore = 0\nlcores = [0]\n").unwrap();
    let e = check_config(&bad).unwrap_err().to_string();
    std::fs::remove_file(&bad).unwrap();
    assert!(e.starts_with("eal.lcores[0]: contains eal.main_lcore 0"), "{e}");
}

/// `config_text` with a second service, "dns" (UDP 53 on the same VIP, one backend), listed
/// before or after "web".
fn two_services(sock: &Path, web: &[&str], dns_first: bool) -> String {
    let base = config_text(sock, web, 1);
    let dns = "\n[[service]]\nname = \"dns\"\nvip = \"198.18.0.100\"\nprotocol = \"udp\"\nport = 53\nmaglev_size = 251\n[[service.backend]]\naddress = \"198.18.0.53\"\n";
    if dns_first {
        let at = base.find("[[service]]").unwrap();
        format!("{}{}\n{}", &base[..at], dns.trim_start(), &base[at..])
    } else {
        format!("{base}{dns}")
    }
}

/// Counts of the service named `name` and of backend `addr` of it.
fn counts(r: &StatsReport, name: &str, addr: &str) -> (u64, u64) {
    let s = r.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}"));
    let b = r.backends.iter().find(|b| b.service == name && b.address == addr).unwrap_or_else(|| panic!("no backend {addr}"));
    (s.packets, b.packets)
}

/// Counters are keyed by identity, not position: lcores count into the slots the snapshot
/// names, and a reload that reorders services, reorders and removes backends and adds new ones
/// keeps every count under its own name; a new backend starts at zero, and a backend that
/// left and comes back does not inherit anyone's counts (its own old ones included: it is a
/// new backend).
#[test]
fn counters_follow_identity_across_reloads() {
    let h = Harness::start("identity");
    h.write_config(&two_services(&h.sock, &["198.18.0.10", "198.18.0.11"], false));
    client_request(&h.sock, "reload").unwrap();
    let snap = h.next_snapshots().remove(0);
    // What an lcore does for a forwarded packet: count in the snapshot's slots.
    let count = |snap: &Snapshot, lcore: usize, addr: &str, n: u64| {
        let b = snap.backends.iter().find(|b| b.addr.to_string() == addr).unwrap();
        let s = &snap.services[usize::from(b.service)];
        h.counters[lcore].services[usize::from(s.counter)].packets.add(n);
        h.counters[lcore].backends[usize::from(b.counter)].packets.add(n);
    };
    count(&snap, 0, "198.18.0.10", 5);
    count(&snap, 1, "198.18.0.11", 7);
    count(&snap, 0, "198.18.0.53", 11);
    let r = h.stats();
    assert_eq!(counts(&r, "web", "198.18.0.10"), (12, 5));
    assert_eq!(counts(&r, "web", "198.18.0.11"), (12, 7));
    assert_eq!(counts(&r, "dns", "198.18.0.53"), (11, 11));

    // dns moves first, .10 leaves, .11 moves to the end behind two new backends.
    h.write_config(&two_services(&h.sock, &["198.18.0.12", "198.18.0.13", "198.18.0.11"], true));
    client_request(&h.sock, "reload").unwrap();
    let snap = h.next_snapshots().remove(0);
    assert_eq!(snap.services[0].name, "dns");
    let r = h.stats();
    assert_eq!(r.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["dns", "web"]);
    assert_eq!(counts(&r, "web", "198.18.0.11"), (12, 7), "kept across the reorder");
    assert_eq!(counts(&r, "dns", "198.18.0.53"), (11, 11));
    assert_eq!(counts(&r, "web", "198.18.0.12").1, 0, "a new backend starts at zero");
    assert_eq!(counts(&r, "web", "198.18.0.13").1, 0);
    assert!(r.backends.iter().all(|b| b.address != "198.18.0.10"), "a removed backend is not reported");
    count(&snap, 1, "198.18.0.12", 3);
    count(&snap, 0, "198.18.0.11", 1);
    let r = h.stats();
    assert_eq!(counts(&r, "web", "198.18.0.12"), (16, 3));
    assert_eq!(counts(&r, "web", "198.18.0.11"), (16, 8));
    assert_eq!(counts(&r, "web", "198.18.0.13").1, 0);

    // .10 comes back: a new identity again, counted from zero.
    h.write_config(&two_services(&h.sock, &["198.18.0.10", "198.18.0.11"], false));
    client_request(&h.sock, "reload").unwrap();
    let snap = h.next_snapshots().remove(0);
    let r = h.stats();
    assert_eq!(counts(&r, "web", "198.18.0.10"), (16, 0));
    assert_eq!(counts(&r, "web", "198.18.0.11"), (16, 8));
    // Slots in the snapshot are unique per kind.
    let mut slots: Vec<u16> = snap.backends.iter().map(|b| b.counter).collect();
    slots.sort_unstable();
    slots.dedup();
    assert_eq!(slots.len(), snap.backends.len());
}
