//! Why a connection ended badly. One variant per reason; each is logged once per connection
//! with its id, and `spipe` prints it before exiting 1.

use std::io;
use std::time::Duration;

use crate::proto::{HandshakeError, RecordError};

/// A failed connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Every resolved target address refused or failed; the last error is reported.
    #[error("could not connect to {target}: {source}")]
    Connect {
        /// The last address tried.
        target: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// No address answered within `-o` seconds.
    #[error("could not connect to {target}: timed out after {timeout:?} (-o)")]
    ConnectTimeout {
        /// The address being tried when time ran out.
        target: String,
        /// The `-o` value.
        timeout: Duration,
    },
    /// The target currently resolves to nothing.
    #[error("could not connect: the target has no addresses")]
    NoTarget,
    /// The peer did not finish the handshake within `-o` seconds.
    #[error("handshake timed out after {0:?} (-o): the peer is silent, too slow, or not speaking this protocol")]
    HandshakeTimeout(Duration),
    /// The protocol core rejected the handshake.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer closed the connection before the handshake finished.
    #[error("handshake failed: the peer closed the connection (bad key, or a different --protocol or -f/-g policy on the other end?)")]
    HandshakeEof,
    /// The peer reset the connection before the handshake finished.
    #[error("handshake failed: {0}")]
    HandshakeIo(io::Error),
    /// A record failed (bad MAC, truncation, ...): nothing of it was delivered.
    #[error("{0}")]
    Record(#[from] RecordError),
    /// Reading or writing the encrypted socket failed (peer reset, ...).
    #[error("encrypted connection failed: {0}")]
    CipherIo(io::Error),
    /// Reading or writing the plaintext socket failed.
    #[error("plaintext connection failed: {0}")]
    PlainIo(io::Error),
    /// The protocol's records do not fit our fixed buffers (a build/config bug, not a peer).
    #[error("protocol records of {0} bytes do not fit the {cap}-byte I/O buffers", cap = crate::limits::IO_BUF)]
    RecordTooBig(usize),
    /// The handshake core produced more output than any handshake needs.
    #[error("handshake produced more than {} bytes of output", crate::limits::HANDSHAKE_BUF)]
    HandshakeTooLarge,
    /// Registering a socket with the event loop failed.
    #[error("event loop error: {0}")]
    Poll(io::Error),
}
