//! vitals-sla
