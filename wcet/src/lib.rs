//! Latency-bound (WCET) analyzer and offline report for rtfuse. See the crate README for the API.

pub mod rta;
