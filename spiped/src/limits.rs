//! Every limit and default of the `spiped` crate, with its memory cost and the reason for it.
//!
//! Memory per connection pair (one accepted socket + one outgoing socket):
//! - idle (established, nothing in flight): no data buffer at all. Buffers are taken from the
//!   worker's [`BUF_POOL_MAX`]-deep pool when bytes must wait and given back as soon as they
//!   drain, so an idle pair costs only its bookkeeping (~1 KiB: two sockets, the transport's two
//!   AES-GCM key schedules, counters) plus the kernel's socket buffers (not in our RSS).
//! - busy, worst case: three buffers of [`IO_BUF`] bytes (sealed bytes waiting for the encrypted
//!   socket, received ciphertext holding a partial record, plaintext waiting for the plaintext
//!   socket) = 3 × 72 KiB = 216 KiB. With the default cap of [`DEFAULT_MAX_CONNS`] connections
//!   that is at most 21 MiB, and no queue anywhere grows past it: when a socket does not take
//!   our bytes we stop reading from the other one (backpressure through TCP).
//! - per worker thread: two scratch buffers of [`IO_BUF`] (144 KiB) plus at most
//!   [`BUF_POOL_MAX`] pooled buffers (2.25 MiB).

use std::time::Duration;

/// `-n` default: simultaneous connections (spiped's value). 0 on the command line = no limit.
pub const DEFAULT_MAX_CONNS: usize = 100;

/// `-o` default: connect timeout and, separately, handshake timeout (spiped's value).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// `-r` default: period of target re-resolution (spiped's value).
pub const DEFAULT_RERESOLVE: Duration = Duration::from_secs(60);

/// `-D`: retry period of start-up name resolution after daemonizing (spiped's value).
pub const DNS_RETRY: Duration = Duration::from_secs(1);

/// listen(2) backlog. spiped uses 10, which lets a handful of silent peers fill the queue while
/// the `-n` cap holds accept() back; 128 costs nothing in user memory (the kernel keeps at most
/// this many completed-but-unaccepted sockets) and rides out connection bursts.
pub const LISTEN_BACKLOG: i32 = 128;

/// Bytes of plaintext read from a socket per round, and the size every data buffer is derived
/// from. 64 KiB = four 16 KiB native records per read()/write() pair: big enough that syscalls
/// and wakeups are a small share of the cost at several hundred MB/s, small enough that a busy
/// connection pair stays near 200 KiB.
pub const IO_CHUNK: usize = 64 * 1024;

/// Size of every data buffer (scratch, pooled, per-connection): [`IO_CHUNK`] plus room for the
/// per-record overhead of sealing it (spiped1: 36 bytes per 1 KiB, 2.3 KiB per 64 KiB; native:
/// a few dozen bytes per 16 KiB) with margin. A protocol whose largest record does not fit is
/// refused at handshake completion rather than stalling. 72 KiB.
pub const IO_BUF: usize = IO_CHUNK + 8 * 1024;

/// Rounds (each up to [`IO_CHUNK`] bytes) one direction of one connection may run per wakeup
/// before the worker serves other connections: 16 × 64 KiB = 1 MiB, about 1.5 ms of work.
pub const PUMP_BUDGET: usize = 16;

/// Free data buffers a worker keeps for reuse (72 KiB each, so ≤ 2.25 MiB per worker). Past
/// this, drained buffers go back to the allocator, so memory follows the busy set, not the peak.
pub const BUF_POOL_MAX: usize = 32;

/// Largest handshake output we hold for one connection. Handshake messages are a few hundred
/// bytes (spiped1: 288); this bounds a broken core rather than a peer.
pub const HANDSHAKE_BUF: usize = 4 * 1024;

/// X25519 key pairs a daemon keeps computed ahead of need (`proto::native::keypool`). One
/// background thread at idle priority refills it one pair at a time, and only what handshakes
/// spent (a pair a responder borrowed for its Hello counts as present), so an idle daemon does
/// no work. 16 covers a burst of 16 handshakes before the first refill;
/// each pair is about 100 bytes (a private scalar, its public key and ring's bookkeeping), so
/// under 2 KiB per daemon.
pub const KEY_POOL: usize = 16;

/// Accepted sockets waiting in one worker's hand-off channel. When full, the acceptor serves
/// the socket on its own worker instead (it never blocks), so nothing queues without bound.
pub const ACCEPT_QUEUE: usize = 256;

/// The acceptor keeps a new socket on its own worker unless that worker has at least this many
/// more open connections than the least loaded one. A hand-off costs a wake-up of another
/// thread (on a busy machine it can wait for a time slice); with a slack of 2, a client that
/// reconnects while its previous connection is still closing stays on one thread, and
/// concurrent connections still spread to within 2 of even. No memory cost.
pub const HANDOFF_SLACK: usize = 2;

/// Minimum time between two "Maximum number of connections reached" warnings, so a cap that is
/// hit continuously logs once a minute instead of once per accept.
pub const CAP_WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Key files shorter than this get a warning: 32 bytes = 256 bits of key if random.
pub const MIN_KEY_FILE: usize = 32;

/// Key files longer than this are refused: a key file is read into memory and hashed once, and
/// a multi-megabyte key file is almost certainly a wrong path (or `/dev/urandom`).
pub const MAX_KEY_FILE: usize = 1024 * 1024;

/// `--keygen` output size: 256 random bits.
pub const KEYGEN_BYTES: usize = 32;

/// `spipe`: bytes per blocking read of stdin / the internal socket.
pub const SPIPE_COPY_BUF: usize = IO_CHUNK;

/// `spipe`: after SIGHUP, how long the connection may take to end cleanly (our close record
/// out, the peer's in) before spipe exits anyway. ssh sends SIGHUP to its ProxyCommand right
/// after the session ends; on loopback or a LAN the clean end takes well under 10 ms.
pub const SPIPE_HANGUP_GRACE: Duration = Duration::from_secs(2);
