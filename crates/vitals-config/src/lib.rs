//! vitals-config
