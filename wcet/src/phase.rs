//! Synchronised sets on phase-locked streams: the work the fusion thread does once per *set* (the
//! projection of a camera + LiDAR pair) is charged once per set, not once per member, and a
//! member's wait counts only the sets whose ticks can reach it.
//!
//! # The model and what it assumes
//! A stream with a [`Phase`] is driven by fusion's `Pacer`: its sensor stamps are the ticks
//! `round(k·10⁹/rate)` of one `CLOCK_MONOTONIC` shared by every phased stream, and "DMA complete"
//! of the sample of tick τ lies in `[τ + φ, τ + φ + J + Δirq]` (φ and J are the phase's
//! `offset_ns` and `jitter_ns`).
//! A [`SyncSet`] whose synchroniser pairs only members with **equal** stamps, and whose members
//! all have integer rates, forms its sets at the *common ticks*, multiples of `T_F = 10⁹/gcd(rates)`
//! ns. Its work `C_F` starts once the last member of the set has been processed. The rest is the
//! model of [`crate::bound`]: one thread, work-conserving, items of one stream in ring order,
//! anything else in any order, the wake-up `B` opening each busy period.
//!
//! # Why the charges are sound
//! Let `t0` be the start of the busy period in which the fusion thread starts item `x` at `s_x`
//! (the thread had nothing pending at `t0`: no item, no set work).
//!
//! * **Sets in a window.** Set work executed in `[t0, t0 + w)` belongs to a set whose last member
//!   was processed in the window, so that member was released in `[t0, t0 + w)` (it was not
//!   pending at `t0`). Its tick σ then lies in `[t0 − D_hi, t0 + w − D_lo)` with `D_lo = min φ`,
//!   `D_hi = max (φ + J + Δirq)` over the members: at most `⌈(w + D_hi − D_lo)/T_F⌉` common ticks.
//!   So the set work is a sporadic task `F` with period `T_F` and jitter `D_hi − D_lo` — for every
//!   stream, members or not ([`SetModel::task`]).
//! * **A member's own phase.** If `x` is a member released at its tick `τ_x` (plus `[φ_x, φ_x +
//!   J_x]`), then `t0 ≥ a_x − BP ≥ τ_x + φ_x − BP` where `BP` bounds every busy period, and
//!   `s_x ≤ τ_x + φ_x + J_x + w` for the window `w = s_x − t0`. The sets that can execute before
//!   `s_x` have common ticks `p` (relative to `τ_x`) in `[φ_x − BP − D_hi, φ_x + J_x + w − D_lo)`,
//!   and not `p = 0` when `τ_x` is itself a common tick: that set needs `x`, which is not yet
//!   processed. The common ticks relative to `τ_x` are fixed by the phase of `τ_x` in the
//!   hyperperiod, so the count is exact up to the window ends ([`member_wait`]). With a busy period
//!   and jitter short against the periods this is zero: the own pair's projection never delays
//!   the camera or the LiDAR, which is what a sporadic analysis cannot see.
//!
//! Both are least fixed points of `w = B + Σ η_i(w)·C_i + C_F·N(w)` with non-decreasing right-hand
//! sides: the busy window cannot end before the work released in it is done (Lehoczky 1990;
//! for offsets and transactions, K. Tindell, "Adding time-offsets to schedulability analysis",
//! YCS 221, 1994, and J. C. Palencia, M. González Harbour, RTSS 1998; the precedence of a set's
//! work after its members is what lets `x`'s own set out).
//!
//! Whether a run met the assumptions is checked on its traces by [`check_traces`]; the report
//! falls back to the sporadic bound (every member charged `C_F`) when it did not.

use crate::bound::{StreamSpec, SyncSet};
use crate::rta::{eta, Task};
use rtfuse_trace::TraceReader;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Ticks are rounded to whole nanoseconds: every window is widened by this much on each side.
const SLOP_NS: f64 = 2.0;

