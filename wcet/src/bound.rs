//! The per-stream latency bound L_b = Δirq + t_enq + T_sched + backlog + t_cc ("DMA complete" →
//! "the fusion thread reads the descriptor"), from an [`AnalysisInput`].
//!
//! * **Δirq** — the device's interrupt coalescing (`delta_irq_ns`); it also widens the stream's
//!   arrival jitter at the ring, so the busy window sees `jitter_ns + delta_irq_ns`.
//! * **t_enq** — the driver's enqueue (`t_enq_ns`, else the calibrated p99.99).
//! * **T_sched** — the fusion thread's wake-up: the poll period when it spins, the larger of the
//!   calibrated futex and timer wake-up maxima when it may sleep. A thread that spins on a core
//!   it does not own also suffers the kernel's RT throttling, counted as interference (see
//!   [`rt_throttling`]).
//! * **backlog** — the wait behind other items: response-time analysis of the fusion thread's
//!   busy window over every stream it serves (sporadic arrival curves with jitter, η(Δ) =
//!   ⌈(Δ+J)/T⌉) plus the other real-time load of equal or higher priority on its core. The
//!   thread may serve the streams in any order, so for stream k every *other* stream counts as
//!   interference and k's own earlier items count in full. The wake-up delay opens the window
//!   (it is a blocking term of the analysis); the backlog term is the waiting time **minus**
//!   T_sched, so the wake-up is shown once, as T_sched, and never twice.
//! * **t_cc** — the cache lines the consumer pulls (`cache_lines`, default 2: descriptor + ring
//!   index) times the calibrated p99.99 cross-core line transfer.
//!
//! Where the frame continues to the GPU, `chain_ns` adds the bridge's ΔL. The same analysis gives
//! the minimum SPSC ring depth for no drops (items of the stream that can be outstanding at once)
//! and the largest sustainable rate of each stream (the rate at which the fusion core's
//! utilisation reaches 1 — at or above it the backlog grows without bound).

use crate::calibrate::Calibration;
use crate::rta::{self, BusyWindow, Task, TaskStatus, Unbounded};
use serde::{Deserialize, Serialize};

/// One stream served by the fusion thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// Stream (channel) name; matches the trace header's stream name.
    pub name: String,
    /// Nominal rate (Hz).
    pub rate_hz: f64,
    /// Release jitter of "DMA complete" around the nominal period (ns).
    #[serde(default)]
    pub jitter_ns: u64,
    /// Payload size (bytes), for the report.
    #[serde(default)]
    pub payload_bytes: u64,
    /// Fusion-thread work per sample of this stream (ns), worst case.
    pub service_ns: u64,
    /// Interrupt coalescing of the device (ns); 0 for a synthetic driver.
    #[serde(default)]
    pub delta_irq_ns: u64,
    /// Driver enqueue cost override (ns); `None` uses the calibrated p99.99.
    #[serde(default)]
    pub t_enq_ns: Option<u64>,
    /// The GPU bridge's ΔL for the chosen path, where the frame continues to the GPU.
    #[serde(default)]
    pub gpu_delta_l_ns: Option<u64>,
    /// Configured descriptor-ring depth.
    pub ring_depth: u64,
    /// Cache lines the consumer pulls per item (descriptor + ring index).
    #[serde(default = "default_cache_lines")]
    pub cache_lines: u32,
}

fn default_cache_lines() -> u32 {
    2
}

/// How the fusion thread waits for work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wakeup {
    /// Busy-polls the rings every `poll_period_ns`.
    Spin {
        /// Poll period.
        poll_period_ns: u64,
    },
    /// Sleeps on a futex and is woken by the producer.
    Futex,
    /// Spins for a while, then sleeps on a futex (the worst case is the futex).
    SpinThenFutex,
}

/// The fusion thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionThreadSpec {
    /// Wake-up policy.
    pub wakeup: Wakeup,
    /// SCHED_FIFO priority.
    pub priority: i32,
    /// Whether it runs alone on its (isolated) core.
    #[serde(default)]
    pub dedicated_core: bool,
    /// Blocking by lower-priority non-preemptive work on its core (ns).
    #[serde(default)]
    pub blocking_ns: u64,
}

