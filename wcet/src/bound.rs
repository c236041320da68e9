//! The per-stream latency bound L_b = Δirq + t_enq + T_sched + RT throttle + backlog + t_cc ("DMA
//! complete" → "the fusion thread reads the descriptor"), from an [`AnalysisInput`].
//!
//! * **Δirq** — the device's interrupt coalescing (`delta_irq_ns`); it also widens the stream's
//!   arrival jitter at the ring, so the busy window sees `jitter_ns + delta_irq_ns`.
//! * **t_enq** — the driver's enqueue (`t_enq_ns`, else the calibrated p99.99).
//! * **T_sched** — the fusion thread's wake-up: the poll period when it spins, the larger of the
//!   calibrated futex and timer wake-up maxima when it may sleep. A thread that spins on a core
//!   it does not own also suffers the kernel's RT throttling, counted as interference (see
//!   [`rt_throttling`]).
//! * **RT throttle** — the kernel's RT-throttle windows in the busy window, where charged: always
//!   to a thread that spins on a shared core, to every thread with [`RtThrottling::Charge`]. It is
//!   interference of the busy window (so the items arriving during a window are in the backlog)
//!   shown as its own term; 0 where not charged.
//! * **backlog** — the wait behind other items: response-time analysis of the fusion thread's
//!   busy window over every stream it serves (sporadic arrival curves with jitter, η(Δ) =
//!   ⌈(Δ+J)/T⌉) plus the other real-time load of equal or higher priority on its core. The
//!   thread may serve the streams in any order, so for stream k every *other* stream counts as
//!   interference and k's own earlier items count in full. The wake-up delay opens the window
//!   (it is a blocking term of the analysis); the backlog term is the waiting time **minus**
//!   T_sched and the throttle windows, so each is shown once, and never twice.
//! * **t_cc** — the cache lines the consumer pulls (`cache_lines`, default 2: descriptor + ring
//!   index) times the calibrated p99.99 cross-core line transfer.
//!
//! Where the frame continues to the GPU, `chain_ns` adds the bridge's ΔL. The same analysis gives
//! the minimum SPSC ring depth for no drops (items of the stream that can be outstanding at once)
//! and the largest sustainable rate of each stream (the rate at which the fusion core's
//! utilisation reaches 1 — at or above it the backlog grows without bound).

use crate::calibrate::Calibration;
use crate::phase::{self, Phase, SetModel};
use crate::rta::{self, BusyWindow, Interference, Task, TaskStatus, Unbounded};
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
    /// Phase-locked: stamped on the ticks of fusion's `Pacer` and released within the phase's
    /// window after its tick (see [`crate::phase`]); `None` for a stream that is only sporadic.
    #[serde(default)]
    pub phase: Option<Phase>,
}

/// Work the fusion thread does once per synchronised set of streams (the projection of a camera
/// and a LiDAR sample), on top of each member's own `service_ns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSet {
    /// Name shown in results ("camera+lidar").
    pub name: String,
    /// Member streams (at least two).
    pub members: Vec<String>,
    /// Work per set, worst case (ns).
    pub service_ns: u64,
    /// The synchroniser only pairs members with equal sensor stamps (the set of a tick).
    #[serde(default)]
    pub equal_stamps: bool,
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
    /// Work done once per synchronised set. Where [`crate::phase`]'s assumptions hold it is
    /// charged once per set; otherwise to every member's item.
    #[serde(default)]
    pub sync_sets: Vec<SyncSet>,
    /// Whether every stream is charged the kernel's RT-throttle window (see [`rt_throttling`]);
    /// a spinning fusion thread on a shared core is charged it either way.
    #[serde(default)]
    pub rt_throttling: RtThrottling,
}

/// Whether the bound covers the kernel's RT throttling (`kernel.sched_rt_runtime_us` below
/// `sched_rt_period_us`): for `period − runtime` of every period no SCHED_FIFO thread runs once the
/// RT load has used its budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtThrottling {
    /// Not charged, except to a fusion thread that spins on a core it does not own (it alone can
    /// use the whole budget); the report says when the bound does not cover it.
    #[default]
    Ignore,
    /// Charged to every stream as a highest-priority interferer: the throttle window
    /// `period − runtime` once per period that the fusion thread's busy window spans (once for a
    /// window shorter than the period).
    Charge,
}

