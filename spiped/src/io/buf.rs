//! Fixed-size, lazily allocated byte buffers and the per-worker pool they come from.
//!
//! Contract: a [`Buf`] owns no memory while empty; it takes one [`IO_BUF`]-byte block from the
//! worker's [`BufPool`] when bytes must wait, and gives it back the moment it drains. Nothing
//! here ever grows: a caller that tries to store more than one block holds is told so (and that
//! is a bug in the caller, which sizes its rounds to fit).

use crate::limits::{BUF_POOL_MAX, IO_BUF};

/// Free blocks of [`IO_BUF`] bytes, reused so a busy connection does not go to the allocator on
/// every wakeup. Holds at most [`BUF_POOL_MAX`] blocks.
#[derive(Debug, Default)]
pub struct BufPool {
    free: Vec<Box<[u8]>>,
}

impl BufPool {
    /// An empty pool.
    pub fn new() -> Self {
        BufPool { free: Vec::with_capacity(BUF_POOL_MAX) }
    }

    fn get(&mut self) -> Box<[u8]> {
        self.free.pop().unwrap_or_else(|| vec![0u8; IO_BUF].into_boxed_slice())
    }

    fn put(&mut self, b: Box<[u8]>) {
        if self.free.len() < BUF_POOL_MAX {
            self.free.push(b);
        }
    }

    /// Blocks currently pooled.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// True when no block is pooled.
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }
}

/// A byte queue of at most [`IO_BUF`] bytes: `data[start..end]` is pending.
#[derive(Debug, Default)]
pub struct Buf {
    data: Option<Box<[u8]>>,
    start: usize,
    end: usize,
}

impl Buf {
    /// An empty buffer holding no memory.
    pub const fn new() -> Self {
        Buf { data: None, start: 0, end: 0 }
    }

    /// True when no bytes are pending.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Pending bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True while a block is held (for memory accounting in tests).
    pub fn is_allocated(&self) -> bool {
        self.data.is_some()
    }

    /// The pending bytes.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Some(d) => &d[self.start..self.end],
            None => &[],
        }
    }

    /// Drops `n` bytes from the front; gives the block back once empty.
    pub fn consume(&mut self, n: usize, pool: &mut BufPool) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.is_empty() {
            self.release(pool);
        }
    }

    /// Gives the block back (pending bytes, if any, are discarded).
    pub fn release(&mut self, pool: &mut BufPool) {
        if let Some(d) = self.data.take() {
            pool.put(d);
        }
        self.start = 0;
        self.end = 0;
    }

    /// Appends `bytes`. Returns false, storing nothing, if they do not fit in one block.
    #[must_use]
    pub fn append(&mut self, bytes: &[u8], pool: &mut BufPool) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let spare = self.spare(bytes.len(), pool);
        if spare.len() < bytes.len() {
            return false;
        }
        spare[..bytes.len()].copy_from_slice(bytes);
        self.commit(bytes.len());
        true
    }

    /// Free space after the pending bytes, allocating the block if needed and moving pending
    /// bytes to the front when fewer than `want` bytes are free at the tail (so a partial record
    /// is copied at most once per record, not once per read).
    pub fn spare(&mut self, want: usize, pool: &mut BufPool) -> &mut [u8] {
        let data = self.data.get_or_insert_with(|| pool.get());
        if data.len() - self.end < want && self.start > 0 {
            data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut data[self.end..]
    }

    /// Marks `n` bytes written into [`Buf::spare`] as pending.
    pub fn commit(&mut self, n: usize) {
        let cap = self.data.as_ref().map_or(0, |d| d.len());
        debug_assert!(self.end + n <= cap);
        self.end = (self.end + n).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer holds no block while empty and returns its block to the pool when drained;
    /// compaction keeps the pending bytes in order.
    #[test]
    fn lazy_allocation_and_compaction() {
        let mut pool = BufPool::new();
        let mut b = Buf::new();
        assert!(!b.is_allocated());
        assert!(b.append(b"hello world", &mut pool));
        assert!(b.is_allocated());
        b.consume(6, &mut pool);
        assert_eq!(b.bytes(), b"world");
        // Ask for more than the tail has: pending bytes move to the front.
        let spare_len = b.spare(IO_BUF - 2, &mut pool).len();
        assert_eq!(spare_len, IO_BUF - 5);
        assert_eq!(b.bytes(), b"world");
        b.consume(5, &mut pool);
        assert!(!b.is_allocated());
        assert_eq!(pool.len(), 1);
        // Too much for one block is refused, not grown.
        let big = vec![1u8; IO_BUF + 1];
        assert!(!b.append(&big, &mut pool));
        assert!(b.is_empty());
    }

    /// The pool never keeps more than BUF_POOL_MAX blocks.
    #[test]
    fn pool_is_bounded() {
        let mut pool = BufPool::new();
        let mut bufs: Vec<Buf> = (0..BUF_POOL_MAX + 5).map(|_| Buf::new()).collect();
        for b in &mut bufs {
            assert!(b.append(b"x", &mut pool));
        }
        for b in &mut bufs {
            b.release(&mut pool);
        }
        assert_eq!(pool.len(), BUF_POOL_MAX);
    }
}
