//! Typed errors from DPDK return codes and `rte_errno`.

use std::ffi::CStr;

use dpdk_sys as sys;

/// What went wrong in a DPDK call. Messages say what to check or change.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `Eal::init` was called a second time; DPDK cannot be initialised twice in one process.
    #[error("the DPDK EAL is already initialised in this process (it can be initialised once); reuse the existing Eal handle")]
    AlreadyInitialized,
    /// An EAL argument cannot be passed to C.
    #[error("EAL argument {arg:?} contains a NUL byte; remove it from [eal].args or the port devargs")]
    InvalidArgument {
        /// The offending argument.
        arg: String,
    },
    /// `rte_eal_init` failed.
    #[error("rte_eal_init failed: {reason} (errno {code}); run as root, reserve hugepages (tests/hugepages.sh 512) or pass --no-huge, and check the -l/--vdev arguments (the EAL log lines above name the culprit)")]
    EalInit {
        /// `rte_errno`.
        code: i32,
        /// `rte_strerror(code)`.
        reason: String,
    },
    /// `rte_pktmbuf_pool_create` failed.
    #[error("cannot create mbuf pool {name:?} of {mbufs} mbufs: {reason} (errno {code}); reserve more hugepages or lower the number of lcores, ports or descriptors")]
    Mempool {
        /// Pool name.
        name: String,
        /// Requested number of mbufs.
        mbufs: u32,
        /// `rte_errno`.
        code: i32,
        /// `rte_strerror(code)`.
        reason: String,
    },
    /// No ethdev with this device name exists.
    #[error("no DPDK port named {name:?}: a vdev (net_tap0,iface=...) must be passed with --vdev, a PCI NIC must be bound to vfio-pci and not excluded by --no-pci/-a")]
    PortNotFound {
        /// The device name looked up (devargs up to the first comma).
        name: String,
    },
    /// The device has fewer queues than lcores that want one.
    #[error("port {port}: {asked} {dir} queues requested (one per forwarding lcore) but the device supports at most {max}; use fewer forwarding lcores, or give the device more queues (net_af_packet: qpairs=N in its devargs)")]
    TooManyQueues {
        /// Device name.
        port: String,
        /// "RX" or "TX".
        dir: &'static str,
        /// Requested queues.
        asked: u16,
        /// Device maximum.
        max: u16,
    },
    /// An ethdev call on a port failed.
    #[error("port {port}: {op} failed: {reason} (errno {code})")]
    Port {
        /// Device name.
        port: String,
        /// The DPDK function that failed.
        op: &'static str,
        /// Positive errno.
        code: i32,
        /// `rte_strerror(code)`.
        reason: String,
    },
    /// The lcore is not in the EAL's `-l` list, or is the main lcore.
    #[error("lcore {lcore} is not an enabled worker lcore; list it in [eal].lcores (and not as main_lcore)")]
    LcoreNotWorker {
        /// The lcore id.
        lcore: u32,
    },
    /// `rte_eal_remote_launch` failed.
    #[error("cannot launch work on lcore {lcore}: {reason} (errno {code}); it is probably still running a previous job")]
    Launch {
        /// The lcore id.
        lcore: u32,
        /// Positive errno.
        code: i32,
        /// `rte_strerror(code)`.
        reason: String,
    },
    /// The closure running on an lcore panicked (caught by the trampoline).
    #[error("lcore {lcore} panicked: {message}")]
    LcorePanicked {
        /// The lcore id.
        lcore: u32,
        /// The panic payload, if it was a string.
        message: String,
    },
}

/// `rte_strerror` text for a (positive) errno value.
pub(crate) fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror always returns a valid NUL-terminated string (a static table entry or
    // a per-thread buffer) that stays valid until the next call on this thread; it is copied here.
    unsafe { CStr::from_ptr(sys::rte_strerror(code)) }
        .to_string_lossy()
        .into_owned()
}

/// The calling thread's `rte_errno`.
pub(crate) fn errno() -> i32 {
    // SAFETY: reads a thread-local int through the C shim; no preconditions.
    unsafe { sys::shim_rte_errno() }
}

/// Maps an ethdev return code (`0` or `-errno`) to a result.
pub(crate) fn check_port(rc: i32, port: &str, op: &'static str) -> Result<(), DpdkError> {
    if rc >= 0 {
        return Ok(());
    }
    let code = -rc;
    Err(DpdkError::Port { port: port.to_owned(), op, code, reason: strerror(code) })
}
