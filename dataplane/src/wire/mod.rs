//! Wire types. TODO(owner).