/// A phase-locked stream: stamped on the ticks of fusion's `Pacer`, released a fixed time after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Least time from the tick to "DMA complete" (ns): the driver's fill of the sample (the
    /// synthetic camera renders its frame).
    #[serde(default)]
    pub offset_ns: u64,
    /// Width of the release window beyond the offset (ns): "DMA complete" lies in
    /// `[tick + offset, tick + offset + jitter + Δirq]`. This is about *where* releases fall; the
    /// stream's `jitter_ns` is about how many fit in a window (its arrival curve).
    #[serde(default)]
    pub jitter_ns: u64,
}

/// The arrival-curve jitter that holds for any stream driven by fusion's `Pacer`, however late
/// its driver runs: `2·T + 3` ns for the floor period `T`.
///
/// After a stall the `Pacer` serves at most the latest missed tick, so every sample but the
/// first one released in a window `[t, t + Δ)` has a tick in `(t − T − 1, t + Δ)` (its driver
/// read the clock after publishing the previous sample, at or after `t`, and the tick it serves is
/// within a period of that reading); ticks are whole periods apart up to a nanosecond of
/// rounding, so at most `1 + ⌈(Δ + T + 2)/T⌉ ≤ ⌈(Δ + 2T + 3)/T⌉` samples fall in the window.
///
/// # Examples
/// ```
/// use wcet::{phase::pacer_jitter_ns, rta::eta};
/// // A 2.5 kHz IMU: after any stall, at most 3 samples within 1 µs, 4 within a period.
/// assert_eq!(eta(1_000, 400_000, pacer_jitter_ns(400_000)), 3);
/// assert_eq!(eta(400_000, 400_000, pacer_jitter_ns(400_000)), 4);
/// ```
pub fn pacer_jitter_ns(period_ns: u64) -> u64 {
    period_ns.saturating_mul(2).saturating_add(3)
}