/// The terms of one stream's bound (ns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Interrupt coalescing.
    pub delta_irq_ns: u64,
    /// Driver enqueue.
    pub t_enq_ns: u64,
    /// Wake-up / scheduling latency of the fusion thread.
    pub t_sched_ns: u64,
    /// The kernel's RT-throttle windows in the busy window (0 where not charged); the items
    /// that arrive meanwhile are in `backlog_ns`.
    #[serde(default)]
    pub rt_throttle_ns: u64,
    /// Draining the items ahead (waiting time from the busy window, T_sched and the throttle
    /// windows excluded).
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
            self.rt_throttle_ns,
            self.backlog_ns,
            self.t_cc_ns,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b))
    }

    /// Names and values in the order of the formula.
    pub fn named(&self) -> [(&'static str, u64); 6] {
        [
            ("Δirq", self.delta_irq_ns),
            ("t_enq", self.t_enq_ns),
            ("T_sched", self.t_sched_ns),
            ("RT throttle", self.rt_throttle_ns),
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
    /// How the backlog was bounded.
    #[serde(default)]
    pub method: Method,
    /// The bound without the phase-locked charging of synchronised sets (every member charged the
    /// set's work, as sporadic streams): what the report uses when a run breaks the assumptions.
    /// `None` where this bound needs none, or where that analysis has no bound (see `method`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Box<StreamBound>>,
}

/// How a stream's backlog was bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Method {
    /// Sporadic arrival curves; a synchronised set's work charged to every member's item.
    #[default]
    Sporadic,
    /// Sporadic, with each phase-locked set's work charged once per common tick.
    SetCharged {
        /// The sets charged that way.
        sets: Vec<String>,
    },
    /// A member of a phase-locked set: only the sets whose ticks can reach its release counted.
    PhaseLocked {
        /// Its set.
        set: String,
        /// Sets counted in its busy window.
        sets_counted: u64,
        /// The wait bound without its phase (the set charged once per common tick).
        sporadic_wait_ns: u64,
    },
}

/// What became of one synchronised set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetOutcome {
    /// Set name.
    pub name: String,
    /// Charged once per common tick (phase-locked) or to every member.
    pub phase_locked: bool,
    /// Common-tick period (ns), when phase-locked.
    pub period_ns: Option<u64>,
    /// Why not phase-locked.
    pub reason: Option<String>,
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundReport {
    /// Utilisation of the fusion core (streams plus interfering load).
    pub utilisation: f64,
    /// Per stream, in input order.
    pub streams: Vec<StreamBound>,
    /// Per synchronised set.
    #[serde(default)]
    pub sets: Vec<SetOutcome>,
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

/// The kernel's RT throttling as an interfering task, where it applies: `period − runtime` of
/// every period (highest priority). A fusion thread that spins on a core it does not own is
/// charged it always (it runs until the throttle takes the CPU away, or the fair server does the
/// same for starved threads); any other only with [`RtThrottling::Charge`], which covers the
/// throttle brought on by the combined RT load of the host. One task either way, so the window is
/// never counted twice. `None` where the host does not throttle (`runtime` −1 or ≥ `period`).
pub fn rt_throttling(input: &AnalysisInput) -> Option<Task> {
    let (runtime, period) = (input.host.host.rt_runtime_us, input.host.host.rt_period_us);
    let spins = matches!(input.fusion.wakeup, Wakeup::Spin { .. });
    let charged = input.rt_throttling == RtThrottling::Charge;
    ((charged || spins && !input.fusion.dedicated_core)
        && runtime >= 0
        && period > 0
        && runtime < period)
        .then(|| Task {
            name: RT_THROTTLING.into(),
            c: (period - runtime) as u64 * 1000,
            t: period as u64 * 1000,
            j: 0,
            priority: 100,
            b: 0,
            d: None,
        })
}

/// Name of the [`rt_throttling`] task in busy windows.
pub const RT_THROTTLING: &str = "rt-throttling";

/// Whether the host throttles RT threads and the bound does not charge it to a fusion thread that
/// shares its CPU: what the report must say the bound does not cover.
pub fn throttling_uncovered(input: &AnalysisInput) -> bool {
    let h = &input.host.host;
    h.rt_runtime_us >= 0
        && h.rt_period_us > 0
        && h.rt_runtime_us < h.rt_period_us
        && !input.fusion.dedicated_core
        && rt_throttling(input).is_none()
}

/// Computes every stream's bound.
///
/// A synchronised set whose members are phase-locked ([`crate::phase`]) is charged once per
/// common tick, and each member's wait counts only the sets its phase can meet; every stream then
/// also carries, as `fallback`, the bound with the set charged to every member's item (the
/// sporadic analysis), which holds without the phase assumptions. A stream's bound is the smaller
/// of the two where both apply. Where only the phase-locked analysis closes, its bounds come
/// without a fallback (the report then cannot certify a run that breaks the assumptions).
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
///         ring_depth: 16, cache_lines: 0, phase: None }],
///     fusion: FusionThreadSpec { wakeup: Wakeup::Spin { poll_period_ns: 500 }, priority: 80,
///         dedicated_core: true, blocking_ns: 0 },
///     other_rt_load: vec![],
///     sync_sets: vec![],
///     rt_throttling: RtThrottling::Ignore,
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
    check_sets(input)?;
    let models: Vec<Result<SetModel, String>> = input
        .sync_sets
        .iter()
        .map(|s| phase::model(s, &input.streams, input.fusion.priority))
        .collect();
    let outcomes: Vec<SetOutcome> = models
        .iter()
        .zip(&input.sync_sets)
        .map(|(m, s)| SetOutcome {
            name: s.name.clone(),
            phase_locked: m.is_ok(),
            period_ns: m.as_ref().ok().map(|m| m.task.t),
            reason: m.as_ref().err().cloned(),
        })
        .collect();
    let locked: Vec<SetModel> = models.into_iter().filter_map(Result::ok).collect();
    let plain = analyze_with(input, &[]);
    if locked.is_empty() {
        return plain.map(|p| BoundReport {
            sets: outcomes,
            ..p
        });
    }
    // Either analysis may find no fixed point where the other does: charging every member can
    // overload the thread on paper, a set's wide release window can outgrow its period.
    let (mut phased, plain) = match (analyze_with(input, &locked), plain) {
        (Ok(phased), Ok(plain)) => (phased, Some(plain)),
        (Ok(phased), Err(_)) => (phased, None),
        (Err(_), plain) => {
            return plain.map(|p| BoundReport {
                sets: outcomes,
                ..p
            })
        }
    };
    if let Some(plain) = plain {
        for (b, p) in phased.streams.iter_mut().zip(plain.streams) {
            if p.bound_ns <= b.bound_ns {
                *b = p;
            } else {
                b.fallback = Some(Box::new(p));
            }
        }
    }
    phased.sets = outcomes;
    Ok(phased)
}

/// Set names unique, members known, no stream in two sets.
fn check_sets(input: &AnalysisInput) -> Result<(), BoundError> {
    let mut seen: Vec<&str> = Vec::new();
    for set in &input.sync_sets {
        if set.members.len() < 2 {
            return Err(BoundError::Invalid(format!(
                "set `{}`: needs at least two members",
                set.name
            )));
        }
        for m in &set.members {
            if !input.streams.iter().any(|s| &s.name == m) {
                return Err(BoundError::Invalid(format!(
                    "set `{}`: no stream `{m}`",
                    set.name
                )));
            }
            if seen.contains(&m.as_str()) {
                return Err(BoundError::Invalid(format!(
                    "stream `{m}` is a member of two sets"
                )));
            }
            seen.push(m);
        }
    }
    Ok(())
}

/// Why a busy window did not close, in words.
fn unbounded_reason(status: &TaskStatus) -> String {
    match status {
        TaskStatus::Unbounded {
            reason: Unbounded::Overload { utilisation },
        } => format!("fusion-core utilisation {utilisation:.3} > 1"),
        TaskStatus::Unbounded {
            reason: Unbounded::IterationLimit { jobs },
        } => format!("analysis stopped at its iteration limit ({jobs} jobs in the busy window)"),
        TaskStatus::Unbounded {
            reason: Unbounded::NoFixedPoint { horizon_ns },
        } => format!("busy window does not close below {horizon_ns} ns"),
        _ => "no response time".into(),
    }
}

/// The analysis with the sets in `locked` charged once per common tick, every other set's work
/// added to each of its members' items.
fn analyze_with(input: &AnalysisInput, locked: &[SetModel]) -> Result<BoundReport, BoundError> {
    let t_sched = t_sched(input)?;
    let blocking = input.fusion.blocking_ns.saturating_add(t_sched);
    let set_of = |k: usize| locked.iter().find(|m| m.members.contains(&k));
    let mut items = Vec::with_capacity(input.streams.len());
    for (k, s) in input.streams.iter().enumerate() {
        let t = period_ns(s)?;
        let per_set = if set_of(k).is_some() {
            0
        } else {
            input
                .sync_sets
                .iter()
                .filter(|set| set.members.contains(&s.name))
                .map(|set| set.service_ns)
                .sum()
        };
        let c = s.service_ns.saturating_add(per_set);
        if c > t {
            return Err(BoundError::Unschedulable {
                stream: s.name.clone(),
                reason: format!("service {c} ns exceeds the period {t} ns"),
            });
        }
        items.push(Task {
            name: s.name.clone(),
            c,
            t,
            j: s.jitter_ns.saturating_add(s.delta_irq_ns),
            priority: input.fusion.priority,
            b: blocking,
            d: None,
        });
    }
    let throttling = rt_throttling(input);
    let hp_load: Vec<&Task> = input
        .other_rt_load
        .iter()
        .filter(|t| t.priority >= input.fusion.priority)
        .chain(throttling.as_ref())
        .chain(locked.iter().map(|m| &m.task))
        .collect();
    let utilisation = rta::utilisation(items.iter().chain(hp_load.iter().copied()));
    let everything: Vec<Task> = items
        .iter()
        .chain(hp_load.iter().copied())
        .cloned()
        .collect();
    let horizon = rta::default_horizon(&everything);
    let all: Vec<&Task> = everything.iter().collect();
    // The longest busy period of the fusion thread, which bounds how far back a member's window
    // can start (None: it does not close, and the members keep their sporadic bounds).
    let busy_period = phase::least_fixed_point(blocking, horizon, |w| {
        blocking.saturating_add(phase::demand(&all, w))
    });
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
        let (Some(resp), Some(mut busy_window)) = (r.response_from_release_ns, r.busy_window)
        else {
            return Err(BoundError::Unschedulable {
                stream: s.name.clone(),
                reason: unbounded_reason(&r.status),
            });
        };
        // Waiting before the item is dequeued: its response minus its own service.
        let mut wait = resp.saturating_sub(tua.c);
        let mut method = if locked.is_empty() {
            Method::Sporadic
        } else {
            Method::SetCharged {
                sets: locked.iter().map(|m| m.name.clone()).collect(),
            }
        };
        let own_set = locked.iter().position(|m| m.members.contains(&k));
        if let (Some(si), Some(bp)) = (own_set, busy_period) {
            let set = &locked[si];
            // Every task but the member's own set, which `member_wait` counts by phase.
            let skip = items.len() + hp_load.len() - locked.len() + si;
            let others: Vec<&Task> = everything
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != skip)
                .map(|(_, t)| t)
                .collect();
            if let Some((w, n)) = phase::member_wait(set, s, &others, blocking, bp, horizon) {
                if w < wait {
                    method = Method::PhaseLocked {
                        set: set.name.clone(),
                        sets_counted: n,
                        sporadic_wait_ns: wait,
                    };
                    wait = w;
                    busy_window = member_window(w, blocking, tua, &others, set, n);
                }
            }
        }
        out.push(stream_bound(
            input,
            s,
            tua,
            wait,
            t_sched,
            busy_window,
            method,
            {
                let set_u = set_of(k).map_or(0.0, |m| m.task.c as f64 / m.task.t as f64);
                let per_item = tua.c + set_of(k).map_or(0, |m| m.task.c);
                (utilisation - tua.c as f64 / tua.t as f64 - set_u, per_item)
            },
            throttling.as_ref(),
        )?);
    }
    Ok(BoundReport {
        utilisation,
        streams: out,
        sets: Vec::new(),
    })
}

