//! The listening socket, the `-n` cap, signals and re-resolution.
//!
//! Contract: [`serve`] accepts connections on the calling thread, which also runs one of the
//! workers: the listener and signals are registered in that worker's `Poll`. Each accepted
//! socket stays on this thread's worker unless it has [`HANDOFF_SLACK`] more open connections
//! than the least loaded worker, so that sequential or light traffic never crosses threads (no
//! channel send, no wake-up of another thread per connection: on a busy machine every such
//! wake-up can wait for a time slice), while concurrent connections still spread over all
//! `--threads` workers; the others get theirs over a bounded channel and a waker. At `-n` open
//! connections it stops calling accept() (further clients wait in the kernel backlog) and
//! warns, as spiped does; it resumes when a worker reports a closed connection (workers wake
//! the acceptor only while it waits for that: at the cap or draining). SIGTERM closes the
//! listening socket and returns once the last connection ended; SIGINT returns at once. The
//! target is re-resolved every `-r` seconds on a separate thread, keeping the previous
//! addresses when a lookup fails.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Sender, TrySendError};
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Token, Waker};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::stream::Stream;
use super::worker::{Worker, RESERVED_TOKENS};
use super::Shared;
use crate::addr::{Address, Target};
use crate::cli::Mode;
use crate::limits::{ACCEPT_QUEUE, CAP_WARN_INTERVAL, HANDOFF_SLACK, LISTEN_BACKLOG};

// In the range the worker leaves to us (`RESERVED_TOKENS..usize::MAX`).
const LISTENER: Token = Token(RESERVED_TOKENS);
const SIGNALS: Token = Token(RESERVED_TOKENS + 1);
/// Back-off after accept() fails for lack of file descriptors or memory.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// UNIX-domain; the path is removed when the listener is closed.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds and listens on `source` (SO_REUSEADDR for TCP, as spiped). A UNIX socket path
    /// left over by a dead process (nobody accepts on it) is replaced; a live one is refused.
    /// `mode` sets the UNIX socket's permissions before it starts listening.
    pub fn bind(source: &Target, mode: Option<u32>) -> io::Result<Listener> {
        match source {
            Target::Inet(addr) => {
                let s = Socket::new(Domain::for_address(*addr), Type::STREAM, Some(Protocol::TCP))?;
                s.set_reuse_address(true)?;
                s.set_cloexec(true)?;
                s.bind(&(*addr).into())?;
                s.listen(LISTEN_BACKLOG)?;
                s.set_nonblocking(true)?;
                Ok(Listener::Tcp(TcpListener::from_std(std::net::TcpListener::from(OwnedFd::from(s)))))
            }
            Target::Unix(path) => {
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    let stale = meta.file_type().is_socket()
                        && matches!(std::os::unix::net::UnixStream::connect(path),
                            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused);
                    if !stale {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{} exists and is not a stale socket; remove it or pick another path", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let s = Socket::new(Domain::UNIX, Type::STREAM, None)?;
                s.set_cloexec(true)?;
                s.bind(&SockAddr::unix(path)?)?;
                if let Some(m) = mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))?;
                }
                s.listen(LISTEN_BACKLOG)?;
                s.set_nonblocking(true)?;
                let std_l = std::os::unix::net::UnixListener::from(OwnedFd::from(s));
                Ok(Listener::Unix(UnixListener::from_std(std_l), path.clone()))
            }
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Acceptor settings.
#[derive(Debug, Clone)]
pub struct AcceptorConfig {
    /// `-e` or `-d`.
    pub mode: Mode,
    /// `-n`; `None` = unlimited.
    pub max_conns: Option<usize>,
    /// `-1`.
    pub once: bool,
    /// Worker threads.
    pub threads: usize,
    /// `-r` period, if re-resolution is on.
    pub reresolve: Option<Duration>,
    /// `-t` as typed (re-resolved if it is a host name).
    pub target: Address,
}

/// How [`serve`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM (or `-1`) and every connection has ended.
    Drained,
    /// SIGINT: stop now.
    Interrupted,
}

