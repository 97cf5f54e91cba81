//! vitals-server