/// The busy window of a member's phase-locked wait, for the report.
fn member_window(
    w: u64,
    blocking: u64,
    tua: &Task,
    others: &[&Task],
    set: &SetModel,
    sets: u64,
) -> BusyWindow {
    let mut interference: Vec<Interference> = others
        .iter()
        .filter(|t| t.name != tua.name)
        .map(|t| {
            let n = rta::eta(w, t.t, t.j);
            Interference {
                task: t.name.clone(),
                jobs: n,
                time_ns: n.saturating_mul(t.c),
            }
        })
        .collect();
    interference.push(Interference {
        task: set.name.clone(),
        jobs: sets,
        time_ns: sets.saturating_mul(set.task.c),
    });
    BusyWindow {
        length_ns: w,
        jobs: rta::eta(w, tua.t, tua.j).max(1),
        worst_q: 0,
        blocking_ns: blocking,
        interference,
        per_q: Vec::new(),
    }
}

/// The terms, ring depth, rate limit and notes of one stream from its wait. `others` is the
/// utilisation of everything but this stream's items and its set, `per_item` its work per item
/// with its set's.
#[allow(clippy::too_many_arguments)]
fn stream_bound(
    input: &AnalysisInput,
    s: &StreamSpec,
    tua: &Task,
    wait: u64,
    t_sched: u64,
    busy_window: BusyWindow,
    method: Method,
    (others_u, per_item): (f64, u64),
    throttling: Option<&Task>,
) -> Result<StreamBound, BoundError> {
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
    // The throttle windows the busy window holds, shown as their own term; the wait is split,
    // not added to, so nothing is counted twice.
    let throttle = busy_window
        .interference
        .iter()
        .filter(|i| i.task == RT_THROTTLING)
        .map(|i| i.time_ns)
        .sum::<u64>()
        .min(wait.saturating_sub(t_sched));
    let terms = Terms {
        delta_irq_ns: s.delta_irq_ns,
        t_enq_ns: t_enq,
        t_sched_ns: t_sched.min(wait),
        rt_throttle_ns: throttle,
        backlog_ns: wait.saturating_sub(t_sched).saturating_sub(throttle),
        t_cc_ns: t_cc,
    };
    let bound = terms.total();
    let min_ring_depth = rta::eta_closed(wait, tua.t, tua.j);
    let max_rate_hz = if per_item == 0 {
        f64::INFINITY
    } else {
        ((1.0 - others_u) * 1e9 / per_item as f64).max(0.0)
    };
    let mut notes = Vec::new();
    if s.ring_depth < min_ring_depth {
        notes.push(format!(
            "ring depth {} is below the {min_ring_depth} items that can be outstanding: drops possible",
            s.ring_depth
        ));
    }
    if let Some(t) = throttling {
        notes.push(format!(
            "{}: the kernel's RT throttling ({} µs of every {} µs go to other threads) is \
             counted as interference",
            if input.rt_throttling == RtThrottling::Charge {
                "[report] rt_throttling = \"charge\""
            } else {
                "spinning on a shared core"
            },
            t.c / 1000,
            t.t / 1000
        ));
    }
    if input.fusion.dedicated_core
        && input
            .other_rt_load
            .iter()
            .any(|t| t.priority >= input.fusion.priority)
    {
        notes.push(
            "fusion core declared dedicated, yet other RT load of equal or higher priority was \
             given; it is counted"
                .into(),
        );
    }
    Ok(StreamBound {
        name: s.name.clone(),
        terms,
        bound_ns: bound,
        chain_ns: s.gpu_delta_l_ns.map(|g| bound.saturating_add(g)),
        busy_window,
        min_ring_depth,
        ring_depth: s.ring_depth,
        max_rate_hz,
        notes,
        method,
        fallback: None,
    })
}