/// Everything the analysis needs (the `launch` crate maps its config into this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisInput {
    /// Calibration of this host.
    #[serde(default)]
    pub host: Calibration,
    /// Streams the fusion thread serves.
    pub streams: Vec<StreamSpec>,
    /// The fusion thread.
    pub fusion: FusionThreadSpec,
    /// Other real-time threads on the fusion thread's core; those of equal or higher priority
    /// interfere.
    #[serde(default)]
    pub other_rt_load: Vec<Task>,
}

/// The five terms of one stream's bound (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Interrupt coalescing.
    pub delta_irq_ns: u64,
    /// Driver enqueue.
    pub t_enq_ns: u64,
    /// Wake-up / scheduling latency of the fusion thread.
    pub t_sched_ns: u64,
    /// Draining the items ahead (waiting time from the busy window, T_sched excluded).
    pub backlog_ns: u64,
    /// Cache-line pulls.
    pub t_cc_ns: u64,
}

impl Terms {
    /// The sum, L_b.
    pub fn total(&self) -> u64 {
        [
            self.delta_irq_ns,
            self.t_enq_ns,
            self.t_sched_ns,
            self.backlog_ns,
            self.t_cc_ns,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Names and values in the order of the formula.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("Δirq", self.delta_irq_ns),
            ("t_enq", self.t_enq_ns),
            ("T_sched", self.t_sched_ns),
            ("backlog", self.backlog_ns),
            ("t_cc", self.t_cc_ns),
        ]
    }
}

/// One stream's bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamBound {
    /// Stream name.
    pub name: String,
    /// The terms.
    pub terms: Terms,
    /// L_b, the sum of the terms.
    pub bound_ns: u64,
    /// L_b plus the GPU bridge's ΔL, where the frame continues to the GPU.
    pub chain_ns: Option<u64>,
    /// The fusion thread's busy window as seen by this stream (T_sched counted in it as blocking).
    pub busy_window: BusyWindow,
    /// Most items of this stream outstanding at once: the minimum ring depth for no drops.
    pub min_ring_depth: u64,
    /// The configured ring depth.
    pub ring_depth: u64,
    /// Largest sustainable rate of this stream (Hz), others unchanged.
    pub max_rate_hz: f64,
    /// Remarks (ring too shallow, dedicated core with other load, …).
    pub notes: Vec<String>,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundReport {
    /// Utilisation of the fusion core (streams plus interfering load).
    pub utilisation: f64,
    /// Per stream, in input order.
    pub streams: Vec<StreamBound>,
}

/// Why no bound could be given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BoundError {
    /// The input is malformed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A calibration figure the bound needs was not measured.
    #[error("calibration lacks {0} (run `wcet calibrate` on this host)")]
    MissingCalibration(&'static str),
    /// The fusion thread's busy window does not close: no bound exists.
    #[error("stream `{stream}`: unschedulable, no bound exists ({reason})")]
    Unschedulable {
        /// The stream.
        stream: String,
        /// Why.
        reason: String,
    },
}

fn period_ns(s: &StreamSpec) -> Result<u64, BoundError> {
    if !(s.rate_hz.is_finite() && s.rate_hz > 0.0) {
        return Err(BoundError::Invalid(format!(
            "stream `{}`: rate_hz must be > 0",
            s.name
        )));
    }
    // The minimum inter-arrival time, rounded down (the safe side).
    let t = (1e9 / s.rate_hz).floor();
    if t < 1.0 {
        return Err(BoundError::Invalid(format!(
            "stream `{}`: rate above 1 GHz",
            s.name
        )));
    }
    Ok(t as u64)
}

/// The maximum of a calibrated figure.
fn need(stat: &crate::calibrate::Stat, what: &'static str) -> Result<u64, BoundError> {
    if stat.samples == 0 {
        Err(BoundError::MissingCalibration(what))
    } else {
        Ok(stat.max_ns)
    }
}

