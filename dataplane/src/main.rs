//! `dataplane`: the DPDK L4 load balancer's command line.
//!
//! - `dataplane run --config FILE`: bring up EAL and the ports, run the lcores and the control
//!   plane until SIGTERM/SIGINT (SIGHUP reloads the config);
//! - `dataplane check-config FILE`: validate a config file and say what it would run;
//! - `dataplane stats [--socket PATH] [--json|--prometheus]`: counters of a running instance;
//! - `dataplane reload [--socket PATH]`: re-read the running instance's config file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use dataplane::config::Config;
use dataplane::runtime::Runtime;

#[derive(Parser, Debug)]
#[command(name = "dataplane", version, about = "DPDK userspace L4 load balancer (Maglev, tunnel/L2 DSR)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the load balancer (needs root and hugepages).
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
    match cli.cmd {
        Cmd::Run { config } => run(config),
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn run(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
            eprintln!("cannot install the handler for signal {sig}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let (mut runtime, _wiring) = match Runtime::start(&config, shutdown.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dataplane: {e}");
            return ExitCode::FAILURE;
        }
    };
    let snapshot = match dataplane::pipeline::Snapshot::build(&config, runtime.ports(), &Default::default()) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            eprintln!("dataplane: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = runtime.launch(&snapshot, config.conntrack.capacity) {
        eprintln!("dataplane: {e}");
        return ExitCode::FAILURE;
    }
    while !shutdown.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match runtime.stop() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane: {e}");
            ExitCode::FAILURE
        }
    }
}
