//! One event-loop thread: owns its connections, their sockets, timers and buffers.
//!
//! Contract: a worker never blocks except in `poll`. New sockets arrive over a bounded channel
//! and a [`Waker`], or (in the acceptor's own worker) straight through [`Worker::adopt`]; the
//! acceptor registers its listener and signals in that worker's `Poll` under tokens from
//! [`RESERVED_TOKENS`] up, which [`Worker::turn_until`] leaves to it. Each connection is driven only by events on its own sockets, its `-o`
//! deadline, or (when it used up its budget) a re-queue after the other ready connections, so
//! one fast stream cannot starve the rest. Nothing is allocated per record: the two scratch
//! buffers are the worker's, and per-connection buffers come from its pool.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;
use mio::{Events, Poll, Registry, Token, Waker};

use super::buf::BufPool;
use super::conn::{Conn, Cx, Status, Which};
use super::error::ConnError;
use super::stream::Stream;
use super::Shared;
use crate::cli::Mode;
use crate::limits::IO_BUF;

const WAKER: Token = Token(usize::MAX);
/// Tokens from here up are not connections: [`WAKER`], and whatever the acceptor registers in
/// the worker it runs itself (listener, signals), handed back by [`Worker::take_foreign`].
/// Connection tokens are `2 * slot (+ 1)`, far below.
pub(crate) const RESERVED_TOKENS: usize = usize::MAX - 15;
/// Events fetched per `poll` call.
const EVENTS: usize = 256;

