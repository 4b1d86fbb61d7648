//! Lcore runtime. TODO(owner).
