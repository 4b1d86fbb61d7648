//! The packet pipeline: pure Rust over packet bytes, run to completion, one instance per lcore.
//!
//! Contract: `Pipeline::process(buf, port, now)` parses the frame through zero-copy views,
//! classifies it, rewrites it in place (encapsulation grows it at the front, replies are built
//! over the received bytes) and returns a [`Verdict`]. It never allocates, locks, blocks or makes
//! a syscall; time comes in as an argument. Every `Verdict::Drop` carries a [`DropReason`] and is
//! counted at one exit point.

pub mod verdict;

pub use verdict::{DropReason, PortId, Verdict};

/// A packet buffer the pipeline may rewrite in place, grow at the front (encapsulation) or back,
/// and shrink. Implemented by `dpdk::Mbuf` and by [`VecBuf`] for tests and fuzzing.
pub trait PacketBuf {
    /// The frame, from the first byte of the Ethernet header.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame by `n` bytes at the front. Returns false (frame unchanged) when the
    /// headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Removes `n` bytes from the front. Returns false (frame unchanged) if `n > len`.
    fn adj(&mut self, n: usize) -> bool;
    /// Grows the frame by `n` bytes at the end. Returns false (frame unchanged) when the
    /// tailroom is too small.
    fn append(&mut self, n: usize) -> bool;
    /// Shortens the frame to `len` bytes (no-op if it is already shorter).
    fn truncate(&mut self, len: usize);
}

/// A heap buffer with DPDK-like headroom, for tests, fuzzing and the pcap tools.
#[derive(Clone, Debug)]
pub struct VecBuf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// Headroom left in front of the frame, as in DPDK's `RTE_PKTMBUF_HEADROOM`.
    pub const HEADROOM: usize = 128;
    /// Total buffer size, as DPDK's default mbuf data room (2048 + headroom).
    pub const CAPACITY: usize = 2048 + Self::HEADROOM;

    /// Copies `frame` into a new buffer with [`Self::HEADROOM`] bytes of headroom.
    /// Frames longer than the buffer are cut (as a NIC would not deliver them at all).
    pub fn new(frame: &[u8]) -> Self {
        let mut bytes = vec![0u8; Self::CAPACITY];
        let len = frame.len().min(Self::CAPACITY - Self::HEADROOM);
        bytes[Self::HEADROOM..Self::HEADROOM + len].copy_from_slice(&frame[..len]);
        VecBuf { bytes, start: Self::HEADROOM, end: Self::HEADROOM + len }
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if n > self.bytes.len() - self.end {
            return false;
        }
        self.end += n;
        true
    }
    fn truncate(&mut self, len: usize) {
        if len < self.end - self.start {
            self.end = self.start + len;
        }
    }
}
