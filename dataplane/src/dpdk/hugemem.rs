//! Transparent huge pages for the large per-lcore tables (the connection table).
//!
//! A connection table of 2^20 flows is 64 MiB touched at random: with 4 KiB pages nearly every
//! lookup also misses the TLB, and in a virtual machine each miss is a two-level page walk.
//! Backing the table with 2 MiB pages takes those walks off the packet path. The tables are
//! ordinary heap memory (they must work without EAL, in tests and fuzzing), so this asks the
//! kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`, honoured when
//! `/sys/kernel/mm/transparent_hugepage/enabled` is `always` or `madvise`) rather than taking
//! them from DPDK's hugepage pool, which is small and shared with the mbufs.

use std::ops::Range;

/// The x86-64 transparent huge page size.
pub const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the whole 2 MiB pages inside `range` (addresses of memory the caller
/// owns and has not written yet) with huge pages. Returns false when the range holds no whole
/// huge page or the kernel declined (THP disabled): the memory then stays on 4 KiB pages,
/// which is slower but otherwise identical.
pub fn advise_hugepages(range: Range<usize>) -> bool {
    let start = range.start.next_multiple_of(HUGE_PAGE);
    let end = range.end & !(HUGE_PAGE - 1);
    if end <= start {
        return false;
    }
    // SAFETY: MADV_HUGEPAGE only changes which page size the kernel uses to back the range; it
    // never changes mappings, contents or permissions, so no Rust reference can observe it,
    // whatever the range (an unmapped range just fails with ENOMEM).
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ranges holding no whole huge page are left alone; an owned 8 MiB allocation is advised
    /// (on kernels with THP available; `never` makes madvise fail, which is also accepted).
    #[test]
    fn advises_whole_huge_pages_only() {
        assert!(!advise_hugepages(0..HUGE_PAGE - 1));
        assert!(!advise_hugepages(HUGE_PAGE + 1..2 * HUGE_PAGE + 10));
        let mut v: Vec<u8> = Vec::with_capacity(4 * HUGE_PAGE);
        let start = v.spare_capacity_mut().as_ptr() as usize;
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        let advised = advise_hugepages(start..start + 4 * HUGE_PAGE);
        if thp.contains("[always]") || thp.contains("[madvise]") {
            assert!(advised, "THP is {thp:?} but madvise failed");
        }
        v.resize(4 * HUGE_PAGE, 1);
        assert!(v.iter().all(|&b| b == 1));
    }
}
