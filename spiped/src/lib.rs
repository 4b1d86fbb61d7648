//! `spiped`: a pre-shared-key secure pipe in the style of Colin Percival's spiped.
//!
//! Layers (see `docs/ARCHITECTURE.md`):
//! - [`proto`]: sans-IO protocol cores (native protocol and spiped 1.x compatibility) behind one
//!   interface: bytes and `now` in, bytes and events out. No sockets, no clocks.
//! - [`io`]: mio event loops that only move bytes and timers between sockets and a protocol core.
//! - [`cli`], [`addr`], [`key`]: the spiped 1.6-compatible command line, address syntax and key files.
//! - [`daemon`]: process set-up of the two binaries (daemonizing, pid file, privileges, syslog).
#![forbid(unsafe_code)]

pub mod addr;
pub mod cli;
pub mod daemon;
pub mod io;
pub mod key;
pub mod limits;
pub mod proto;
