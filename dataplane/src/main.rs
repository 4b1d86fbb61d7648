//! `dataplane`: the DPDK L4 load balancer's command line (argument parsing only; the work is in
//! the library's `runtime` and `control` modules).
//!
//! - `dataplane run --config FILE`: bring up EAL and the ports, run the lcores, and run the
//!   control plane on the main thread until SIGTERM/SIGINT or `{"cmd":"shutdown"}`; SIGHUP
//!   reloads the config file;
//! - `dataplane check-config FILE`: validate a config file and summarise what it would run;
//! - `dataplane stats [--socket PATH] [--json|--prometheus]`: counters of a running instance;
//! - `dataplane reload [--socket PATH]`: re-read the running instance's config file;
//! - `dataplane neighbors [--socket PATH] [--json]`: next hops and their learned MACs.
//! - `dataplane pktgen --dev DEVARGS --vip IP --backend IP ...`: templated traffic generator that
//!   checks the forwarder's tunnelled output (see the library's `pktgen` module).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use dataplane::config::{Config, DEFAULT_SOCKET};
use dataplane::control::{self, Control, LcoreLink, OutputFormat};
use dataplane::runtime::Runtime;

#[derive(Parser, Debug)]
#[command(name = "dataplane", version, about = "DPDK userspace L4 load balancer (Maglev, tunnel/L2 DSR)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the load balancer (needs root and hugepages; see docs/DPDK.md).
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file without running it.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// Print the counters of a running instance.
    Stats {
        #[command(flatten)]
        socket: SocketArg,
        /// Print the raw JSON answer.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// Print Prometheus text exposition.
        #[arg(long)]
        prometheus: bool,
    },
    /// Make a running instance re-read its config file (like SIGHUP).
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Show the next hops a running instance resolves and their MACs.
    Neighbors {
        #[command(flatten)]
        socket: SocketArg,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Send templated traffic over a DPDK port and check what the forwarder tunnels back
    /// (exit status 1 when any check failed: wrong backend, corrupted inner packet, flow moved).
    Pktgen(PktgenArgs),
}

#[derive(Args, Debug)]
struct PktgenArgs {
    /// The port: vdev devargs (`net_memif0,role=server,socket=/memif-perf.sock`) or a PCI address.
    #[arg(long)]
    dev: String,
    /// EAL arguments, space separated (the port's --vdev/-a is added).
    #[arg(long, default_value = "-l 0 --in-memory --no-pci --log-level *:warning", allow_hyphen_values = true)]
    eal: String,
    /// Service address(es) of the forwarder; flows use them round-robin.
    #[arg(long = "vip", required = true)]
    vips: Vec<std::net::Ipv4Addr>,
    /// Backend address(es) the forwarder may tunnel to (anything else is a wrong-backend failure).
    #[arg(long = "backend", required = true)]
    backends: Vec<std::net::Ipv4Addr>,
    /// Number of flows (1 to 10 000 000).
    #[arg(long, default_value_t = 1000)]
    flows: u32,
    /// First source address (flow i: + i / 64512, port 1024 + i % 64512).
    #[arg(long, default_value = "10.0.0.1")]
    src: std::net::Ipv4Addr,
    /// Destination port of TCP flows.
    #[arg(long, default_value_t = 80)]
    tcp_port: u16,
    /// Destination port of UDP flows.
    #[arg(long, default_value_t = 53)]
    udp_port: u16,
    /// Weights of the flow kinds.
    #[arg(long, default_value = "syn=20,data=70,udp=10")]
    mix: String,
    /// Frame size in bytes, FCS included (64 to 1518).
    #[arg(long, default_value_t = 64)]
    size: u16,
    /// Target rate in packets per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Seconds to send (0: until --count or Ctrl-C).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Packets to send (default: no limit).
    #[arg(long)]
    count: Option<u64>,
    /// Destination MAC of the frames (the forwarder's NIC).
    #[arg(long, default_value = "ff:ff:ff:ff:ff:ff")]
    dst_mac: String,
    /// Seconds to wait for the link (the memif peer).
    #[arg(long, default_value_t = 30)]
    link_timeout: u64,
    /// Milliseconds to keep receiving after the last packet.
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
    /// Print the final record as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No live stats lines on stderr.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct SocketArg {
    /// The control socket (`[control].socket` of the running config).
    #[arg(long, default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Run { config } => run(config),
        Cmd::CheckConfig { file } => control::check_config(&file).map(|s| print!("{s}")).map_err(|e| format!("{}: {e}", file.display())),
        Cmd::Stats { socket, json, prometheus } => {
            let format = if json {
                OutputFormat::Json
            } else if prometheus {
                OutputFormat::Prometheus
            } else {
                OutputFormat::Table
            };
            client(&socket, "stats", format)
        }
        Cmd::Reload { socket } => client(&socket, "reload", OutputFormat::Table),
        Cmd::Neighbors { socket, json } => client(&socket, "neighbors", if json { OutputFormat::Json } else { OutputFormat::Table }),
        Cmd::Pktgen(args) => return pktgen(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane: {e}");
            ExitCode::FAILURE
        }
    }
}

