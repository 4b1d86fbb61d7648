//! Process set-up for the two binaries: logging, key loading, resolution, binding,
//! daemonizing, pid file, privilege drop, and the exit status.
//!
//! Order for `spiped` (spiped 1.6's, except that the key is read first so an unreadable key is
//! reported on the terminal before anything else happens):
//! key → [-D: daemonize] → resolve source, target, -b (retrying every second with -D) →
//! bind → [daemonize unless -F or -D] → pid file → --syslog → -u → serve.
//! Every start-up failure prints one line naming the cause and exits 1.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::addr::{Address, ResolveError, Target};
use crate::cli::{self, ConnSettings, DaemonConfig, SpipeArgs, SpipedArgs, SpipedCommand, UserSpec};
use crate::io::acceptor::{self, AcceptorConfig, Exit, Listener};
use crate::io::Shared;
use crate::key::{self, PreSharedKey};
use crate::limits::{DNS_RETRY, MIN_KEY_FILE};

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Key(#[from] key::KeyError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("-b {0} is not an IP address and port")]
    BadBind(String),
    #[error("cannot daemonize: {0}")]
    Daemonize(nix::Error),
    #[error("cannot write pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to syslog: {0}")]
    Syslog(String),
    #[error("cannot drop privileges to {spec}: {reason}")]
    Privileges { spec: String, reason: String },
    #[error("event loop failed: {0}")]
    Io(#[from] std::io::Error),
}

// ----- logging ------------------------------------------------------------------------------

type SyslogLogger = syslog::Logger<syslog::LoggerBackend, syslog::Formatter3164>;
static SYSLOG: OnceLock<Mutex<SyslogLogger>> = OnceLock::new();

/// Where log lines go: stderr until `--syslog` switches them to syslog.
#[derive(Clone, Copy, Debug)]
struct LogSink;

/// One formatted log line, sent when dropped.
struct LogLine {
    level: Level,
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if let Some(l) = SYSLOG.get() {
            let msg = String::from_utf8_lossy(&self.buf).trim_end().to_owned();
            let mut l = l.lock().unwrap_or_else(|p| p.into_inner());
            let _ = match self.level {
                Level::ERROR => l.err(msg),
                Level::WARN => l.warning(msg),
                Level::INFO => l.info(msg),
                _ => l.debug(msg),
            };
        } else {
            let _ = std::io::stderr().lock().write_all(&self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine { level: Level::INFO, buf: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogLine {
        LogLine { level: *meta.level(), buf: Vec::new() }
    }
}

/// Installs the log subscriber: level from `RUST_LOG`, else `default`; no colours.
pub fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogSink)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

fn start_syslog(program: &str) -> Result<(), StartError> {
    let f = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: program.into(),
        pid: std::process::id(),
    };
    let l = syslog::unix(f).map_err(|e| StartError::Syslog(e.to_string()))?;
    let _ = SYSLOG.set(Mutex::new(l));
    Ok(())
}

// ----- shared start-up steps -----------------------------------------------------------------

fn load_key(path: &Path) -> Result<PreSharedKey, StartError> {
    let k = key::load(path)?;
    if k.is_short() {
        tracing::warn!(
            "key file {} holds only {} bytes; use at least {MIN_KEY_FILE} random bytes (spiped --keygen FILE)",
            path.display(),
            k.file_len
        );
    }
    Ok(k.key)
}

fn resolve_bind(bind: &Option<Address>) -> Result<Option<SocketAddr>, StartError> {
    let Some(b) = bind else { return Ok(None) };
    match b.resolve()?.into_iter().next() {
        Some(Target::Inet(sa)) => Ok(Some(sa)),
        _ => Err(StartError::BadBind(b.to_string())),
    }
}

/// Resolves `a`, retrying every [`DNS_RETRY`] while `retry` (spiped's `-D`).
fn resolve(a: &Address, retry: bool) -> Result<Vec<Target>, StartError> {
    loop {
        match a.resolve() {
            Ok(v) => return Ok(v),
            Err(e) if retry => {
                tracing::warn!("{e}; retrying");
                std::thread::sleep(DNS_RETRY);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn daemonize(pidfile: &Path) -> Result<(), StartError> {
    // nochdir: relative pid-file and socket paths keep meaning what the user typed.
    nix::unistd::daemon(true, false).map_err(StartError::Daemonize)?;
    std::fs::write(pidfile, format!("{}\n", std::process::id()))
        .map_err(|source| StartError::PidFile { path: pidfile.to_owned(), source })
}

fn drop_privileges(spec: &UserSpec) -> Result<(), StartError> {
    use nix::unistd::{setgid, setgroups, setuid, Gid, Group, Uid, User};
    let text = format!("{}{}", spec.user.as_deref().unwrap_or(""), spec.group.as_deref().map(|g| format!(":{g}")).unwrap_or_default());
    let fail = |reason: String| StartError::Privileges { spec: text.clone(), reason };
    let user = match &spec.user {
        None => None,
        Some(u) => Some(match User::from_name(u).map_err(|e| fail(e.to_string()))? {
            Some(pw) => pw,
            None => match u.parse::<u32>() {
                Ok(id) => User::from_uid(Uid::from_raw(id))
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| fail(format!("no such user {u}")))?,
                Err(_) => return Err(fail(format!("no such user {u}"))),
            },
        }),
    };
    let gid = match &spec.group {
        Some(g) => match Group::from_name(g).map_err(|e| fail(e.to_string()))? {
            Some(gr) => gr.gid,
            None => Gid::from_raw(g.parse::<u32>().map_err(|_| fail(format!("no such group {g}")))?),
        },
        // Only a user: take its primary group, so no root group is left behind.
        None => match &user {
            Some(pw) => pw.gid,
            None => return Err(fail("nothing to drop to".into())),
        },
    };
    setgroups(&[gid]).map_err(|e| fail(format!("setgroups: {e}")))?;
    setgid(gid).map_err(|e| fail(format!("setgid: {e}")))?;
    if let Some(pw) = user {
        setuid(pw.uid).map_err(|e| fail(format!("setuid: {e}")))?;
    }
    Ok(())
}

// ----- spiped ----------------------------------------------------------------------------------

/// Runs a validated `spiped` configuration. Returns how the daemon stopped.
pub fn run_daemon(cfg: DaemonConfig) -> Result<Exit, StartError> {
    let key = load_key(&cfg.conn.keyfile)?;
    let signals = acceptor::signals()?;
    let mut daemonized = false;
    if cfg.wait_dns && !cfg.foreground {
        daemonize(&cfg.pidfile)?;
        daemonized = true;
        if cfg.syslog {
            start_syslog("spiped")?;
        }
    }
    let sources = resolve(&cfg.source, cfg.wait_dns)?;
    if sources.len() > 1 {
        tracing::warn!("Using the first of multiple addresses found for {}", cfg.source);
    }
    let source = sources.into_iter().next().expect("resolve never returns an empty list");
    let targets = resolve(&cfg.conn.target, cfg.wait_dns)?;
    let bind = loop {
        match resolve_bind(&cfg.conn.bind) {
            Ok(b) => break b,
            Err(e) if cfg.wait_dns && matches!(e, StartError::Resolve(_)) => {
                tracing::warn!("{e}; retrying");
                std::thread::sleep(DNS_RETRY);
            }
            Err(e) => return Err(e),
        }
    };
    let listener = Listener::bind(&source, cfg.socket_mode)
        .map_err(|e| StartError::Bind { addr: source.to_string(), source: e })?;
    if !daemonized && !cfg.foreground {
        daemonize(&cfg.pidfile)?;
        daemonized = true;
        if cfg.syslog {
            start_syslog("spiped")?;
        }
    }
    if let Some(u) = &cfg.user {
        drop_privileges(u)?;
    }
    tracing::info!(
        "spiped {} {} {} -> {} ({:?} protocol, -n {}, -o {:?})",
        env!("CARGO_PKG_VERSION"),
        if cfg.mode == cli::Mode::Encrypt { "-e" } else { "-d" },
        source,
        cfg.conn.target,
        cfg.conn.protocol,
        cfg.max_conns.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        cfg.conn.timeout,
    );
    let shared = Arc::new(Shared::new(cfg.conn.clone(), key, targets, bind).with_key_pool());
    let acfg = AcceptorConfig {
        mode: cfg.mode,
        max_conns: cfg.max_conns,
        once: cfg.once,
        threads: cfg.threads,
        reresolve: cfg.reresolve,
        target: cfg.conn.target.clone(),
    };
    let r = acceptor::serve(listener, signals, shared, acfg);
    if daemonized {
        let _ = std::fs::remove_file(&cfg.pidfile);
    }
    Ok(r?)
}

/// `main` of the `spiped` binary.
pub fn spiped_main() -> ! {
    init_logging("info");
    let args: SpipedArgs = cli::parse_or_exit();
    let cmd = args.into_command().unwrap_or_else(|e| cli::exit_with(e));
    match cmd {
        SpipedCommand::Keygen(path) => match key::generate(&path, &ring::rand::SystemRandom::new()) {
            Ok(()) => {
                eprintln!("spiped: wrote a new 32-byte key to {} (mode 0600)", path.display());
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!("spiped: {e}");
                std::process::exit(1)
            }
        },
        SpipedCommand::Run(cfg) => match run_daemon(*cfg) {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                tracing::error!("{e}");
                // Also on the terminal if logging went elsewhere.
                if SYSLOG.get().is_some() {
                    eprintln!("spiped: {e}");
                }
                std::process::exit(1)
            }
        },
    }
}

// ----- spipe ------------------------------------------------------------------------------------

/// Runs `spipe` with validated settings.
pub fn run_spipe(settings: ConnSettings) -> Result<(), crate::io::spipe::SpipeError> {
    use crate::io::spipe::SpipeError;
    let key = load_key(&settings.keyfile).map_err(|e| SpipeError::Local(std::io::Error::other(e.to_string())))?;
    let targets = settings
        .target
        .resolve()
        .map_err(|e| SpipeError::Local(std::io::Error::other(e.to_string())))?;
    let bind = resolve_bind(&settings.bind).map_err(|e| SpipeError::Local(std::io::Error::other(e.to_string())))?;
    let shared = Arc::new(Shared::new(settings, key, targets, bind));
    crate::io::spipe::run(shared)
}

/// `main` of the `spipe` binary.
pub fn spipe_main() -> ! {
    // spipe prints its one failure line itself; RUST_LOG=debug shows the details.
    init_logging("error");
    let args: SpipeArgs = cli::parse_or_exit();
    let settings = args.into_config().unwrap_or_else(|e| cli::exit_with(e));
    match run_spipe(settings) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("spipe: {e}");
            std::process::exit(1)
        }
    }
}
