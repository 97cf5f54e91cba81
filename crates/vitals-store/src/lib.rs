//! vitals-store
