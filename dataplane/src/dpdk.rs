//! Safe DPDK wrappers. TODO(owner).
