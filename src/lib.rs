//! Raw bindings to the system DPDK (Debian's 22.11 LTS), generated at build time by bindgen.
//!
//! Nothing here is safe to call directly from application code: `dataplane::dpdk` is the one
//! module that wraps these functions in safe types. `static inline` fast-path functions
//! (`rte_eth_rx_burst`, `rte_pktmbuf_alloc`, ...) are reachable under their C names through
//! bindgen's generated C wrappers; `shim_rte_errno` and `shim_rte_pktmbuf_mtod` cover the two
//! macros the data path needs.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code)]
#![allow(clippy::all, rustdoc::all, improper_ctypes, unnecessary_transmutes)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