/// A single-threaded event loop over many connections.
pub struct Worker {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    mode: Mode,
    shared: Arc<Shared>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    timers: BTreeSet<(Instant, usize)>,
    requeue: Vec<usize>,
    touched: Vec<usize>,
    pool: BufPool,
    plain: Box<[u8]>,
    cipher: Box<[u8]>,
    rng: ring::rand::SystemRandom,
    intake: Option<Receiver<Stream>>,
    last_outcome: Option<Result<(), ConnError>>,
    /// Connections handed to this worker and not yet closed, if an acceptor balances load
    /// with it (it increments, we decrement when one closes).
    load: Option<Arc<AtomicUsize>>,
    /// The acceptor runs this worker on its own thread: it re-checks the `-n` cap and the drain
    /// after every turn, so a closed connection needs no wake-up.
    hosts_acceptor: bool,
    /// Events on reserved tokens from the last turn, for the acceptor.
    foreign: Vec<Token>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("mode", &self.mode).field("live", &self.live).finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker for `mode` connections; `intake` delivers accepted sockets.
    pub fn new(mode: Mode, shared: Arc<Shared>, intake: Option<Receiver<Stream>>) -> io::Result<Worker> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Worker {
            poll,
            events: Events::with_capacity(EVENTS),
            waker,
            mode,
            shared,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            timers: BTreeSet::new(),
            requeue: Vec::new(),
            touched: Vec::with_capacity(EVENTS),
            pool: BufPool::new(),
            plain: vec![0u8; IO_BUF].into_boxed_slice(),
            cipher: vec![0u8; IO_BUF].into_boxed_slice(),
            rng: ring::rand::SystemRandom::new(),
            intake,
            last_outcome: None,
            load: None,
            hosts_acceptor: false,
            foreign: Vec::new(),
        })
    }

    /// Wakes this worker from another thread (after sending it a socket).
    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The counter an acceptor uses to balance connections across workers: it adds one per
    /// socket it hands over, the worker subtracts one per connection that ends.
    pub fn share_load(&mut self) -> Arc<AtomicUsize> {
        self.load.get_or_insert_with(|| Arc::new(AtomicUsize::new(0))).clone()
    }

    /// Marks this worker as run by the acceptor on its own thread (see [`Worker::turn_until`]):
    /// closing a connection then does not wake the acceptor, which looks after every turn.
    pub fn host_acceptor(&mut self) {
        self.hosts_acceptor = true;
    }

    /// The registry of this worker's `Poll`, for the acceptor's own sources (tokens at or
    /// above [`RESERVED_TOKENS`], except `usize::MAX`).
    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    /// Events on the acceptor's tokens seen in the last turn.
    pub fn take_foreign(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.foreign)
    }

    /// Connections currently open.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Data buffers held by all connections (memory accounting in tests).
    pub fn buffered_blocks(&self) -> usize {
        self.conns.iter().flatten().map(Conn::buffered_blocks).sum()
    }

    /// Takes an accepted socket (counted in `shared.active` by the caller) and starts it.
    pub fn adopt(&mut self, stream: Stream) {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let id = self.shared.next_id();
        let now = Instant::now();
        let mut cx = Cx {
            registry: self.poll.registry(),
            shared: &self.shared,
            pool: &mut self.pool,
            plain: &mut self.plain,
            cipher: &mut self.cipher,
            rng: &self.rng,
            now,
        };
        match Conn::new(id, self.mode, stream, Token(idx * 2), Token(idx * 2 + 1), &mut cx) {
            Ok(c) => {
                tracing::debug!(conn = id, "connection accepted");
                if let Some(d) = c.deadline {
                    self.timers.insert((d, idx));
                }
                self.conns[idx] = Some(c);
                self.live += 1;
                self.drive(idx, now);
            }
            Err(e) => {
                self.free.push(idx);
                self.report(id, Err(e));
            }
        }
    }

    fn report(&mut self, id: u64, outcome: Result<(), ConnError>) {
        match &outcome {
            Ok(()) => tracing::debug!(conn = id, "connection closed"),
            Err(e) => tracing::warn!(conn = id, "connection failed: {e}"),
        }
        // SeqCst: pairs with the acceptor's flag store (see `Shared::set_acceptor_waiting`).
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
        if let Some(load) = &self.load {
            load.fetch_sub(1, Ordering::AcqRel);
        }
        if !self.hosts_acceptor {
            self.shared.notify_acceptor();
        }
        self.last_outcome = Some(outcome);
    }

    fn finish(&mut self, idx: usize, outcome: Result<(), ConnError>) {
        let Some(mut c) = self.conns[idx].take() else { return };
        if let Some(d) = c.deadline {
            self.timers.remove(&(d, idx));
        }
        c.release(&mut self.pool);
        if outcome.is_err() {
            c.abort();
        }
        let id = c.id;
        drop(c); // closes both sockets (and removes them from epoll)
        self.free.push(idx);
        self.live -= 1;
        self.report(id, outcome);
    }

    fn drive(&mut self, idx: usize, now: Instant) {
        let Some(conn) = self.conns[idx].as_mut() else { return };
        let before = conn.deadline;
        let mut cx = Cx {
            registry: self.poll.registry(),
            shared: &self.shared,
            pool: &mut self.pool,
            plain: &mut self.plain,
            cipher: &mut self.cipher,
            rng: &self.rng,
            now,
        };
        let r = conn.drive(&mut cx);
        let after = conn.deadline;
        match r {
            Ok(Status::Done) => self.finish(idx, Ok(())),
            Err(e) => self.finish(idx, Err(e)),
            Ok(s) => {
                if before != after {
                    if let Some(d) = before {
                        self.timers.remove(&(d, idx));
                    }
                    if let Some(d) = after {
                        self.timers.insert((d, idx));
                    }
                }
                if s == Status::More {
                    self.requeue.push(idx);
                }
            }
        }
    }

    fn which(&self, token: Token) -> Which {
        let accepted = token.0 % 2 == 0;
        match (self.mode, accepted) {
            (Mode::Encrypt, true) | (Mode::Decrypt, false) => Which::Plain,
            _ => Which::Cipher,
        }
    }

    /// One round: wait for events (or the next deadline), then serve them.
    pub fn turn(&mut self) -> io::Result<()> {
        self.turn_until(None)
    }

    /// One round that also returns by `wake_at` (the acceptor's accept retry). Events on
    /// reserved tokens are collected for [`Worker::take_foreign`].
    pub fn turn_until(&mut self, wake_at: Option<Instant>) -> io::Result<()> {
        let now = Instant::now();
        let next = self.timers.first().map(|&(d, _)| d).into_iter().chain(wake_at).min();
        let timeout = if !self.requeue.is_empty() {
            Some(Duration::ZERO)
        } else {
            next.map(|d| d.saturating_duration_since(now))
        };
        self.foreign.clear();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut woken = false;
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        for ev in self.events.iter() {
            let t = ev.token();
            if t == WAKER {
                woken = true;
                continue;
            }
            if t.0 >= RESERVED_TOKENS {
                self.foreign.push(t);
                continue;
            }
            let idx = t.0 / 2;
            let which = self.which(t);
            if let Some(Some(c)) = self.conns.get_mut(idx) {
                c.on_event(which, ev);
                touched.push(idx);
            }
        }
        touched.dedup();
        for &idx in &touched {
            self.drive(idx, now);
        }
        self.touched = touched;
        // Deadlines that passed.
        while let Some(&(d, idx)) = self.timers.first() {
            if d > now {
                break;
            }
            self.timers.pop_first();
            let timeout = self.shared.settings.timeout;
            let err = self.conns[idx].as_ref().and_then(|c| c.timeout_error(timeout));
            if let Some(c) = self.conns[idx].as_mut() {
                c.deadline = None;
            }
            if let Some(e) = err {
                self.finish(idx, Err(e));
            }
        }
        let again = std::mem::take(&mut self.requeue);
        for idx in again {
            self.drive(idx, now);
        }
        if woken {
            while let Some(rx) = self.intake.as_ref() {
                match rx.try_recv() {
                    Ok(s) => self.adopt(s),
                    Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// Serves connections forever (daemon workers).
    pub fn run(mut self) -> io::Result<()> {
        loop {
            self.turn()?;
        }
    }

    /// Serves until no connection is left and returns the outcome of the last one (`spipe`).
    pub fn run_until_idle(&mut self) -> io::Result<Option<Result<(), ConnError>>> {
        while self.live > 0 {
            self.turn()?;
        }
        Ok(self.last_outcome.take())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::time::Duration;

    use crossbeam::channel::bounded;

    use super::*;
    use crate::addr::Address;
    use crate::cli::ConnSettings;
    use crate::key::PreSharedKey;
    use crate::proto::{Pfs, ProtocolKind};

    /// A worker thread of `mode` towards `target`, fed by a std listener on a free port.
    /// Returns the port clients connect to.
    fn spawn_daemon(mode: Mode, target: std::net::SocketAddr, timeout: Duration) -> u16 {
        let settings = ConnSettings {
            protocol: ProtocolKind::Native,
            pfs: Pfs::Preferred,
            keepalive: true,
            timeout,
            bind: None,
            keyfile: "/dev/null".into(),
            target: Address::Ip(target),
        };
        let mut shared = Shared::new(settings, PreSharedKey::from_file_bytes(b""), vec![crate::addr::Target::Inet(target)], None);
        shared.start_handshake = crate::io::testproto::start;
        let shared = Arc::new(shared);
        let (tx, rx) = bounded(16);
        let w = Worker::new(mode, shared.clone(), Some(rx)).unwrap();
        let waker = w.waker();
        std::thread::spawn(move || w.run());
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let s = s.unwrap();
                s.set_nonblocking(true).unwrap();
                shared.active.fetch_add(1, Ordering::AcqRel);
                tx.send(Stream::Tcp(mio::net::TcpStream::from_std(s))).unwrap();
                waker.wake().unwrap();
            }
        });
        port
    }

    fn echo_server() -> std::net::SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    let mut r = s.try_clone().unwrap();
                    std::io::copy(&mut r, &mut s).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                });
            }
        });
        a
    }

    fn pattern(n: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    /// Bytes cross an -e worker and a -d worker to an echo server and back intact, with
    /// backpressure (the client writes 8 MiB before reading anything), and the half-close is
    /// carried end to end: the client's FIN reaches the echo server, whose FIN comes back.
    #[test]
    fn echo_through_encrypt_and_decrypt_workers() {
        let echo = echo_server();
        let d = spawn_daemon(Mode::Decrypt, echo, Duration::from_secs(5));
        let e = spawn_daemon(Mode::Encrypt, format!("127.0.0.1:{d}").parse().unwrap(), Duration::from_secs(5));
        let data = pattern(8 << 20);
        let mut c = TcpStream::connect(("127.0.0.1", e)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = c.try_clone().unwrap();
        let send = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&send).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echoed bytes differ");
    }

    /// Only a daemon that does the native key exchange gets a key pool (`-f` and `spipe`
    /// configurations have none).
    #[test]
    fn key_pool_only_where_it_is_used() {
        let target: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
        let settings = |pfs, protocol| ConnSettings {
            protocol,
            pfs,
            keepalive: true,
            timeout: Duration::from_secs(5),
            bind: None,
            keyfile: "/dev/null".into(),
            target: Address::Ip(target),
        };
        let targets = || vec![crate::addr::Target::Inet(target)];
        let key = || PreSharedKey::from_file_bytes(b"");
        let pool = |pfs, protocol| Shared::new(settings(pfs, protocol), key(), targets(), None).with_key_pool().keys;
        assert!(pool(Pfs::Disabled, ProtocolKind::Native).is_none());
        assert!(pool(Pfs::Preferred, ProtocolKind::Spiped1).is_none());
        assert!(pool(Pfs::Preferred, ProtocolKind::Native).is_some());
        assert!(pool(Pfs::Required, ProtocolKind::Native).is_some());
        assert!(Shared::new(settings(Pfs::Preferred, ProtocolKind::Native), key(), targets(), None).keys.is_none());
    }

    /// A -d worker drops a peer that never completes the handshake after the -o timeout.
    #[test]
    fn silent_peer_is_dropped_at_handshake_timeout() {
        let echo = echo_server();
        let d = spawn_daemon(Mode::Decrypt, echo, Duration::from_millis(300));
        let mut c = TcpStream::connect(("127.0.0.1", d)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = Instant::now();
        let mut b = [0u8; 1];
        let r = c.read(&mut b);
        let waited = t0.elapsed();
        assert!(matches!(r, Ok(0)) || r.is_err(), "connection should be closed, got {r:?}");
        assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(4), "{waited:?}");
    }

    /// -d connects to its target only after the peer completed the handshake: a peer with the
    /// wrong handshake bytes never causes a connection to the target (spiped issue #429).
    #[test]
    fn decrypt_connects_to_target_only_after_authentication() {
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        target.set_nonblocking(true).unwrap();
        let d = spawn_daemon(Mode::Decrypt, target.local_addr().unwrap(), Duration::from_secs(2));
        let mut c = TcpStream::connect(("127.0.0.1", d)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"XX").unwrap();
        let mut b = [0u8; 8];
        let r = c.read(&mut b);
        assert!(matches!(r, Ok(0)) || r.is_err(), "bad handshake must be dropped, got {r:?}");
        std::thread::sleep(Duration::from_millis(100));
        assert!(target.accept().is_err(), "target saw a connection from an unauthenticated peer");
        // And an authenticated peer does reach it.
        let mut ok = TcpStream::connect(("127.0.0.1", d)).unwrap();
        ok.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ok.write_all(b"HI").unwrap();
        let mut hs = [0u8; 2];
        ok.read_exact(&mut hs).unwrap();
        assert_eq!(&hs, b"OK");
        let deadline = Instant::now() + Duration::from_secs(5);
        while target.accept().is_err() {
            assert!(Instant::now() < deadline, "target never connected");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A FIN without a close record is a truncation: the -d worker resets the plaintext
    /// connection instead of passing the cut stream off as complete.
    #[test]
    fn truncation_resets_plaintext_side() {
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let d = spawn_daemon(Mode::Decrypt, target.local_addr().unwrap(), Duration::from_secs(2));
        let mut c = TcpStream::connect(("127.0.0.1", d)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"HI").unwrap();
        let mut hs = [0u8; 2];
        c.read_exact(&mut hs).unwrap();
        c.write_all(&[0, 3, b'a', b'b', b'c']).unwrap();
        let (mut t, _) = target.accept().unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = [0u8; 3];
        t.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"abc");
        c.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let r = t.read_to_end(&mut rest);
        assert!(rest.is_empty());
        assert_eq!(r.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset));
    }
}
