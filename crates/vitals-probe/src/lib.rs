//! vitals-probe