fn client(socket: &SocketArg, cmd: &str, format: OutputFormat) -> Result<(), String> {
    let out = control::client_command(&socket.socket, cmd, format).map_err(|e| e.to_string())?;
    print!("{out}");
    Ok(())
}

/// `dataplane run`: EAL and ports first (EAL pins the calling thread, which becomes the main
/// lcore and then runs the control plane), then the control plane's first snapshot, then the
/// lcores. Stops the lcores and tears down DPDK on every exit path after the ports came up.
fn run(path: PathBuf) -> Result<(), String> {
    let config = Config::load(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, shutdown.clone()).map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let (mut runtime, wiring) = Runtime::start(&config, shutdown.clone()).map_err(|e| e.to_string())?;
    let links = wiring
        .into_iter()
        .map(|w| LcoreLink { lcore_id: w.lcore_id, snapshots: w.snapshots, counters: w.counters, learned: w.learned })
        .collect();
    let capacity = config.conntrack.capacity;
    let outcome = (|| {
        let mut control = Control::new(config, path, runtime.ports().to_vec(), links).map_err(|e| e.to_string())?;
        signal_hook::flag::register(signal_hook::consts::SIGHUP, control.reload_flag())
            .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
        runtime.launch(&control.snapshot(), capacity).map_err(|e| e.to_string())?;
        control.run(&shutdown).map_err(|e| e.to_string())
    })();
    let stopped = runtime.stop().map_err(|e| e.to_string());
    outcome.and(stopped)
}

/// `dataplane pktgen`: runs the generator on the main lcore; exit status 1 on any failed check,
/// 2 when the run could not happen.
fn pktgen(a: PktgenArgs) -> ExitCode {
    use dataplane::pktgen::{engine, FlowSpace, Mix};
    let setup = || -> Result<engine::Options, String> {
        let mix = Mix::parse(&a.mix).map_err(|e| e.to_string())?;
        let space = FlowSpace::new(a.flows, a.src, a.vips.clone(), a.tcp_port, a.udp_port, mix).map_err(|e| e.to_string())?;
        let dst_mac = dataplane::config::parse_mac(&a.dst_mac)
            .ok_or_else(|| format!("--dst-mac {:?} is not a MAC address (write 02:00:00:00:00:01)", a.dst_mac))?;
        if !(a.duration >= 0.0 && a.duration < 1e9) {
            return Err(format!("--duration {} is not a number of seconds", a.duration));
        }
        Ok(engine::Options {
            eal: a.eal.split_whitespace().map(str::to_owned).collect(),
            dev: a.dev.clone(),
            space,
            size: a.size,
            backends: a.backends.clone(),
            rate_pps: a.rate,
            duration: (a.duration > 0.0).then(|| std::time::Duration::from_secs_f64(a.duration)),
            count: a.count,
            dst_mac: dst_mac.0,
            link_timeout: std::time::Duration::from_secs(a.link_timeout),
            drain: std::time::Duration::from_millis(a.drain_ms),
            live: !a.quiet,
        })
    };
    let opts = match setup() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("dataplane pktgen: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("dataplane pktgen: cannot handle signal {sig}: {e}");
            return ExitCode::from(2);
        }
    }
    let report = match engine::run(&opts, &stop) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dataplane pktgen: {e}");
            return ExitCode::from(2);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "sent {} ({:.3} Mpps, {:.2} Gbps), returned correct {} ({:.3} Mpps), missing {}, foreign {}, flows seen {}/{}, latency p50 {:.1}us p99 {:.1}us p999 {:.1}us",
            report.tx_packets, report.tx_mpps, report.tx_gbps, report.rx_packets, report.rx_mpps, report.missing,
            report.rx_foreign, report.flows_seen, report.flows, report.latency.p50_ns as f64 / 1e3,
            report.latency.p99_ns as f64 / 1e3, report.latency.p999_ns as f64 / 1e3
        );
    }
    if report.check_failures > 0 {
        eprintln!(
            "dataplane pktgen: FAILED {} checks (wrong backend {}, corrupted {}, flow moved {}); first: {}",
            report.check_failures, report.wrong_backend, report.corrupted, report.flow_moved,
            report.first_failure.as_deref().unwrap_or("?")
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
