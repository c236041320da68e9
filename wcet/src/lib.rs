//! Latency-bound (WCET) analyzer and offline report for rtfuse.
//!
//! * [`rta`] — fixed-priority response-time analysis (busy windows, jitter, blocking).
//! * [`bound`] — the per-stream bound L_b = Δirq + t_enq + T_sched + backlog + t_cc.
//! * [`phase`] — synchronised sets on phase-locked streams: a set's work charged once per set.
//! * [`calibrate`] — measuring t_cc, t_enq and wake-up latencies on this host.
//! * [`evt`] — extreme-value statistics (GEV, GPD, independence tests, pWCET).
//! * [`analyze`] — per stream and stage statistics from traces, certification.
//! * [`stall`] — intervals in which the fusion thread made no progress while work waited.
//! * [`report`] — the report as HTML (inline SVG plots), Markdown and JSON.
//!
//! See the crate README for the API the `launch` crate uses.

pub mod analyze;
pub mod bound;
pub mod calibrate;
pub mod evt;
pub mod numeric;
pub mod phase;
mod plots;
pub mod report;
pub mod rta;
pub mod stall;