/// A synchronised set as the analysis uses it, when its assumptions hold.
#[derive(Debug, Clone, PartialEq)]
pub struct SetModel {
    /// Set name.
    pub name: String,
    /// Indices of its members in the input's streams.
    pub members: Vec<usize>,
    /// Common-tick period `T_F` (ns, exact).
    pub period_ns: f64,
    /// Least tick → release of any member (ns).
    pub d_lo: u64,
    /// Largest tick → release of any member (ns).
    pub d_hi: u64,
    /// The set's work as a sporadic task (period `⌊T_F⌋`, jitter `D_hi − D_lo` + rounding).
    pub task: Task,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// An integer rate (Hz) or `None`.
fn integer_rate(rate_hz: f64) -> Option<u64> {
    ((1.0..=1e6).contains(&rate_hz) && rate_hz.fract() == 0.0).then_some(rate_hz as u64)
}

/// The release window `[lo, hi]` of a phased stream relative to its tick (ns).
fn window(s: &StreamSpec) -> Option<(u64, u64)> {
    let p = s.phase?;
    Some((
        p.offset_ns,
        p.offset_ns
            .saturating_add(p.jitter_ns)
            .saturating_add(s.delta_irq_ns),
    ))
}

/// The set's model, or why the phase-locked charging does not apply to it.
///
/// # Errors
/// A sentence naming the assumption that is not met (the caller falls back to charging every
/// member).
///
/// # Examples
/// ```
/// use wcet::bound::{StreamSpec, SyncSet};
/// use wcet::phase::{model, Phase};
/// let stream = |name: &str, rate_hz: f64, offset_ns: u64| StreamSpec {
///     name: name.into(), rate_hz, jitter_ns: 0, payload_bytes: 0, service_ns: 0,
///     delta_irq_ns: 0, t_enq_ns: None, gpu_delta_l_ns: None, ring_depth: 8, cache_lines: 2,
///     phase: Some(Phase { offset_ns, jitter_ns: 2_000_000 }),
/// };
/// let streams = [stream("camera", 30.0, 8_000_000), stream("lidar", 10.0, 11_000_000)];
/// let set = SyncSet { name: "pair".into(), members: vec!["camera".into(), "lidar".into()],
///     service_ns: 7_000_000, equal_stamps: true };
/// let m = model(&set, &streams, 80).unwrap();
/// assert_eq!(m.task.t, 100_000_000); // the common ticks of 30 and 10 Hz
/// assert_eq!(m.task.j, 13_000_000 - 8_000_000 + 2); // the spread of the members' windows
/// ```
pub fn model(set: &SyncSet, streams: &[StreamSpec], priority: i32) -> Result<SetModel, String> {
    if !set.equal_stamps {
        return Err(format!(
            "set `{}`: the synchroniser may pair different stamps",
            set.name
        ));
    }
    let mut members = Vec::new();
    let mut g = 0u64;
    let (mut d_lo, mut d_hi) = (u64::MAX, 0u64);
    for m in &set.members {
        let Some(i) = streams.iter().position(|s| &s.name == m) else {
            return Err(format!("set `{}`: no stream `{m}`", set.name));
        };
        let s = &streams[i];
        let Some((lo, hi)) = window(s) else {
            return Err(format!(
                "set `{}`: member `{m}` is not phase-locked (no tick-aligned driver)",
                set.name
            ));
        };
        let Some(r) = integer_rate(s.rate_hz) else {
            return Err(format!(
                "set `{}`: member `{m}` has a rate of {} Hz; common ticks need integer rates",
                set.name, s.rate_hz
            ));
        };
        g = gcd(g, r);
        d_lo = d_lo.min(lo);
        d_hi = d_hi.max(hi);
        members.push(i);
    }
    if members.len() < 2 || g == 0 {
        return Err(format!("set `{}`: fewer than two members", set.name));
    }
    let period_ns = 1e9 / g as f64;
    Ok(SetModel {
        name: set.name.clone(),
        members,
        period_ns,
        d_lo,
        d_hi,
        task: Task {
            name: set.name.clone(),
            c: set.service_ns,
            t: period_ns.floor() as u64,
            // Ticks are rounded to the nanosecond; the floor of the period loses < 1 ns a tick.
            j: d_hi - d_lo + 2,
            priority,
            b: 0,
            d: None,
        },
    })
}

/// Common ticks `m·T_F − ph` (m ∈ ℤ) in `[lo, hi)`, `skip_zero` leaving out `m = 0`.
fn ticks_in(period: f64, ph: f64, lo: f64, hi: f64, skip_zero: bool) -> u64 {
    if hi <= lo {
        return 0;
    }
    let first = ((lo + ph) / period).ceil();
    let last = ((hi + ph) / period).ceil() - 1.0;
    if last < first {
        return 0;
    }
    let n = (last - first + 1.0) as u64;
    if skip_zero && first <= 0.0 && last >= 0.0 {
        n - 1
    } else {
        n
    }
}

/// Sets that can execute in a window of length `w` before member `x` (rate `rate_hz`, release
/// window `[phi, phi + jit]`) starts, over every phase of `x`'s ticks in the hyperperiod;
/// `busy_period` bounds every busy period.
pub fn sets_before(
    set: &SetModel,
    rate_hz: f64,
    phi: u64,
    jit: u64,
    busy_period: u64,
    w: u64,
) -> u64 {
    let tx = 1e9 / rate_hz;
    let phases = (set.period_ns / tx).round().max(1.0) as u64;
    let lo = phi as f64 - busy_period as f64 - set.d_hi as f64 - SLOP_NS;
    let hi = phi as f64 + jit as f64 + w as f64 - set.d_lo as f64 + SLOP_NS;
    (0..phases)
        .map(|j| {
            let ph = (j as f64 * tx) % set.period_ns;
            ticks_in(set.period_ns, ph, lo, hi, j == 0)
        })
        .max()
        .unwrap_or(0)
}

/// Σ η_i(w)·C_i over `tasks`.
pub fn demand(tasks: &[&Task], w: u64) -> u64 {
    tasks.iter().fold(0u64, |acc, t| {
        acc.saturating_add(eta(w, t.t, t.j).saturating_mul(t.c))
    })
}

/// Least fixed point of `w = f(w)` from `start`, or `None` past `horizon` (or after too many steps).
pub fn least_fixed_point(start: u64, horizon: u64, f: impl Fn(u64) -> u64) -> Option<u64> {
    let mut w = start.max(1);
    for _ in 0..crate::rta::MAX_STEPS {
        let next = f(w).max(1);
        if next > horizon {
            return None;
        }
        if next == w {
            return Some(w);
        }
        w = next;
    }
    None
}

/// The wait of member `x` (start of its processing after its release) and the sets counted:
/// least `w = B + Σ η_i(w)·C_i + C_F·N_x(w)` where `tasks` holds every stream (members at their
/// own per-item work, `x` included) and the interfering real-time load, `N_x` from
/// [`sets_before`]. `None` when it does not close below `horizon`.
pub fn member_wait(
    set: &SetModel,
    x: &StreamSpec,
    tasks: &[&Task],
    blocking: u64,
    busy_period: u64,
    horizon: u64,
) -> Option<(u64, u64)> {
    let (phi, hi) = window(x)?;
    let jit = hi - phi;
    let n = |w| sets_before(set, x.rate_hz, phi, jit, busy_period, w);
    let w = least_fixed_point(blocking, horizon, |w| {
        blocking
            .saturating_add(demand(tasks, w))
            .saturating_add(set.task.c.saturating_mul(n(w)))
    })?;
    Some((w, n(w)))
}

/// What one run's traces say about the assumptions of the phase-locked charging of a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetCheck {
    /// Set name.
    pub set: String,
    /// True when the traces show nothing against the assumptions.
    pub holds: bool,
    /// One line per finding (what was checked, and what broke).
    pub findings: Vec<String>,
}

