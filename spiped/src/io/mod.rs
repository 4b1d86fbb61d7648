//! The I/O layer: mio event loops that move bytes and timers between sockets and a protocol core.
//!
//! Shape: one acceptor loop ([`acceptor`]) owns the listening socket, the signals and the `-n`
//! cap; it runs the first of N [`worker::Worker`]s on its own thread and gives each accepted
//! socket to the least loaded worker (its own on a tie, so light traffic never crosses
//! threads; the others get theirs over a bounded channel). A worker owns its connections outright ([`conn`]): no locks on the
//! data path, fixed buffers, backpressure through TCP. `spipe` runs one worker on the current
//! thread with a single connection ([`spipe`]).
//!
//! The protocol core is reached only through [`crate::proto`]'s `Handshake`/`Transport` traits;
//! this layer never looks inside a record.

pub mod acceptor;
pub mod buf;
pub mod conn;
pub mod error;
pub mod spipe;
pub mod stream;
pub mod worker;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::addr::Target;
use crate::cli::ConnSettings;
use crate::key::PreSharedKey;
use crate::proto::native::KeyPool;
use crate::proto::{Handshake, HandshakeError, Pfs, ProtocolKind, SessionConfig};

pub use error::ConnError;

/// How a connection's handshake is started: [`crate::proto::start`] in production; unit tests
/// of the I/O layer substitute a trivial protocol.
pub type HandshakeFactory =
    fn(ProtocolKind, &SessionConfig, &dyn ring::rand::SecureRandom) -> Result<Box<dyn Handshake>, HandshakeError>;

/// State shared by the acceptor, the workers and the re-resolver.
pub struct Shared {
    /// Per-connection settings (protocol, PFS policy, keep-alive, timeout).
    pub settings: ConnSettings,
    /// `-b`, resolved once at start.
    pub bind: Option<SocketAddr>,
    /// K.
    pub key: Arc<PreSharedKey>,
    /// Starts handshakes.
    pub start_handshake: HandshakeFactory,
    /// Connections accepted and not yet closed (the `-n` count).
    pub active: AtomicUsize,
    /// X25519 key pairs computed ahead of need by the acceptor's filler thread
    /// ([`Shared::with_key_pool`]).
    pub keys: Option<Arc<KeyPool>>,
    targets: Mutex<Arc<[Target]>>,
    next_id: AtomicU64,
    acceptor: OnceLock<Arc<mio::Waker>>,
    acceptor_waiting: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .field("active", &self.active.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shared state for a daemon or a client.
    pub fn new(settings: ConnSettings, key: PreSharedKey, targets: Vec<Target>, bind: Option<SocketAddr>) -> Shared {
        Shared {
            settings,
            bind,
            key: Arc::new(key),
            start_handshake: crate::proto::start,
            active: AtomicUsize::new(0),
            keys: None,
            targets: Mutex::new(targets.into()),
            next_id: AtomicU64::new(1),
            acceptor: OnceLock::new(),
            acceptor_waiting: AtomicBool::new(false),
        }
    }

    /// Gives the handshakes a pool of X25519 key pairs (filled by a thread that
    /// `acceptor::serve` starts), if this configuration does the native protocol's key
    /// exchange (a daemon; `spipe` makes one connection and has no idle time to use).
    pub fn with_key_pool(mut self) -> Shared {
        if self.settings.protocol == ProtocolKind::Native && self.settings.pfs != Pfs::Disabled {
            self.keys = Some(Arc::new(KeyPool::new()));
        }
        self
    }

    /// The target addresses new connections use (a snapshot; the re-resolver swaps it).
    pub fn targets(&self) -> Arc<[Target]> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the target addresses (re-resolution). Connections in progress keep theirs.
    pub fn set_targets(&self, t: Vec<Target>) {
        *self.targets.lock().unwrap_or_else(|p| p.into_inner()) = t.into();
    }

    /// A fresh connection id for logs.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn set_acceptor_waker(&self, w: Arc<mio::Waker>) {
        let _ = self.acceptor.set(w);
    }

    /// The acceptor says whether it waits for connections to end (at the `-n` cap, or
    /// draining after SIGTERM). Only then do closes on other workers wake it.
    ///
    /// Ordering: the acceptor sets the flag and then re-reads `active`; a worker decrements
    /// `active` and then reads the flag. Both with `SeqCst`, so at least one of them sees the
    /// other's write and no wake-up is lost.
    pub(crate) fn set_acceptor_waiting(&self, waiting: bool) {
        self.acceptor_waiting.store(waiting, Ordering::SeqCst);
    }

    /// Tells the acceptor a connection ended, if it is waiting for that (see
    /// [`Shared::set_acceptor_waiting`]). Call after decrementing `active`.
    pub(crate) fn notify_acceptor(&self) {
        if !self.acceptor_waiting.load(Ordering::SeqCst) {
            return;
        }
        if let Some(w) = self.acceptor.get() {
            let _ = w.wake();
        }
    }
}

#[cfg(test)]
pub(crate) mod testproto;
