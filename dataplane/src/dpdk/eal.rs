//! EAL initialisation and cleanup, and the TSC clock.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::error::{errno, strerror, DpdkError};

/// Set by the first `Eal::init`; DPDK cannot be initialised twice in a process, even after
/// `rte_eal_cleanup`.
static INITIALISED: AtomicBool = AtomicBool::new(false);

/// A handle on the initialised EAL. Clones share it; `rte_eal_cleanup` runs when the last one
/// drops on the main lcore (the thread that called `init`). Every other DPDK object here holds a
/// clone, so the EAL outlives them.
#[derive(Clone, Debug)]
pub struct Eal(Arc<EalInner>);

#[derive(Debug)]
struct EalInner {
    main_lcore: u32,
}

impl Eal {
    /// Initialises the EAL with `args` (without the program name: `["-l", "0,1", "--in-memory"]`).
    /// Must be called once, from the thread that becomes the main lcore. Threads spawned after
    /// this call inherit the main lcore's CPU affinity.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        owned.push(c"dataplane".to_owned());
        for a in args {
            let a = a.as_ref();
            owned.push(
                CString::new(a).map_err(|_| DpdkError::InvalidArgument { arg: a.to_owned() })?,
            );
        }
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        // EAL keeps pointers into argv (getopt permutes the array; some options keep the
        // strings), so both the strings and the pointer array live for the rest of the process:
        // a one-off allocation of a few hundred bytes.
        let owned: &'static [CString] = Vec::leak(owned);
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .iter()
                .map(|c| c.as_ptr().cast_mut())
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        let argc = (argv.len() - 1) as i32;
        // SAFETY: argv holds argc pointers to NUL-terminated strings followed by NULL, all leaked
        // above so they outlive the EAL; INITIALISED guarantees this runs at most once.
        let rc = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            let code = errno();
            return Err(DpdkError::EalInit { code, reason: strerror(code) });
        }
        // SAFETY: the EAL is initialised; rte_get_main_lcore only reads its configuration.
        let main_lcore = unsafe { sys::rte_get_main_lcore() };
        Ok(Eal(Arc::new(EalInner { main_lcore })))
    }

    /// The main lcore (the thread that called [`Eal::init`]).
    pub fn main_lcore(&self) -> u32 {
        self.0.main_lcore
    }

    /// Whether `lcore` is in the EAL's lcore list.
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        if lcore >= sys::RTE_MAX_LCORE {
            return false;
        }
        // SAFETY: lcore < RTE_MAX_LCORE as the function requires; the EAL is initialised.
        unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
    }

    /// The NUMA socket of the calling thread's lcore.
    pub fn socket_id(&self) -> i32 {
        // SAFETY: reads the calling thread's per-lcore variable; no preconditions.
        unsafe { sys::rte_socket_id() as i32 }
    }

    /// Blocks until every worker lcore has finished its job (`rte_eal_mp_wait_lcore`).
    /// Panics inside jobs are reported by each [`super::LcoreHandle::wait`] instead.
    pub fn wait_all_lcores(&self) {
        // SAFETY: EAL is initialised; the function only waits on worker states.
        unsafe { sys::rte_eal_mp_wait_lcore() }
    }
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: reads the calling thread's lcore id; no preconditions.
        let here = unsafe { sys::rte_lcore_id() };
        if here != self.main_lcore {
            // rte_eal_cleanup must run on the main lcore after the workers stopped; if the last
            // handle is dropped elsewhere, leave cleanup to process exit rather than corrupt
            // state the main lcore may still use.
            tracing::warn!(lcore = here, "last EAL handle dropped off the main lcore; skipping rte_eal_cleanup");
            return;
        }
        // SAFETY: all objects that use DPDK hold an Eal handle, so none is alive any more; we are
        // on the main lcore.
        let rc = unsafe { sys::rte_eal_cleanup() };
        if rc < 0 {
            tracing::warn!(code = -rc, reason = %strerror(-rc), "rte_eal_cleanup failed");
        }
    }
}

/// The CPU's time stamp counter (`rte_get_tsc_cycles`): cheap, monotonic, per core.
#[inline]
pub fn tsc_cycles() -> u64 {
    // SAFETY: reads the TSC (rdtsc); no preconditions.
    unsafe { sys::rte_get_tsc_cycles() }
}

/// TSC ticks per second as measured by the EAL (`rte_get_tsc_hz`); 0 before EAL init.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value EAL calibrated at init; no preconditions.
    unsafe { sys::rte_get_tsc_hz() }
}

/// Nanoseconds since the clock was made, from the TSC. This is the `now_ns` the pipeline gets:
/// one rdtsc and a multiply-shift per burst, no syscall.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: u64,
    /// ns per tick in 32.32 fixed point.
    mult: u64,
}

impl Clock {
    /// A clock whose zero is now. Needs an initialised EAL (for the TSC frequency).
    pub fn new(_eal: &Eal) -> Clock {
        Self::with_hz(tsc_cycles(), tsc_hz())
    }

    /// A clock whose zero is TSC tick `origin`, for a TSC of `hz` ticks per second.
    pub fn with_hz(origin: u64, hz: u64) -> Clock {
        let hz = hz.max(1);
        Clock { origin, mult: ((1_000_000_000u128 << 32) / hz as u128) as u64 }
    }

    /// Nanoseconds since [`Clock::new`].
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.ticks_to_ns(tsc_cycles().wrapping_sub(self.origin))
    }

    /// Nanoseconds from TSC tick `from` to tick `to` (0 if `to` is earlier): a multiply and a
    /// shift, no division (the generator times every returned frame with it).
    #[inline]
    pub fn ns_between(&self, from: u64, to: u64) -> u64 {
        self.ticks_to_ns(to.saturating_sub(from))
    }

    #[inline]
    fn ticks_to_ns(&self, ticks: u64) -> u64 {
        ((ticks as u128 * self.mult as u128) >> 32) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-point conversion is exact enough: 1 s of ticks at 2.5 GHz and 3 GHz reads as
    /// 1 s within a microsecond, and a day of ticks does not overflow.
    #[test]
    fn clock_converts_ticks_to_ns() {
        for hz in [2_500_000_000u64, 3_000_000_000, 1_000_000_000] {
            let c = Clock::with_hz(0, hz);
            let ns = c.ticks_to_ns(hz);
            assert!(ns.abs_diff(1_000_000_000) < 1_000, "{hz}: {ns}");
            let day = c.ticks_to_ns(hz * 86_400);
            assert!(day.abs_diff(86_400_000_000_000) < 100_000_000, "{hz}: {day}");
            // The generator's latency: from a stamp to a later tick, 0 for an earlier one.
            let t0 = 5 * hz;
            assert!(c.ns_between(t0, t0 + hz / 1000).abs_diff(1_000_000) < 10, "{hz}");
            assert_eq!(c.ns_between(t0 + 1, t0), 0);
        }
    }
}