/// The p99.99 of a per-operation cost (see the [`crate::calibrate`] docs for why not the max).
fn need_op(stat: &crate::calibrate::Stat, what: &'static str) -> Result<u64, BoundError> {
    need(stat, what).map(|max| {
        if stat.p9999_ns == 0 {
            max
        } else {
            stat.p9999_ns
        }
    })
}

/// The fusion thread's wake-up term.
///
/// # Errors
/// A needed calibration figure is missing.
pub fn t_sched(input: &AnalysisInput) -> Result<u64, BoundError> {
    match input.fusion.wakeup {
        Wakeup::Spin { poll_period_ns } => Ok(poll_period_ns),
        Wakeup::Futex | Wakeup::SpinThenFutex => {
            let futex = need(&input.host.futex_wakeup, "futex wake-up latency")?;
            let timer = need(&input.host.fifo_wakeup, "SCHED_FIFO wake-up latency")?;
            Ok(futex.max(timer))
        }
    }
}

/// The kernel's RT throttling as an interfering task, where it applies: a fusion thread that
/// spins on a core it does not own runs until the throttle takes the CPU away for
/// `period − runtime` every period (or the fair server does the same for starved threads).
/// A sleeping thread or one on a dedicated core is not charged.
pub fn rt_throttling(input: &AnalysisInput) -> Option<Task> {
    let (runtime, period) = (input.host.host.rt_runtime_us, input.host.host.rt_period_us);
    let spins = matches!(input.fusion.wakeup, Wakeup::Spin { .. });
    (spins && !input.fusion.dedicated_core && runtime >= 0 && period > 0 && runtime < period).then(
        || Task {
            name: "rt-throttling".into(),
            c: (period - runtime) as u64 * 1000,
            t: period as u64 * 1000,
            j: 0,
            priority: 100,
            b: 0,
            d: None,
        },
    )
}

