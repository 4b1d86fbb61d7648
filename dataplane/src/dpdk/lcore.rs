//! Running closures on worker lcores, with panics caught at the C boundary.

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{strerror, DpdkError};

/// An EAL lcore id (the numbers of `-l`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

/// Where the trampoline leaves the panic message of a job, if it panicked.
type PanicSlot = Arc<Mutex<Option<String>>>;

/// What the trampoline receives through `rte_eal_remote_launch`'s `void *arg`.
struct Job {
    run: Box<dyn FnOnce() + Send>,
    panic: PanicSlot,
    lcore: u32,
}

/// A job running on a worker lcore; [`LcoreHandle::wait`] joins it.
#[derive(Debug)]
#[must_use = "wait on the lcore to learn whether its job panicked"]
pub struct LcoreHandle {
    lcore: LcoreId,
    panic: PanicSlot,
    _eal: Eal,
}

impl Eal {
    /// Runs `job` on worker lcore `lcore` (`rte_eal_remote_launch`). A panic in `job` is caught
    /// by the trampoline, logged, and returned by [`LcoreHandle::wait`]; it never unwinds into
    /// DPDK's C code.
    pub fn launch<F>(&self, lcore: LcoreId, job: F) -> Result<LcoreHandle, DpdkError>
    where
        F: FnOnce() + Send + 'static,
    {
        if lcore.0 == self.main_lcore() || !self.lcore_enabled(lcore.0) {
            return Err(DpdkError::LcoreNotWorker { lcore: lcore.0 });
        }
        let panic = PanicSlot::default();
        let arg = Box::into_raw(Box::new(Job { run: Box::new(job), panic: panic.clone(), lcore: lcore.0 }));
        // SAFETY: `trampoline` matches lcore_function_t; `arg` is a live Box<Job> that the
        // trampoline takes back exactly once; lcore is an enabled worker (checked above).
        let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg.cast::<c_void>(), lcore.0) };
        if rc < 0 {
            // SAFETY: the launch failed, so the trampoline will never run and `arg` is still ours.
            drop(unsafe { Box::from_raw(arg) });
            let code = -rc;
            return Err(DpdkError::Launch { lcore: lcore.0, code, reason: strerror(code) });
        }
        Ok(LcoreHandle { lcore, panic, _eal: self.clone() })
    }
}

impl LcoreHandle {
    /// The lcore the job runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Blocks until the job returns (`rte_eal_wait_lcore`); `Err` if it panicked.
    pub fn wait(self) -> Result<(), DpdkError> {
        // SAFETY: lcore is a worker we launched a job on; waiting has no other precondition.
        unsafe { sys::rte_eal_wait_lcore(self.lcore.0) };
        let message = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        match message {
            None => Ok(()),
            Some(message) => Err(DpdkError::LcorePanicked { lcore: self.lcore.0, message }),
        }
    }
}

/// The `lcore_function_t` every job goes through: takes back the boxed job, runs it under
/// `catch_unwind` (unwinding into C is undefined behaviour), and records a panic.
extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `Eal::launch` for exactly this call.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    let Job { run, panic, lcore } = *job;
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(()) => 0,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            tracing::error!(lcore, %message, "lcore job panicked");
            *panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
            -1
        }
    }
}
