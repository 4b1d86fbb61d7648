//! Owned single-segment mbufs and fixed-size bursts of them.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::slice;

use dpdk_sys as sys;

use super::mempool::PoolLifetime;
use super::BURST_SIZE;
use crate::pipeline::{PacketBuf, Prefetch};

/// The CPU's prefetch instruction as a [`Prefetch`] for
/// [`crate::pipeline::Pipeline::process_burst_with`] (`prefetcht0`: into all cache levels).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPrefetch;

impl Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch<T: Copy>(&self, r: &T) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is only a hint: it never faults or changes memory, and `r` is a
        // valid reference anyway. SSE is part of the x86-64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>((r as *const T).cast::<i8>())
        };
        #[cfg(not(target_arch = "x86_64"))]
        let _ = r;
    }
}

/// One packet buffer, owned: freed (`rte_pktmbuf_free`) on drop. The lifetime ties it to the
/// queue or pool it came from, so it cannot outlive the pool's memory.
///
/// The [`PacketBuf`] view covers the first segment only. Multi-segment frames (jumbo frames on a
/// NIC with scatter RX) are not supported: check [`Mbuf::is_contiguous`] and drop the rest.
#[derive(Debug)]
#[repr(transparent)] // the same layout as the pointer: a batch's slots are viewed as `[Mbuf]`
pub struct Mbuf<'a> {
    raw: NonNull<sys::rte_mbuf>,
    _pool: PoolLifetime<'a>,
}

impl<'a> Mbuf<'a> {
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else references (refcount 1, not in any ring).
    pub(crate) unsafe fn from_raw(raw: NonNull<sys::rte_mbuf>) -> Mbuf<'a> {
        Mbuf { raw, _pool: PhantomData }
    }

    /// Gives up ownership without freeing.
    pub(crate) fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    fn m(&self) -> &sys::rte_mbuf {
        // SAFETY: we own a valid mbuf; shared access to its header through &self.
        unsafe { self.raw.as_ref() }
    }

    fn m_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively; &mut self makes this the only reference.
        unsafe { self.raw.as_mut() }
    }

    /// Frame length in this segment.
    pub fn len(&self) -> usize {
        self.m().data_len as usize
    }

    /// True for a zero-length frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the whole frame is in this one segment (the only kind the pipeline handles).
    pub fn is_contiguous(&self) -> bool {
        let m = self.m();
        m.nb_segs == 1 && m.next.is_null() && m.pkt_len == u32::from(m.data_len)
    }

    /// Free bytes in front of the frame.
    pub fn headroom(&self) -> usize {
        self.m().data_off as usize
    }

    /// Free bytes after the frame.
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        usize::from(m.buf_len).saturating_sub(usize::from(m.data_off) + usize::from(m.data_len))
    }

    /// Appends `bytes` at the end of the frame; false (unchanged) when the tailroom is too small.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> bool {
        let old = self.len();
        if !self.append(bytes.len()) {
            return false;
        }
        self.data_mut()[old..].copy_from_slice(bytes);
        true
    }
}

impl PacketBuf for Mbuf<'_> {
    #[inline]
    fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: for a valid mbuf, buf_addr + data_off .. + data_len lies inside its data buffer
        // (data_off + data_len <= buf_len, kept by every mutator below); we own the mbuf.
        unsafe {
            slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m_mut();
        // SAFETY: as in `data`; &mut self gives exclusive access to the bytes.
        unsafe {
            slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        let Ok(n16) = u16::try_from(n) else { return false };
        if n16 > m.data_off || m.data_len.checked_add(n16).is_none() {
            return false;
        }
        m.data_off -= n16;
        m.data_len += n16;
        m.pkt_len += u32::from(n16);
        true
    }

    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        let m = self.m_mut();
        let Ok(n16) = u16::try_from(n) else { return false };
        if n16 > m.data_len {
            return false;
        }
        m.data_off += n16;
        m.data_len -= n16;
        m.pkt_len -= u32::from(n16);
        true
    }

    #[inline]
    fn append(&mut self, n: usize) -> bool {
        if n > self.tailroom() {
            return false;
        }
        let m = self.m_mut();
        // n <= tailroom <= buf_len <= u16::MAX, so the casts are lossless.
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        true
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        let m = self.m_mut();
        if len < usize::from(m.data_len) {
            let cut = m.data_len - len as u16;
            m.data_len -= cut;
            m.pkt_len -= u32::from(cut);
        }
    }
}

impl Drop for Mbuf<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this call it is back in its pool and never used again.
        unsafe { sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Up to [`BURST_SIZE`] owned mbufs in a fixed array: what `rx_burst` fills and `tx_burst`
/// empties. Dropping the batch frees what is left in it.
#[derive(Debug)]
pub struct MbufBatch<'a> {
    slots: [*mut sys::rte_mbuf; BURST_SIZE],
    len: usize,
    _pool: PoolLifetime<'a>,
}

