//! One connection pair: its life cycle and the two byte pumps.
//!
//! Life cycle (the order is the security property of `-d`):
//! - `-e` / `spipe` (initiator): plaintext socket accepted → connect to the target (every
//!   resolved address in turn, `-o` for all of them) → handshake (`-o`) → data.
//! - `-d` (responder): encrypted socket accepted → handshake (`-o`) → only once the peer proved
//!   the key and our last handshake message left, connect to the target (`-o`) → data. A peer
//!   without the key never causes a connection to the target (spiped connects first:
//!   Tarsnap/spiped#429). The target's SYN leaves before the responder's X25519 agreement
//!   (`Handshake::into_transport`), so the two overlap.
//!
//! Data: the encrypting pump reads up to one [`IO_CHUNK`]-sized round of plaintext, seals it into
//! records of up to `max_plaintext()` bytes in the worker's scratch buffer and writes them with
//! one write; the decrypting pump reads ciphertext into a per-connection buffer, opens every
//! whole record into scratch and writes the plaintext with one write. Whatever a socket does not
//! take waits in a [`Buf`] of fixed size, and the pump stops reading its source until it drains.
//!
//! End of stream: plaintext EOF → the protocol's close record (if it has one) → shutdown(Write)
//! of the encrypted socket. A close record (or, for spiped1, a FIN) from the peer →
//! shutdown(Write) of the plaintext socket. A FIN the protocol calls a truncation ends the
//! connection with an error. The pair is closed when both directions ended, or at once on any
//! error.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};

use super::buf::{Buf, BufPool};
use super::error::ConnError;
use super::stream::{self, Stream};
use mio::event::Source;
use super::Shared;
use crate::addr::Target;
use crate::cli::Mode;
use crate::limits::{HANDSHAKE_BUF, IO_BUF, PUMP_BUDGET};
use crate::proto::{Handshake, Opened, RecordError, Transport};

/// Worker-owned context a connection needs while it runs.
pub(crate) struct Cx<'a> {
    pub registry: &'a Registry,
    pub shared: &'a Shared,
    pub pool: &'a mut BufPool,
    /// Plaintext scratch, [`IO_BUF`] bytes.
    pub plain: &'a mut [u8],
    /// Ciphertext scratch, [`IO_BUF`] bytes.
    pub cipher: &'a mut [u8],
    pub rng: &'a dyn ring::rand::SecureRandom,
    pub now: Instant,
}

/// What the worker should do with a connection after driving it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for events or a deadline.
    Idle,
    /// Stopped only because its budget ran out: drive it again after other connections.
    More,
    /// Both directions ended cleanly: close it.
    Done,
}

/// One socket and the readiness we have seen for it (edge-triggered: a flag stays set until an
/// operation returns `WouldBlock`).
#[derive(Debug)]
struct Side {
    stream: Stream,
    readable: bool,
    writable: bool,
    /// The peer's FIN/RST was reported: keep reading until 0/error even after short reads.
    read_closed: bool,
}

impl Side {
    fn new(stream: Stream) -> Side {
        Side { stream, readable: false, writable: false, read_closed: false }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Handshaking,
    Established,
}

/// Which socket is which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Plain,
    Cipher,
}

/// A connection pair.
pub(crate) struct Conn {
    pub id: u64,
    mode: Mode,
    phase: Phase,
    plain: Option<Side>,
    cipher: Option<Side>,
    plain_token: Token,
    cipher_token: Token,
    /// Current `-o` deadline (connect or handshake), if any.
    pub deadline: Option<Instant>,
    targets: Arc<[Target]>,
    next_target: usize,
    last_error: Option<(String, io::Error)>,
    hs: Option<Box<dyn Handshake>>,
    hs_out: Vec<u8>,
    hs_out_pos: usize,
    tx: Option<Box<dyn Transport>>,
    /// Plaintext bytes read per encrypting round (depends on the record size).
    chunk: usize,
    // Encrypting direction: plaintext socket → encrypted socket.
    enc_out: Buf,
    enc_src_eof: bool,
    enc_close_queued: bool,
    enc_done: bool,
    // Decrypting direction: encrypted socket → plaintext socket.
    dec_in: Buf,
    dec_out: Buf,
    dec_close_seen: bool,
    dec_src_eof: bool,
    dec_plain_shut: bool,
    dec_done: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.id).field("phase", &self.phase).finish_non_exhaustive()
    }
}

