//! Packet mbuf pools (`rte_pktmbuf_pool_create`), freed on drop.

use std::ffi::CString;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{errno, strerror, DpdkError};
use super::mbuf::{Mbuf, MbufBatch};

/// An `rte_mempool` of packet mbufs. Shared as `Arc<Mempool>` by the ports that receive into it
/// and the lcores that allocate from it; freed (`rte_mempool_free`) when the last user drops,
/// which the queue handles guarantee happens after their ports are closed.
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<sys::rte_mempool>,
    name: String,
    size: u32,
    _eal: Eal,
}

// SAFETY: a pool made by rte_pktmbuf_pool_create uses the default multi-producer/multi-consumer
// ring ops and per-lcore caches, so allocation and free are safe from any thread at once.
unsafe impl Send for Mempool {}
// SAFETY: as above; `&Mempool` only exposes those thread-safe operations.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Data room of each mbuf: DPDK's default 2048 B of frame plus `RTE_PKTMBUF_HEADROOM`
    /// (128 B) in front, enough for a 1500 B MTU frame plus encapsulation headers.
    pub const DEFAULT_DATA_ROOM: u16 = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

    /// Creates a pool of `mbufs` mbufs (best as 2^q - 1) with a per-lcore cache of `cache` on
    /// NUMA socket `socket` (-1: any). `name` must be unique in the process and short (< 26 B).
    pub fn new(
        eal: &Eal,
        name: &str,
        mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Arc<Mempool>, DpdkError> {
        let err = |code: i32| DpdkError::Mempool {
            name: name.to_owned(),
            mbufs,
            code,
            reason: strerror(code),
        };
        let c_name = CString::new(name).map_err(|_| err(libc::EINVAL))?;
        // SAFETY: c_name is a valid C string for the call; the EAL is initialised (we hold it).
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(c_name.as_ptr(), mbufs, cache, 0, data_room, socket)
        };
        let raw = NonNull::new(raw).ok_or_else(|| err(errno()))?;
        Ok(Arc::new(Mempool { raw, name: name.to_owned(), size: mbufs, _eal: eal.clone() }))
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Mbufs currently free in the pool (including per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: raw is a live pool; the count is a read-only walk of its ring and caches.
        unsafe { sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// One empty mbuf, or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf<'_>> {
        // SAFETY: raw is a live pool; the returned mbuf (if any) is reset and owned by us.
        let m = unsafe { sys::rte_pktmbuf_alloc(self.raw.as_ptr()) };
        // SAFETY: m is null or a freshly allocated mbuf nobody else references.
        NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })
    }

    /// Appends `n` empty mbufs to `batch` (all or none). False when the pool cannot supply `n`
    /// or the batch has no room for them.
    pub fn alloc_bulk<'a>(&'a self, batch: &mut MbufBatch<'a>, n: usize) -> bool {
        if n > batch.room() {
            return false;
        }
        let (slots, len) = batch.raw_tail();
        // SAFETY: `slots` has room for n >= 0 pointers (checked above); on success DPDK writes n
        // reset mbufs there, which the batch then owns.
        let rc = unsafe { sys::rte_pktmbuf_alloc_bulk(self.raw.as_ptr(), slots, n as u32) };
        if rc != 0 {
            return false;
        }
        // SAFETY: the n slots after `len` were just filled with owned mbufs.
        unsafe { batch.set_len(len + n) };
        true
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the last Arc is gone: no queue (which holds an Arc) can still receive into the
        // pool, and mbufs borrow from a queue or the pool, so none is outstanding.
        unsafe { sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}

/// Marker used by mbufs that borrow from a pool.
pub(crate) type PoolLifetime<'a> = PhantomData<&'a Mempool>;
