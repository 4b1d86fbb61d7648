//! TODO(owner): see brief.