fn is_would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn is_interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

impl Conn {
    /// Adopts an accepted socket (`-e`: plaintext; `-d`: encrypted) registered under `accepted`;
    /// the outgoing socket will use `outgoing`.
    pub fn new(
        id: u64,
        mode: Mode,
        accepted: Stream,
        accepted_token: Token,
        outgoing_token: Token,
        cx: &mut Cx<'_>,
    ) -> Result<Conn, ConnError> {
        let mut accepted = accepted;
        accepted
            .register(cx.registry, accepted_token, Interest::READABLE | Interest::WRITABLE)
            .map_err(ConnError::Poll)?;
        // Options on the accepted side now; failure (the client already left) is harmless.
        let _ = accepted.set_options(cx.shared.settings.keepalive);
        let side = Some(Side::new(accepted));
        let (plain, cipher, plain_token, cipher_token) = match mode {
            Mode::Encrypt => (side, None, accepted_token, outgoing_token),
            Mode::Decrypt => (None, side, outgoing_token, accepted_token),
        };
        let mut c = Conn {
            id,
            mode,
            phase: Phase::Connecting,
            plain,
            cipher,
            plain_token,
            cipher_token,
            deadline: None,
            targets: cx.shared.targets(),
            next_target: 0,
            last_error: None,
            hs: None,
            hs_out: Vec::new(),
            hs_out_pos: 0,
            tx: None,
            chunk: 0,
            enc_out: Buf::new(),
            enc_src_eof: false,
            enc_close_queued: false,
            enc_done: false,
            dec_in: Buf::new(),
            dec_out: Buf::new(),
            dec_close_seen: false,
            dec_src_eof: false,
            dec_plain_shut: false,
            dec_done: false,
        };
        match mode {
            Mode::Encrypt => c.start_connect(cx),
            Mode::Decrypt => c.start_handshake(cx)?,
        }
        Ok(c)
    }