/// Per phased stream: the observed tick → release range (ns) and the records off a tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseObservation {
    /// Records with a sensor stamp and a DMA stamp.
    pub records: u64,
    /// Least tick → "DMA complete".
    pub min_ns: u64,
    /// Largest tick → "DMA complete".
    pub max_ns: u64,
    /// Sensor stamps that are not a tick `round(k·10⁹/rate)`.
    pub off_tick: u64,
    /// The window the analysis assumes: `[offset, offset + jitter + Δirq]`.
    pub assumed_ns: (u64, u64),
    /// The phase-locked set the stream belongs to, where the window is used.
    pub set: Option<String>,
}

/// Tick → release of every phased stream in the traces, by stream name; `sets` names the
/// phase-locked set of each member.
pub fn observe_releases(
    streams: &[StreamSpec],
    sets: &[SyncSet],
    traces: &[TraceReader],
) -> BTreeMap<String, ReleaseObservation> {
    let mut out: BTreeMap<String, ReleaseObservation> = BTreeMap::new();
    for tr in traces {
        for info in &tr.header.streams {
            let Some(s) = streams
                .iter()
                .find(|s| s.name == info.name && s.phase.is_some())
            else {
                continue;
            };
            let o = out.entry(s.name.clone()).or_insert(ReleaseObservation {
                min_ns: u64::MAX,
                assumed_ns: window(s).unwrap_or_default(),
                set: sets
                    .iter()
                    .find(|set| set.members.contains(&s.name))
                    .map(|set| set.name.clone()),
                ..ReleaseObservation::default()
            });
            for r in tr.records.iter().filter(|r| r.stream == info.id) {
                if r.t_sensor_ns == 0 || r.t_dma_ns < r.t_sensor_ns {
                    continue;
                }
                o.records += 1;
                let d = r.t_dma_ns - r.t_sensor_ns;
                o.min_ns = o.min_ns.min(d);
                o.max_ns = o.max_ns.max(d);
                let k = (r.t_sensor_ns as f64 * s.rate_hz / 1e9).round();
                let tick = (k * 1e9 / s.rate_hz).round();
                if (r.t_sensor_ns as f64 - tick).abs() > 1.0 {
                    o.off_tick += 1;
                }
            }
        }
    }
    for o in out.values_mut() {
        if o.records == 0 {
            o.min_ns = 0;
        }
    }
    out
}