impl Default for MbufBatch<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> MbufBatch<'a> {
    /// An empty batch.
    pub fn new() -> Self {
        MbufBatch { slots: [std::ptr::null_mut(); BURST_SIZE], len: 0, _pool: PhantomData }
    }

    /// Mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no mbuf is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots.
    pub fn room(&self) -> usize {
        BURST_SIZE - self.len
    }

    /// Total frame bytes held (for byte counters).
    pub fn total_len(&self) -> usize {
        self.slots[..self.len]
            .iter()
            // SAFETY: slots[..len] are valid owned mbufs; only their header is read.
            .map(|p| unsafe { (**p).pkt_len } as usize)
            .sum()
    }

    /// The held mbufs, in order, for in-place processing (the batch keeps owning them).
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf<'a>] {
        let slots = &mut self.slots[..self.len];
        // SAFETY: `Mbuf` is `repr(transparent)` over `NonNull<rte_mbuf>` (its other field is a
        // zero-sized marker), which has the layout of `*mut rte_mbuf`; slots[..len] are
        // non-null owned mbufs of this batch's pool lifetime. Through `&mut [Mbuf]` a caller can
        // only swap or replace whole owned mbufs, so the slots keep holding owned mbufs and the
        // batch frees exactly those.
        unsafe { slice::from_raw_parts_mut(slots.as_mut_ptr().cast::<Mbuf<'a>>(), slots.len()) }
    }

    /// Frees the mbufs for which `reject` is true, keeps the others in order, and returns how
    /// many were freed.
    pub fn free_where(&mut self, mut reject: impl FnMut(&Mbuf<'a>) -> bool) -> usize {
        let mut kept = 0;
        for i in 0..self.len {
            let p = self.slots[i];
            // SAFETY: slots[i] (i < len) is an owned non-null mbuf. The temporary `Mbuf` either
            // goes back into a slot (`into_raw`) or is dropped (freed) and left behind: each
            // mbuf ends up owned exactly once.
            let m = unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) };
            if reject(&m) {
                drop(m);
            } else {
                self.slots[kept] = m.into_raw();
                kept += 1;
            }
        }
        let freed = self.len - kept;
        self.len = kept;
        freed
    }

    /// Adds an mbuf at the end; gives it back when the batch is full.
    pub fn push(&mut self, m: Mbuf<'a>) -> Result<(), Mbuf<'a>> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.slots[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Takes every mbuf out, in order. Mbufs the iterator did not yield are freed when it drops.
    pub fn drain(&mut self) -> MbufDrain<'_, 'a> {
        MbufDrain { batch: self, pos: 0 }
    }

    /// Frees every mbuf held (`rte_pktmbuf_free_bulk`) and returns how many there were.
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        if n > 0 {
            // SAFETY: slots[..len] are owned mbufs; after the call the batch forgets them.
            unsafe { sys::rte_pktmbuf_free_bulk(self.slots.as_mut_ptr(), n as u32) };
            self.len = 0;
        }
        n
    }

    /// Pointer to the first free slot, and the current length.
    pub(crate) fn raw_tail(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        // `len <= BURST_SIZE`, so the pointer is at most one past the end (allowed).
        (self.slots[self.len..].as_mut_ptr(), self.len)
    }

    /// Pointer to the held mbufs.
    pub(crate) fn raw_head(&mut self) -> *mut *mut sys::rte_mbuf {
        self.slots.as_mut_ptr()
    }

    /// # Safety
    /// `slots[..len]` must hold owned mbufs, and `len <= BURST_SIZE`.
    pub(crate) unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= BURST_SIZE);
        self.len = len;
    }

    /// Drops the first `sent` mbufs from the batch (the NIC took them) and moves the rest to the
    /// front.
    pub(crate) fn consume_front(&mut self, sent: usize) {
        let sent = sent.min(self.len);
        self.slots.copy_within(sent..self.len, 0);
        self.len -= sent;
    }
}

impl Drop for MbufBatch<'_> {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Iterator returned by [`MbufBatch::drain`].
#[derive(Debug)]
pub struct MbufDrain<'b, 'a> {
    batch: &'b mut MbufBatch<'a>,
    pos: usize,
}

impl<'a> Iterator for MbufDrain<'_, 'a> {
    type Item = Mbuf<'a>;

    fn next(&mut self) -> Option<Mbuf<'a>> {
        if self.pos >= self.batch.len {
            return None;
        }
        let p = self.batch.slots[self.pos];
        self.pos += 1;
        // SAFETY: slots[pos] is an owned, non-null mbuf that the batch stops owning (pos moved
        // past it; Drop only frees from pos on).
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(p)) })
    }
}

impl Drop for MbufDrain<'_, '_> {
    fn drop(&mut self) {
        let rest = self.batch.len - self.pos;
        if rest > 0 {
            // SAFETY: slots[pos..len] are still owned by the batch and freed exactly once here.
            unsafe {
                sys::rte_pktmbuf_free_bulk(self.batch.slots[self.pos..].as_mut_ptr(), rest as u32)
            };
        }
        self.batch.len = 0;
    }
}