    /// Records readiness reported by the event loop for one of our sockets.
    pub fn on_event(&mut self, which: Which, ev: &mio::event::Event) {
        let side = match which {
            Which::Plain => self.plain.as_mut(),
            Which::Cipher => self.cipher.as_mut(),
        };
        if let Some(s) = side {
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                s.readable = true;
            }
            if ev.is_read_closed() {
                s.read_closed = true;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                s.writable = true;
            }
        }
    }

    /// The deadline passed: the connect or handshake phase took longer than `-o`.
    pub fn timeout_error(&self, timeout: Duration) -> Option<ConnError> {
        match self.phase {
            Phase::Connecting => Some(ConnError::ConnectTimeout {
                target: self.targets.get(self.next_target).map_or_else(String::new, |t| t.to_string()),
                timeout,
            }),
            Phase::Handshaking => Some(ConnError::HandshakeTimeout(timeout)),
            Phase::Established => None,
        }
    }

    /// Called before dropping a failed connection: TCP sockets are closed with a reset
    /// (SO_LINGER 0), so the application on the plaintext side sees an error, not a clean end
    /// of stream that would pass a truncated transfer off as complete.
    pub fn abort(&mut self) {
        if let Some(p) = &self.plain {
            p.stream.reset_on_close();
        }
        // The encrypted side is reset only once data flowed; a failed handshake just closes,
        // so the peer reports the handshake failure rather than a reset.
        if let (Some(c), Phase::Established) = (&self.cipher, self.phase) {
            c.stream.reset_on_close();
        }
    }

    /// Gives this connection's buffers back to the pool (before it is dropped).
    pub fn release(&mut self, pool: &mut BufPool) {
        self.enc_out.release(pool);
        self.dec_in.release(pool);
        self.dec_out.release(pool);
    }

    /// Bytes of data buffers this connection holds right now (for tests and statistics).
    pub fn buffered_blocks(&self) -> usize {
        [&self.enc_out, &self.dec_in, &self.dec_out].iter().filter(|b| b.is_allocated()).count()
    }

    /// Runs the connection as far as readiness allows.
    pub fn drive(&mut self, cx: &mut Cx<'_>) -> Result<Status, ConnError> {
        loop {
            match self.phase {
                Phase::Connecting => {
                    if !self.poll_connect(cx)? {
                        return Ok(Status::Idle);
                    }
                    match self.mode {
                        Mode::Encrypt => self.start_handshake(cx)?,
                        Mode::Decrypt => self.establish()?,
                    }
                }
                Phase::Handshaking => {
                    if !self.pump_handshake(cx)? {
                        return Ok(Status::Idle);
                    }
                    match self.mode {
                        Mode::Encrypt => {
                            self.finish_handshake()?;
                            self.establish()?;
                        }
                        Mode::Decrypt => {
                            // The peer proved the key and our last handshake message left.
                            // Start the target connection before the key agreement that
                            // `into_transport` may do, so its SYN is in flight meanwhile.
                            self.start_connect(cx);
                            let connected = self.poll_connect(cx)?;
                            self.finish_handshake()?;
                            if connected {
                                self.establish()?;
                            }
                        }
                    }
                }
                Phase::Established => {
                    let more_enc = self.pump_enc(cx)?;
                    let more_dec = self.pump_dec(cx)?;
                    if self.enc_done && self.dec_done {
                        return Ok(Status::Done);
                    }
                    return Ok(if more_enc || more_dec { Status::More } else { Status::Idle });
                }
            }
        }
    }

    // ----- connecting -------------------------------------------------------------------

    fn start_connect(&mut self, cx: &mut Cx<'_>) {
        self.phase = Phase::Connecting;
        self.deadline = Some(cx.now + cx.shared.settings.timeout);
        self.next_target = 0;
    }

    fn outgoing_mut(&mut self) -> &mut Option<Side> {
        match self.mode {
            Mode::Encrypt => &mut self.cipher,
            Mode::Decrypt => &mut self.plain,
        }
    }

    /// Tries target addresses in turn. Returns true once connected.
    fn poll_connect(&mut self, cx: &mut Cx<'_>) -> Result<bool, ConnError> {
        let token = match self.mode {
            Mode::Encrypt => self.cipher_token,
            Mode::Decrypt => self.plain_token,
        };
        loop {
            if self.outgoing_mut().is_none() {
                let Some(t) = self.targets.get(self.next_target).cloned() else {
                    return Err(match self.last_error.take() {
                        Some((target, source)) => ConnError::Connect { target, source },
                        None => ConnError::NoTarget,
                    });
                };
                match stream::connect(&t, cx.shared.bind) {
                    Ok(mut s) => {
                        s.register(cx.registry, token, Interest::READABLE | Interest::WRITABLE)
                            .map_err(ConnError::Poll)?;
                        *self.outgoing_mut() = Some(Side::new(s));
                    }
                    Err(e) => {
                        self.last_error = Some((t.to_string(), e));
                        self.next_target += 1;
                        continue;
                    }
                }
            }
            let side = self.outgoing_mut().as_mut().expect("outgoing socket exists here");
            match side.stream.connect_result() {
                None => return Ok(false),
                Some(Ok(())) => {
                    let _ = side.stream.set_options(cx.shared.settings.keepalive);
                    return Ok(true);
                }
                Some(Err(e)) => {
                    let t = self.targets.get(self.next_target).map_or_else(String::new, |t| t.to_string());
                    self.last_error = Some((t, e));
                    // Dropping the socket closes it and removes it from epoll.
                    *self.outgoing_mut() = None;
                    self.next_target += 1;
                }
            }
        }
    }

    // ----- handshake --------------------------------------------------------------------

    fn start_handshake(&mut self, cx: &mut Cx<'_>) -> Result<(), ConnError> {
        let role = match self.mode {
            Mode::Encrypt => crate::proto::Role::Initiator,
            Mode::Decrypt => crate::proto::Role::Responder,
        };
        let cfg = crate::proto::SessionConfig {
            role,
            pfs: cx.shared.settings.pfs,
            key: cx.shared.key.clone(),
            keys: cx.shared.keys.clone(),
        };
        self.hs = Some((cx.shared.start_handshake)(cx.shared.settings.protocol, &cfg, cx.rng)?);
        self.phase = Phase::Handshaking;
        self.deadline = Some(cx.now + cx.shared.settings.timeout);
        Ok(())
    }

    /// The finished handshake's traffic phase (the responder's X25519 agreement runs here).
    fn finish_handshake(&mut self) -> Result<(), ConnError> {
        let hs = self.hs.take().expect("handshake exists until it is finished");
        self.tx = Some(hs.into_transport()?);
        Ok(())
    }

    /// Moves handshake bytes. Returns true once the handshake is complete and flushed; the
    /// caller then calls [`Conn::finish_handshake`].
    fn pump_handshake(&mut self, cx: &mut Cx<'_>) -> Result<bool, ConnError> {
        let side = self.cipher.as_mut().expect("encrypted socket exists while handshaking");
        let hs = self.hs.as_mut().expect("handshake exists while handshaking");
        loop {
            if self.hs_out_pos == self.hs_out.len() {
                self.hs_out.clear();
                self.hs_out_pos = 0;
                hs.write_to(&mut self.hs_out);
                if self.hs_out.len() > HANDSHAKE_BUF {
                    return Err(ConnError::HandshakeTooLarge);
                }
            }
            let mut blocked = false;
            while self.hs_out_pos < self.hs_out.len() {
                if !side.writable {
                    blocked = true;
                    break;
                }
                match side.stream.write(&self.hs_out[self.hs_out_pos..]) {
                    Ok(n) => self.hs_out_pos += n,
                    Err(e) if is_would_block(&e) => side.writable = false,
                    Err(e) if is_interrupted(&e) => {}
                    Err(e) => return Err(ConnError::HandshakeIo(e)),
                }
            }
            if !blocked && hs.is_done() {
                return Ok(true);
            }
            if !self.dec_in.is_empty() {
                let n = hs.read_from(self.dec_in.bytes())?;
                self.dec_in.consume(n, cx.pool);
                if n > 0 {
                    continue;
                }
            }
            if !side.readable {
                // About to wait for the peer: do what does not need its answer now.
                hs.precompute()?;
                return Ok(false);
            }
            let spare = self.dec_in.spare(IO_BUF, cx.pool);
            if spare.is_empty() {
                return Err(ConnError::Handshake(crate::proto::HandshakeError::TooLarge(IO_BUF)));
            }
            match side.stream.read(spare) {
                Ok(0) => return Err(ConnError::HandshakeEof),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(ConnError::HandshakeEof),
                Ok(n) => self.dec_in.commit(n),
                Err(e) if is_would_block(&e) => {
                    side.readable = false;
                    if self.dec_in.is_empty() {
                        self.dec_in.release(cx.pool);
                    }
                    if blocked {
                        return Ok(false);
                    }
                }
                Err(e) if is_interrupted(&e) => {}
                Err(e) => return Err(ConnError::HandshakeIo(e)),
            }
        }
    }

    // ----- data ---------------------------------------------------------------------------

    fn establish(&mut self) -> Result<(), ConnError> {
        let tx = self.tx.as_ref().expect("transport exists after the handshake");
        let rec = tx.max_record_len();
        if rec > IO_BUF || tx.max_plaintext() == 0 || tx.max_plaintext() > IO_BUF {
            return Err(ConnError::RecordTooBig(rec));
        }
        // Whole records per round that fit the ciphertext scratch, in plaintext bytes.
        self.chunk = ((IO_BUF / rec) * tx.max_plaintext()).min(IO_BUF);
        self.phase = Phase::Established;
        self.deadline = None;
        self.hs_out = Vec::new();
        Ok(())
    }

    /// Writes `bytes` to `side` as far as it takes them and keeps the rest in `out`.
    fn write_or_stash(
        side: &mut Side,
        bytes: &[u8],
        out: &mut Buf,
        pool: &mut BufPool,
        err: fn(io::Error) -> ConnError,
    ) -> Result<(), ConnError> {
        Self::write_or_stash_with(side, bytes, out, pool, err, Stream::write)
    }

    /// [`Self::write_or_stash`] with the write call chosen by the caller.
    fn write_or_stash_with(
        side: &mut Side,
        bytes: &[u8],
        out: &mut Buf,
        pool: &mut BufPool,
        err: fn(io::Error) -> ConnError,
        write: fn(&mut Stream, &[u8]) -> io::Result<usize>,
    ) -> Result<(), ConnError> {
        let mut pos = 0;
        while pos < bytes.len() && side.writable {
            match write(&mut side.stream, &bytes[pos..]) {
                Ok(n) => pos += n,
                Err(e) if is_would_block(&e) => side.writable = false,
                Err(e) if is_interrupted(&e) => {}
                Err(e) => return Err(err(e)),
            }
        }
        if !out.append(&bytes[pos..], pool) {
            // Rounds are sized to fit one block; reaching this is a sizing bug.
            return Err(ConnError::RecordTooBig(bytes.len() - pos));
        }
        Ok(())
    }

    /// Writes pending bytes of `out`. Returns true when `out` is empty.
    fn flush(side: &mut Side, out: &mut Buf, pool: &mut BufPool, err: fn(io::Error) -> ConnError) -> Result<bool, ConnError> {
        while !out.is_empty() {
            if !side.writable {
                return Ok(false);
            }
            match side.stream.write(out.bytes()) {
                Ok(n) => out.consume(n, pool),
                Err(e) if is_would_block(&e) => side.writable = false,
                Err(e) if is_interrupted(&e) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(true)
    }

    /// Plaintext → records. Returns true if stopped by the budget with work left.
    fn pump_enc(&mut self, cx: &mut Cx<'_>) -> Result<bool, ConnError> {
        let (Some(plain), Some(cipher), Some(tx)) = (self.plain.as_mut(), self.cipher.as_mut(), self.tx.as_mut()) else {
            return Ok(false);
        };
        for _ in 0..PUMP_BUDGET {
            if !Self::flush(cipher, &mut self.enc_out, cx.pool, ConnError::CipherIo)? || self.enc_done {
                return Ok(false);
            }
            if self.enc_src_eof {
                if !self.enc_close_queued {
                    self.enc_close_queued = true;
                    if let Some(n) = tx.seal_close(cx.cipher)? {
                        // The FIN follows at once (next loop round), in the same segment.
                        Self::write_or_stash_with(
                            cipher,
                            &cx.cipher[..n],
                            &mut self.enc_out,
                            cx.pool,
                            ConnError::CipherIo,
                            Stream::write_before_fin,
                        )?;
                        continue;
                    }
                }
                cipher.stream.shutdown_write().map_err(ConnError::CipherIo)?;
                self.enc_done = true;
                return Ok(false);
            }
            if !plain.readable {
                return Ok(false);
            }
            let n = match plain.stream.read(&mut cx.plain[..self.chunk]) {
                Ok(0) => {
                    self.enc_src_eof = true;
                    continue;
                }
                Ok(n) => n,
                Err(e) if is_would_block(&e) => {
                    plain.readable = false;
                    return Ok(false);
                }
                Err(e) if is_interrupted(&e) => continue,
                Err(e) => return Err(ConnError::PlainIo(e)),
            };
            // A short read drained the socket (new data raises a new edge), unless the peer's
            // FIN is pending: then read on to see the 0.
            if n < self.chunk && !plain.read_closed {
                plain.readable = false;
            }
            let max = tx.max_plaintext();
            let mut sealed = 0;
            for piece in cx.plain[..n].chunks(max) {
                sealed += tx.seal(piece, &mut cx.cipher[sealed..])?;
            }
            Self::write_or_stash(cipher, &cx.cipher[..sealed], &mut self.enc_out, cx.pool, ConnError::CipherIo)?;
        }
        Ok(true)
    }

    /// Records → plaintext. Returns true if stopped by the budget with work left.
    fn pump_dec(&mut self, cx: &mut Cx<'_>) -> Result<bool, ConnError> {
        let (Some(plain), Some(cipher), Some(tx)) = (self.plain.as_mut(), self.cipher.as_mut(), self.tx.as_mut()) else {
            return Ok(false);
        };
        let max = tx.max_plaintext();
        let rec = tx.max_record_len();
        for _ in 0..PUMP_BUDGET {
            if !Self::flush(plain, &mut self.dec_out, cx.pool, ConnError::PlainIo)? || self.dec_done {
                return Ok(false);
            }
            // Open every whole record that fits the plaintext scratch.
            let mut produced = 0;
            while cx.plain.len() - produced >= max && !self.dec_in.is_empty() {
                match tx.open(self.dec_in.bytes(), &mut cx.plain[produced..])? {
                    Opened::Incomplete { .. } => break,
                    Opened::Data { consumed, len } => {
                        self.dec_in.consume(consumed, cx.pool);
                        produced += len;
                    }
                    Opened::Close { consumed } => {
                        self.dec_in.consume(consumed, cx.pool);
                        self.dec_close_seen = true;
                    }
                }
            }
            if produced > 0 {
                Self::write_or_stash(plain, &cx.plain[..produced], &mut self.dec_out, cx.pool, ConnError::PlainIo)?;
                continue;
            }
            if self.dec_close_seen && !self.dec_plain_shut {
                plain.stream.shutdown_write().map_err(ConnError::PlainIo)?;
                self.dec_plain_shut = true;
            }
            if self.dec_src_eof {
                tx.peer_eof(self.dec_in.len())?;
                if !self.dec_plain_shut {
                    plain.stream.shutdown_write().map_err(ConnError::PlainIo)?;
                    self.dec_plain_shut = true;
                }
                self.dec_in.release(cx.pool);
                self.dec_done = true;
                return Ok(false);
            }
            if !cipher.readable {
                return Ok(false);
            }
            let spare = self.dec_in.spare(rec, cx.pool);
            if spare.is_empty() {
                // Every whole record was opened above, so a full buffer means a record larger
                // than the buffer: refused at establish(), so this is unreachable in practice.
                return Err(ConnError::Record(RecordError::TooLarge(self.dec_in.len())));
            }
            let want = spare.len();
            match cipher.stream.read(spare) {
                Ok(0) => self.dec_src_eof = true,
                Ok(n) => {
                    self.dec_in.commit(n);
                    if n < want && !cipher.read_closed {
                        cipher.readable = false;
                    }
                }
                Err(e) if is_would_block(&e) => {
                    cipher.readable = false;
                    if self.dec_in.is_empty() {
                        self.dec_in.release(cx.pool);
                    }
                    return Ok(false);
                }
                Err(e) if is_interrupted(&e) => {}
                Err(e) => return Err(ConnError::CipherIo(e)),
            }
        }
        Ok(true)
    }
}