/// Checks a set's assumptions against the traces: stamps on ticks, releases inside the declared
/// window, and every fused set made of members with equal stamps (records of one set share the
/// fusion start and end stamps).
pub fn check_traces(
    set: &SyncSet,
    streams: &[StreamSpec],
    traces: &[TraceReader],
    releases: &BTreeMap<String, ReleaseObservation>,
) -> SetCheck {
    let mut findings = Vec::new();
    let mut holds = true;
    for m in &set.members {
        let Some(s) = streams.iter().find(|s| &s.name == m) else {
            continue;
        };
        let Some((lo, hi)) = window(s) else {
            continue;
        };
        let Some(o) = releases.get(m).filter(|o| o.records > 0) else {
            holds = false;
            findings.push(format!("`{m}`: no records with sensor and DMA stamps"));
            continue;
        };
        if o.off_tick > 0 {
            holds = false;
            findings.push(format!(
                "`{m}`: {} sensor stamps are not ticks of {} Hz",
                o.off_tick, s.rate_hz
            ));
        }
        let ok = o.min_ns >= lo && o.max_ns <= hi;
        holds &= ok;
        findings.push(format!(
            "`{m}`: tick → DMA complete {:.3}–{:.3} ms over {} samples, window assumed {:.3}–{:.3} ms: {}",
            o.min_ns as f64 / 1e6,
            o.max_ns as f64 / 1e6,
            o.records,
            lo as f64 / 1e6,
            hi as f64 / 1e6,
            if ok { "inside" } else { "OUTSIDE" }
        ));
    }
    // Group the members' fused records by their shared fusion stamps.
    let mut fused: BTreeMap<(usize, u64, u64), Vec<(String, u64)>> = BTreeMap::new();
    for (ti, tr) in traces.iter().enumerate() {
        for info in tr
            .header
            .streams
            .iter()
            .filter(|i| set.members.contains(&i.name))
        {
            for r in tr
                .records
                .iter()
                .filter(|r| r.stream == info.id && r.t_fuse_start_ns > 0)
            {
                fused
                    .entry((ti, r.t_fuse_start_ns, r.t_fuse_end_ns))
                    .or_default()
                    .push((info.name.clone(), r.t_sensor_ns));
            }
        }
    }
    let unequal = fused
        .values()
        .filter(|v| {
            v.len() != set.members.len()
                || v.iter().any(|(_, t)| *t != v[0].1)
                || set.members.iter().any(|m| !v.iter().any(|(n, _)| n == m))
        })
        .count();
    if unequal > 0 {
        holds = false;
        findings.push(format!(
            "{unequal} of {} fused sets are not one sample of each member with equal stamps",
            fused.len()
        ));
    } else {
        findings.push(format!(
            "{} fused sets, each of members with equal stamps",
            fused.len()
        ));
    }
    SetCheck {
        set: set.name.clone(),
        holds,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_ticks_in_a_window_are_counted_exactly() {
        // Period 100, ticks at 0, 100, 200 … seen from a phase of 30 (x's tick is 30 after one).
        assert_eq!(ticks_in(100.0, 30.0, -40.0, 80.0, false), 2); // −30 and 70
        assert_eq!(ticks_in(100.0, 30.0, -29.0, 70.0, false), 0); // half-open at the right
        assert_eq!(ticks_in(100.0, 0.0, -1.0, 1.0, true), 0); // x's own set left out
        assert_eq!(ticks_in(100.0, 0.0, -1.0, 1.0, false), 1);
        assert_eq!(ticks_in(100.0, 0.0, 5.0, 5.0, false), 0);
    }

    #[test]
    fn a_short_busy_period_keeps_every_other_set_away_from_a_member() {
        let set = SetModel {
            name: "pair".into(),
            members: vec![0, 1],
            period_ns: 100e6,
            d_lo: 10_000_000,
            d_hi: 25_000_000,
            task: Task {
                name: "pair".into(),
                c: 7_000_000,
                t: 100_000_000,
                j: 15_000_002,
                priority: 80,
                b: 0,
                d: None,
            },
        };
        // A 30 Hz member released 10–25 ms after its tick, busy periods of at most 9 ms.
        assert_eq!(
            sets_before(&set, 30.0, 10_000_000, 15_000_000, 9_000_000, 2_000_000),
            0
        );
        // Busy periods as long as a camera period reach the previous set.
        assert_eq!(
            sets_before(&set, 30.0, 10_000_000, 15_000_000, 40_000_000, 2_000_000),
            1
        );
    }
}
