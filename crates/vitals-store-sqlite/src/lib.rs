//! vitals-store-sqlite
