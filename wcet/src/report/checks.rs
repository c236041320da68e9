//! What the report checks beyond the verdict: the samples behind it, the phase-locked
//! assumptions of synchronised sets, the release jitter the arrival curves assume, and fusion
//! steps longer than the work per sample the bound assumes.

use super::us;
use crate::analyze::{Observations, StageStats, StreamObservation};
use crate::bound::{AnalysisInput, BoundReport, Method, StreamBound, SyncSet};
use crate::phase::{self, ReleaseObservation, SetCheck};
use rtfuse_trace::TraceReader;
use std::collections::BTreeMap;

/// A duration in the largest unit that keeps it readable ("9.3 h", "4.2 min", "250 s").
pub(super) fn readable_duration(s: f64) -> String {
    if s >= 86_400.0 * 2.0 {
        format!("{:.1} days", s / 86_400.0)
    } else if s >= 3_600.0 {
        format!("{:.1} h", s / 3_600.0)
    } else if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.0} s")
    }
}

/// Why a stream's verdict rests on fewer samples than the target, or `None` when it does not.
pub(super) fn shortfall(name: &str, rate_hz: f64, samples: u64, target: u64) -> Option<String> {
    (samples < target).then(|| {
        format!(
            "{name} at {rate_hz} Hz: {target} samples would take {} (this run: {samples})",
            readable_duration(target as f64 / rate_hz)
        )
    })
}

/// The bounds the verdicts use: where a phase-locked set (of `locked`) breaks its assumptions
/// on these traces, every stream falls back to its sporadic bound.
pub(super) fn bounds_in_force(
    input: &AnalysisInput,
    bounds: &BoundReport,
    locked: &[SyncSet],
    traces: &[TraceReader],
    releases: &BTreeMap<String, ReleaseObservation>,
) -> (Vec<StreamBound>, Vec<SetCheck>) {
    let checks: Vec<SetCheck> = locked
        .iter()
        .map(|set| phase::check_traces(set, &input.streams, traces, releases))
        .collect();
    let broken: Vec<&str> = checks
        .iter()
        .filter(|c| !c.holds)
        .map(|c| c.set.as_str())
        .collect();
    let used = bounds
        .streams
        .iter()
        .map(|b| match (&b.fallback, broken.is_empty()) {
            (Some(f), false) => {
                let mut f = (**f).clone();
                f.notes.push(format!(
                    "the traces break the phase-locked assumptions of {}: the sporadic bound is used",
                    broken.join(", ")
                ));
                f
            }
            _ => b.clone(),
        })
        .collect();
    (used, checks)
}

/// Streams whose bound needs a phase-locked set's assumptions, broken by these traces, and that
/// have no sporadic bound to fall back to.
pub(super) fn unbacked(used: &[StreamBound], checks: &[SetCheck]) -> Vec<String> {
    if checks.iter().all(|c| c.holds) {
        return Vec::new();
    }
    used.iter()
        .filter(|b| b.method != Method::Sporadic)
        .map(|b| {
            format!(
                "stream `{}`: its bound rests on phase-locked assumptions these traces break, and \
                 without them the analysis finds no bound",
                b.name
            )
        })
        .collect()
}

/// Phase-locked streams whose stamps are not ticks, or whose releases spread wider than the
/// jitter their arrival curves assume (a jitter of at least [`phase::pacer_jitter_ns`] holds
/// however late the driver runs).
pub(super) fn jitter_findings(
    input: &AnalysisInput,
    releases: &BTreeMap<String, ReleaseObservation>,
) -> Vec<String> {
    let off_tick = input.streams.iter().filter_map(|s| {
        let o = releases.get(&s.name).filter(|o| o.off_tick > 0)?;
        Some(format!(
            "stream `{}`: {} sensor stamps are not ticks of {} Hz, yet its arrival curve and \
             phase assume fusion's Pacer",
            s.name, o.off_tick, s.rate_hz
        ))
    });
    let wide = input.streams.iter().filter_map(|s| {
        let o = releases.get(&s.name).filter(|o| o.records > 0)?;
        let spread = o.max_ns - o.min_ns;
        let assumed = s.jitter_ns.saturating_add(s.delta_irq_ns);
        let period = (1e9 / s.rate_hz).floor() as u64;
        (spread > assumed && s.jitter_ns < phase::pacer_jitter_ns(period)).then(|| {
            format!(
                "stream `{}`: tick → DMA complete spreads {:.3} ms ({:.3}–{:.3} ms), wider than \
                     the release jitter of {:.3} ms its arrival curve assumes",
                s.name,
                spread as f64 / 1e6,
                o.min_ns as f64 / 1e6,
                o.max_ns as f64 / 1e6,
                assumed as f64 / 1e6
            )
        })
    });
    off_tick.chain(wide).collect()
}

