//! Sans-IO protocol cores.
//!
//! Contract: a protocol core never touches a socket, a clock or a thread. The I/O layer feeds it
//! the bytes it read from the encrypted socket and writes out the bytes it is handed; timeouts are
//! the I/O layer's business. Randomness is passed in (`&dyn SecureRandom`) so tests are
//! deterministic.
//!
//! Two implementations sit behind the same two traits:
//! - [`native`]: our protocol (X25519 + HKDF-SHA256 + AES-256-GCM/ChaCha20-Poly1305 records of up
//!   to 16 KiB, authenticated close), the default;
//! - [`spiped1`]: byte-for-byte spiped 1.x (`--protocol spiped1`), for mixed fleets.
//!
//! A connection starts as a [`Handshake`]; once [`Handshake::is_done`] it becomes a
//! [`Transport`] through [`Handshake::into_transport`], which is the only way to obtain one: no
//! plaintext can be sealed or opened before the peer has proven the key.

use std::fmt;
use std::sync::Arc;

use ring::rand::SecureRandom;

use crate::key::PreSharedKey;

pub mod native;
pub mod spiped1;

/// Which end of the encrypted connection this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opens the encrypted connection: `spiped -e` towards its target, and `spipe`.
    Initiator,
    /// Accepts the encrypted connection: `spiped -d` on its source socket.
    Responder,
}

/// Forward-secrecy policy (`-f` / `-g`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pfs {
    /// Do the ephemeral key exchange; accept a peer that skips it (spiped's default).
    Preferred,
    /// `-f`: skip the ephemeral key exchange (no forward secrecy, cheaper handshake).
    Disabled,
    /// `-g`: refuse a peer that skips the ephemeral key exchange.
    Required,
}

/// Which wire protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProtocolKind {
    /// Our protocol (docs/PROTOCOL.md part 1). The default.
    #[default]
    Native,
    /// spiped 1.x, byte for byte (docs/PROTOCOL.md part 2).
    Spiped1,
}

/// Everything a handshake needs to start.
#[derive(Clone)]
pub struct SessionConfig {
    pub role: Role,
    pub pfs: Pfs,
    pub key: Arc<PreSharedKey>,
    /// X25519 key pairs computed ahead of need ([`native::KeyPool`]); `None` computes each one
    /// when the handshake needs it. The native protocol only. A responder with a ready pair
    /// sends its public key in Hello_R instead of KeyShare_R (docs/PROTOCOL.md).
    pub keys: Option<Arc<native::KeyPool>>,
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("role", &self.role)
            .field("pfs", &self.pfs)
            .finish_non_exhaustive()
    }
}

/// Result of trying to open one record from the front of the received bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Not a whole record yet: at least `need` bytes (counted from the front of `input`) are
    /// required before `open` can make progress.
    Incomplete { need: usize },
    /// One record authenticated and decrypted: `consumed` bytes of input used, `len` plaintext
    /// bytes written to the front of `out`.
    Data { consumed: usize, len: usize },
    /// The peer's authenticated end of stream for this direction (native protocol only).
    Close { consumed: usize },
}

/// The handshake half of a connection. Consumed by [`Handshake::into_transport`].
pub trait Handshake: Send {
    /// Appends the bytes that must be sent to the peer now (possibly none).
    fn write_to(&mut self, out: &mut Vec<u8>);
    /// Feeds bytes received from the peer. Returns how many were consumed; bytes past the end of
    /// the handshake are left unconsumed (they are the first records). An error ends the
    /// connection.
    fn read_from(&mut self, input: &[u8]) -> Result<usize, HandshakeError>;
    /// True once both sides are authenticated and traffic keys exist, and nothing of the
    /// handshake is left to send.
    fn is_done(&self) -> bool;
    /// Does work that does not depend on the peer's next message ahead of need (the native
    /// initiator's X25519 public key while Hello_R is in flight, and its agreement with a share
    /// that came in Hello_R while KeyShare_R is). The I/O layer calls it after sending what `write_to`
    /// gave it, when it is about to wait for the peer; skipping it only moves the work to
    /// when it is needed. Idempotent.
    fn precompute(&mut self) -> Result<(), HandshakeError> {
        Ok(())
    }
    /// The traffic phase. Errors with [`HandshakeError::NotFinished`] if called early. Call it
    /// after the last handshake bytes were sent: it may do the final key agreement (the native
    /// responder does), and fails if that does.
    fn into_transport(self: Box<Self>) -> Result<Box<dyn Transport>, HandshakeError>;
}

