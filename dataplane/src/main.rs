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
