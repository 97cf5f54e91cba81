//! vitals-scheduler