/// The traffic half of a connection: record sealing and opening with per-direction counters.
pub trait Transport: Send {
    /// Largest plaintext one `seal` call accepts.
    fn max_plaintext(&self) -> usize;
    /// Size on the wire of a record carrying `len` plaintext bytes (`len <= max_plaintext()`).
    fn sealed_len(&self, len: usize) -> usize;
    /// Largest record on the wire; a receive buffer of this size always makes progress.
    fn max_record_len(&self) -> usize;
    /// Seals `plain` (1 ..= `max_plaintext()` bytes) into the front of `out`, which must hold
    /// `sealed_len(plain.len())` bytes. Returns the number of bytes written.
    fn seal(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, RecordError>;
    /// Writes an authenticated end-of-stream record for this direction into `out` and returns
    /// its length, or `None` when the protocol ends a direction with a bare TCP FIN (spiped 1.x).
    fn seal_close(&mut self, out: &mut [u8]) -> Result<Option<usize>, RecordError>;
    /// Authenticates and decrypts one record from the front of `input` into `out`
    /// (`out.len() >= max_plaintext()`). A failed record ends the connection: nothing of it, or of
    /// anything after it, may be delivered.
    fn open(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, RecordError>;
    /// Called when the peer's TCP stream ended after `leftover` unprocessed bytes. `Ok` means a
    /// clean end of this direction; the native protocol returns `Err(Truncated)` unless a close
    /// record was seen and `leftover == 0`.
    fn peer_eof(&self, leftover: usize) -> Result<(), RecordError>;
}

/// Why a handshake failed. One variant per reason; the I/O layer logs it once per connection.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("peer speaks protocol version {0}, we speak {1} (is the other end using --protocol spiped1?)")]
    BadVersion(u8, u8),
    #[error("malformed handshake message: {0}")]
    Malformed(&'static str),
    #[error("key confirmation failed: the peer does not hold the same key (bad key)")]
    AuthFailed,
    #[error("peer's key share is invalid: {0}")]
    BadKeyShare(&'static str),
    #[error("peer did not do the forward-secret key exchange and -g requires it")]
    PfsRequired,
    #[error("handshake message too large ({0} bytes)")]
    TooLarge(usize),
    #[error("handshake is not finished")]
    NotFinished,
    #[error("random number generator failed")]
    Rng,
    #[error("peer is not speaking the native protocol (bad magic); if it is a spiped 1.x peer, use --protocol spiped1 on this end")]
    BadMagic,
    #[error("unexpected handshake message type {0:#04x} (peer out of step or not a native peer)")]
    UnexpectedMessage(u8),
    #[error("peer claims the same role as us: both ends run -e (or both -d), or our own messages were reflected back")]
    SameRole,
    #[error("peer offers no cipher suite we implement (peer too new?)")]
    NoCommonSuite,
    #[error("peer chose cipher suite {0:#04x}, which we did not offer")]
    SuiteNotOffered(u8),
}

/// Why a record could not be sealed or opened. Every variant ends the connection.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RecordError {
    #[error("record failed authentication (modified, replayed, reordered or dropped data)")]
    BadRecordMac,
    #[error("record of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("record of zero length")]
    Empty,
    #[error("unknown record type {0}")]
    UnknownType(u8),
    #[error("data after the peer's close record")]
    AfterClose,
    #[error("connection truncated: the stream ended without an authenticated close")]
    Truncated,
    #[error("record counter exhausted; refusing to reuse a nonce")]
    CounterExhausted,
    #[error("output buffer too small ({0} bytes)")]
    BufferTooSmall(usize),
    #[error("close record carries {0} bytes of payload (must be empty)")]
    CloseWithPayload(usize),
    #[error("cannot seal after our own close record (API misuse)")]
    SealAfterClose,
}

/// Starts a handshake for `kind` in `cfg.role`.
pub fn start(
    kind: ProtocolKind,
    cfg: &SessionConfig,
    rng: &dyn SecureRandom,
) -> Result<Box<dyn Handshake>, HandshakeError> {
    match kind {
        ProtocolKind::Native => native::start(cfg, rng),
        ProtocolKind::Spiped1 => spiped1::start(cfg, rng),
    }
}
