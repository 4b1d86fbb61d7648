//! Safe wrappers over DPDK (`dpdk-sys`): the only module of `dataplane` with `unsafe`.
//!
//! Contract (capsule style):
//! - [`Eal`] initialises the EAL once per process and cleans it up when the last handle drops;
//!   every other object ([`Mempool`], [`Port`], queues) holds an `Eal` handle, so cleanup can only
//!   run after them.
//! - [`Mempool`] owns an `rte_mempool` of packet mbufs; [`Mbuf`] owns one single-segment mbuf and
//!   frees it on drop; its lifetime is tied to the queue or pool it came from.
//! - [`Port`] is one ethdev, found by device name; [`Port::configure`] sets up N RX and TX queues
//!   (RSS over IP/TCP/UDP when N > 1, masked by what the device can hash) and hands back one
//!   [`RxQueue`]/[`TxQueue`] per queue. Queues are `Send` but not `Sync`: a queue is polled by one
//!   lcore only, which is what DPDK requires of its lock-free queues.
//! - [`MbufBatch`] is a fixed array of up to [`BURST_SIZE`] owned mbufs: `rx_burst` fills it,
//!   `tx_burst` empties it and leaves what the NIC did not take, for the caller to retry or free
//!   and count.
//! - [`Eal::launch`] runs a closure on a worker lcore through a trampoline that catches panics
//!   (a panic never unwinds into C) and reports them to [`LcoreHandle::wait`].
//! - Return codes and `rte_errno` become [`DpdkError`]. Raw pointers never leave this module.

mod eal;
mod error;
mod hugemem;
mod lcore;
mod mbuf;
mod mempool;
mod port;

pub use crate::limits::BURST_SIZE;
pub use eal::{tsc_cycles, tsc_hz, Clock, Eal};
pub use error::DpdkError;
pub use hugemem::{advise_hugepages, HUGE_PAGE};
pub use lcore::{LcoreHandle, LcoreId};
pub use mbuf::{CpuPrefetch, Mbuf, MbufBatch, MbufDrain};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortStats, RxQueue, TxQueue};