fn accept_error_is_resource(e: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

/// Installs the SIGTERM/SIGINT handlers. Call before binding, so a signal that arrives as soon
/// as the socket is visible is handled (not fatal) and the pid file still gets removed.
pub fn signals() -> io::Result<Signals> {
    Signals::new([SIGTERM, SIGINT])
}

/// Runs the daemon until SIGTERM has drained it or SIGINT. `signals` comes from [`signals`].
pub fn serve(listener: Listener, mut signals: Signals, shared: Arc<Shared>, cfg: AcceptorConfig) -> io::Result<Exit> {
    let mut listener = Some(listener);
    // Worker 0 runs here, between accepts; its waker is how the others report closed
    // connections.
    let mut local = Worker::new(cfg.mode, shared.clone(), None)?;
    local.host_acceptor();
    let local_load = local.share_load();
    shared.set_acceptor_waker(local.waker());

    let mut workers: Vec<(Sender<Stream>, Arc<Waker>, Arc<AtomicUsize>)> = Vec::new();
    for i in 1..cfg.threads.max(1) {
        let (tx, rx) = bounded(ACCEPT_QUEUE);
        let mut w = Worker::new(cfg.mode, shared.clone(), Some(rx))?;
        workers.push((tx, w.waker(), w.share_load()));
        std::thread::Builder::new().name(format!("spiped-worker-{i}")).spawn(move || {
            if let Err(e) = w.run() {
                tracing::error!("worker event loop failed: {e}; exiting");
                std::process::exit(1);
            }
        })?;
    }

    if let Some(keys) = shared.keys.clone() {
        std::thread::Builder::new().name("spiped-keys".into()).spawn(move || {
            // SCHED_IDLE: the filler runs only on CPU time nothing else wants, so it never
            // delays a connection (keypool module docs). Without it, still correct.
            use thread_priority::{NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy};
            let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
            if let Err(e) = thread_priority::set_thread_priority_and_policy(
                thread_priority::thread_native_id(),
                ThreadPriority::Min,
                idle,
            ) {
                tracing::debug!("key pool filler keeps its normal priority: {e:?}");
            }
            let e = keys.fill(&ring::rand::SystemRandom::new());
            tracing::warn!("key pool filler stopped: {e}; handshakes compute their own key pairs");
        })?;
    }

    if let (Some(period), Address::Host { .. }) = (cfg.reresolve, &cfg.target) {
        let shared = shared.clone();
        let target = cfg.target.clone();
        std::thread::Builder::new().name("spiped-resolver".into()).spawn(move || loop {
            std::thread::sleep(period);
            match target.resolve() {
                Ok(addrs) => {
                    if *shared.targets() != addrs[..] {
                        let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                        tracing::info!("target {target} now resolves to {}", list.join(", "));
                    }
                    shared.set_targets(addrs);
                }
                Err(e) => tracing::warn!("{e}; keeping the previous addresses of {target}"),
            }
        })?;
    }

    local.registry().register(&mut signals, SIGNALS, Interest::READABLE)?;
    if let Some(l) = listener.as_mut() {
        local.registry().register(l.source(), LISTENER, Interest::READABLE)?;
    }

    let mut pending = true; // try accept() once at start: clients may already be queued
    let mut draining = false;
    let mut at_cap = false;
    let mut last_cap_warning: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    loop {
        local.turn_until(retry_at)?;
        for token in local.take_foreign() {
            match token {
                LISTENER => pending = true,
                SIGNALS => {
                    for sig in signals.pending() {
                        if sig == SIGINT {
                            tracing::info!("SIGINT: exiting now");
                            return Ok(Exit::Interrupted);
                        }
                        if sig == SIGTERM && !draining {
                            tracing::info!(
                                "SIGTERM: no longer accepting; exiting when the {} open connection(s) end",
                                shared.active.load(Ordering::Acquire)
                            );
                            draining = true;
                        }
                    }
                }
                _ => {}
            }
        }
        if retry_at.is_some_and(|t| Instant::now() >= t) {
            retry_at = None;
            pending = true;
        }
        while pending && !draining && retry_at.is_none() {
            let mut active = shared.active.load(Ordering::SeqCst);
            if cfg.max_conns.is_some_and(|cap| active >= cap) {
                // Ask the workers to wake us on a close, then look again (a close between the
                // load above and the flag would otherwise go unnoticed).
                shared.set_acceptor_waiting(true);
                active = shared.active.load(Ordering::SeqCst);
            }
            if cfg.max_conns.is_some_and(|cap| active >= cap) {
                if !at_cap && last_cap_warning.is_none_or(|t| t.elapsed() >= CAP_WARN_INTERVAL) {
                    tracing::warn!(
                        "Maximum number of connections ({}) reached; new clients wait until one closes (-n)",
                        cfg.max_conns.unwrap_or(0)
                    );
                    last_cap_warning = Some(Instant::now());
                }
                at_cap = true;
                break;
            }
            at_cap = false;
            shared.set_acceptor_waiting(false);
            let Some(l) = listener.as_ref() else { break };
            match l.accept() {
                Ok(stream) => {
                    shared.active.fetch_add(1, Ordering::AcqRel);
                    // The least loaded worker, if ours has HANDOFF_SLACK more than it.
                    let mine = local_load.load(Ordering::Acquire);
                    let other = workers
                        .iter()
                        .map(|w| (w.2.load(Ordering::Acquire), w))
                        .min_by_key(|(load, _)| *load)
                        .filter(|(load, _)| load + HANDOFF_SLACK <= mine);
                    // Never block here: this thread serves connections too. A worker whose
                    // queue is full (it is stuck) leaves the socket to us.
                    let stream = match other {
                        Some((_, (tx, w, load))) => {
                            load.fetch_add(1, Ordering::AcqRel);
                            match tx.try_send(stream) {
                                Ok(()) => {
                                    w.wake()?;
                                    None
                                }
                                Err(TrySendError::Full(s)) => {
                                    load.fetch_sub(1, Ordering::AcqRel);
                                    Some(s)
                                }
                                Err(TrySendError::Disconnected(_)) => {
                                    return Err(io::Error::other("a worker thread exited"));
                                }
                            }
                        }
                        None => Some(stream),
                    };
                    if let Some(stream) = stream {
                        local_load.fetch_add(1, Ordering::AcqRel);
                        local.adopt(stream);
                    }
                    if cfg.once {
                        draining = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => pending = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if accept_error_is_resource(&e) => {
                    tracing::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                    retry_at = Some(Instant::now() + ACCEPT_RETRY);
                }
                // The client gave up between SYN and accept (ECONNABORTED, ...): next one.
                Err(e) => tracing::debug!("accept: {e}"),
            }
        }
        if draining {
            shared.set_acceptor_waiting(true);
            if let Some(mut l) = listener.take() {
                let _ = local.registry().deregister(l.source());
                drop(l); // close: new clients are refused now
            }
            if shared.active.load(Ordering::SeqCst) == 0 {
                return Ok(Exit::Drained);
            }
        }
    }
}