/// What the traces say about the fusion steps of one stream against the work per sample the
/// bound assumes.
struct Steps<'a> {
    /// The work per sample the bound assumes (the stream's own, or its set's).
    assumed: u64,
    /// The longest wall-clock span of a step.
    longest: u64,
    /// The CPU time per step, where the traces measured it.
    cpu: Option<&'a StageStats>,
}

fn steps<'a>(
    input: &AnalysisInput,
    name: &str,
    obs: Option<&'a StreamObservation>,
) -> Option<Steps<'a>> {
    let s = input.streams.iter().find(|s| s.name == name)?;
    let set = input
        .sync_sets
        .iter()
        .filter(|set| set.members.iter().any(|m| m == name))
        .map(|set| set.service_ns)
        .max()
        .unwrap_or(0);
    let stage = |stage: &str| obs.and_then(|o| o.stages.iter().find(|st| st.stage == stage));
    Some(Steps {
        assumed: s.service_ns.max(set),
        longest: stage("fuse")?.max_ns,
        cpu: stage("fuse_cpu"),
    })
}

/// Streams on which a fusion step was charged more CPU time than the work per sample the bound
/// assumes: the traces do not back that figure, so the report is not certified.
pub(super) fn work_not_backed(input: &AnalysisInput, obs: &Observations) -> Vec<String> {
    obs.streams
        .iter()
        .filter_map(|o| {
            let st = steps(input, &o.name, Some(o))?;
            let cpu = st.cpu.filter(|c| c.max_ns > st.assumed)?;
            Some(format!(
                "stream `{}`: the traces do not back the {} of work per sample the bound assumes: \
                 a fusion step was charged {} of CPU time (p99.9 {})",
                o.name,
                us(st.assumed),
                us(cpu.max_ns),
                us(cpu.p999_ns)
            ))
        })
        .collect()
}

/// A note when the traces hold a fusion step longer than the work per sample the bound assumes.
/// Where the traces measured the thread's CPU time per step, it tells the causes apart: a span
/// longer than its CPU time is the thread being preempted or stalled (the verdict shows what it
/// cost); CPU time above the assumed work is either more work than declared or interrupts charged
/// to the thread, which the traces cannot tell apart, and the note says so first.
pub(super) fn longer_steps(
    input: &AnalysisInput,
    name: &str,
    obs: Option<&StreamObservation>,
) -> Option<String> {
    let Steps {
        assumed,
        longest,
        cpu,
    } = steps(input, name, obs)?;
    let host = match input.host.host.irq_time_accounting {
        Some(true) => " (this host accounts interrupt time apart, so it is unlikely here)",
        Some(false) => " (this host's kernel does)",
        None => "",
    };
    match cpu {
        Some(cpu) if cpu.max_ns > assumed => Some(format!(
            "WORK NOT BACKED: the fusion thread was charged up to {} of CPU time for one step of \
             this stream (p99 {}, p99.9 {}), more than the {} of work per sample the bound \
             assumes. Either that service time (node.timing.<stream>.service_us) is too small, or \
             interrupts taken on the thread's CPU were charged to it (kernels without \
             CONFIG_IRQ_TIME_ACCOUNTING do that{host}); the traces cannot tell which, so the \
             bound is not certified. The longest step's wall-clock span was {}",
            us(cpu.max_ns),
            us(cpu.p99_ns),
            us(cpu.p999_ns),
            us(assumed),
            us(longest)
        )),
        Some(cpu) => (longest > assumed).then(|| {
            format!(
                "the longest fusion step in the traces took {} against the {} the bound assumes, \
                 but no step was charged more than {} of CPU time: the rest is the thread being \
                 preempted or stalled, not work",
                us(longest),
                us(assumed),
                us(cpu.max_ns)
            )
        }),
        None => (longest > assumed).then(|| {
            format!(
                "the longest fusion step in the traces took {} against the {} the bound assumes \
                 (the traces do not give the CPU time per step, which would tell work from \
                 interruption)",
                us(longest),
                us(assumed)
            )
        }),
    }
}