/// Computes every stream's bound.
///
/// # Errors
/// Malformed input, a missing calibration figure, or an unschedulable fusion thread (then no
/// stream gets a number).
///
/// # Examples
/// ```
/// use wcet::bound::*;
/// let input = AnalysisInput {
///     host: Default::default(),
///     streams: vec![StreamSpec { name: "imu".into(), rate_hz: 1000.0, jitter_ns: 0, payload_bytes: 64,
///         service_ns: 2_000, delta_irq_ns: 0, t_enq_ns: Some(100), gpu_delta_l_ns: None,
///         ring_depth: 16, cache_lines: 0 }],
///     fusion: FusionThreadSpec { wakeup: Wakeup::Spin { poll_period_ns: 500 }, priority: 80,
///         dedicated_core: true, blocking_ns: 0 },
///     other_rt_load: vec![],
/// };
/// let r = analyze(&input).unwrap();
/// assert_eq!(r.streams[0].bound_ns, 100 + 500); // nothing ahead of a lone stream's item
/// ```
pub fn analyze(input: &AnalysisInput) -> Result<BoundReport, BoundError> {
    if input.streams.is_empty() {
        return Err(BoundError::Invalid("no streams".into()));
    }
    for t in &input.other_rt_load {
        rta::check_task(t).map_err(|e| BoundError::Invalid(e.to_string()))?;
    }
    let t_sched = t_sched(input)?;
    let mut items = Vec::with_capacity(input.streams.len());
    for s in &input.streams {
        let t = period_ns(s)?;
        if s.service_ns > t {
            return Err(BoundError::Unschedulable {
                stream: s.name.clone(),
                reason: format!("service {} ns exceeds the period {t} ns", s.service_ns),
            });
        }
        items.push(Task {
            name: s.name.clone(),
            c: s.service_ns,
            t,
            j: s.jitter_ns.saturating_add(s.delta_irq_ns),
            priority: input.fusion.priority,
            b: input.fusion.blocking_ns.saturating_add(t_sched),
            d: None,
        });
    }
    let throttling = rt_throttling(input);
    let hp_load: Vec<&Task> = input
        .other_rt_load
        .iter()
        .filter(|t| t.priority >= input.fusion.priority)
        .chain(throttling.as_ref())
        .collect();
    let utilisation = rta::utilisation(items.iter().chain(hp_load.iter().copied()));
    let everything: Vec<Task> = items
        .iter()
        .chain(hp_load.iter().copied())
        .cloned()
        .collect();
    let horizon = rta::default_horizon(&everything);
    let mut out = Vec::with_capacity(items.len());
    for (k, (s, tua)) in input.streams.iter().zip(&items).enumerate() {
        let hep: Vec<&Task> = items
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != k)
            .map(|(_, t)| t)
            .chain(hp_load.iter().copied())
            .collect();
        let r = rta::analyze_task(tua, &hep, horizon);
        let (Some(resp), Some(busy_window)) = (r.response_from_release_ns, r.busy_window) else {
            let reason = match r.status {
                TaskStatus::Unbounded {
                    reason: Unbounded::Overload { utilisation },
                } => {
                    format!("fusion-core utilisation {utilisation:.3} > 1")
                }
                TaskStatus::Unbounded {
                    reason: Unbounded::IterationLimit { jobs },
                } => {
                    format!(
                        "analysis stopped at its iteration limit ({jobs} jobs in the busy window)"
                    )
                }
                TaskStatus::Unbounded {
                    reason: Unbounded::NoFixedPoint { horizon_ns },
                } => {
                    format!("busy window does not close below {horizon_ns} ns")
                }
                _ => "no response time".into(),
            };
            return Err(BoundError::Unschedulable {
                stream: s.name.clone(),
                reason,
            });
        };
        // Waiting before the item is dequeued: its response minus its own service.
        let wait = resp.saturating_sub(s.service_ns);
        let t_enq = match s.t_enq_ns {
            Some(v) => v,
            None => need_op(&input.host.enqueue, "enqueue cost")?,
        };
        let t_cc = if s.cache_lines == 0 {
            0
        } else {
            need_op(&input.host.cache_line_transfer, "cache-line transfer time")?
                .saturating_mul(u64::from(s.cache_lines))
        };
        let terms = Terms {
            delta_irq_ns: s.delta_irq_ns,
            t_enq_ns: t_enq,
            t_sched_ns: t_sched.min(wait),
            backlog_ns: wait.saturating_sub(t_sched),
            t_cc_ns: t_cc,
        };
        let bound = terms.total();
        let min_ring_depth = rta::eta_closed(wait, tua.t, tua.j);
        let others_u = utilisation - s.service_ns as f64 / tua.t as f64;
        let max_rate_hz = if s.service_ns == 0 {
            f64::INFINITY
        } else {
            ((1.0 - others_u) * 1e9 / s.service_ns as f64).max(0.0)
        };
        let mut notes = Vec::new();
        if s.ring_depth < min_ring_depth {
            notes.push(format!(
                "ring depth {} is below the {min_ring_depth} items that can be outstanding: drops possible",
                s.ring_depth
            ));
        }
        if let Some(t) = &throttling {
            notes.push(format!(
                "spinning on a shared core: the kernel's RT throttling ({} µs of every {} µs go to \
                 other threads) is counted as interference",
                t.c / 1000,
                t.t / 1000
            ));
        }
        if input.fusion.dedicated_core && !input.other_rt_load.is_empty() {
            notes.push(
                "fusion core declared dedicated, yet other RT load was given; it is counted".into(),
            );
        }
        out.push(StreamBound {
            name: s.name.clone(),
            terms,
            bound_ns: bound,
            chain_ns: s.gpu_delta_l_ns.map(|g| bound.saturating_add(g)),
            busy_window,
            min_ring_depth,
            ring_depth: s.ring_depth,
            max_rate_hz,
            notes,
        });
    }
    Ok(BoundReport {
        utilisation,
        streams: out,
    })
}
