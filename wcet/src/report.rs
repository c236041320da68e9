//! The report: the bound of every stream against what the traces measured, as JSON, Markdown and
//! self-contained HTML (inline SVG plots).
//!
//! Numbers from fits are rounded to 4 significant digits and pWCETs to whole nanoseconds (rounded
//! up), so a report is reproducible from the same inputs.

use crate::analyze::{observe, Observations, StageStats};
use crate::bound::{AnalysisInput, BoundReport, Method, StreamBound, Wakeup};
use crate::evt::{self, EvtOptions};
use crate::phase::{self, ReleaseObservation, SetCheck};
use crate::plots;
use crate::stall::{self, Stall};
use checks::{
    bounds_in_force, jitter_findings, longer_steps, shortfall, unbacked, work_not_backed,
};
use table::esc;

mod checks;
mod table;
mod tables;
mod why;
use rtfuse_trace::TraceReader;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use why::{StallFinding, MAX_LISTED_STALLS};

/// Most violating samples listed per stream.
pub const MAX_LISTED_VIOLATIONS: usize = 50;

/// Samples per stream a verdict should rest on, unless [`ReportOptions`] says otherwise.
pub const DEFAULT_SAMPLE_TARGET: u64 = 1_000_000;

/// Settings of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportOptions {
    /// Samples per stream a verdict should rest on; a stream with fewer is flagged with the time
    /// the target would take at its rate.
    pub sample_target: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            sample_target: DEFAULT_SAMPLE_TARGET,
        }
    }
}

/// Verdict for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// bound ≥ observed maximum.
    Holds,
    /// Some sample exceeded the bound.
    Violated,
    /// The traces have no sample of this stream.
    NoSamples,
}

/// A sample that exceeded the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Sequence number.
    pub seq: u64,
    /// Its DMA → dequeue latency (ns).
    pub latency_ns: u64,
}

/// pWCET at one probability (ns, rounded up).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PwcetRow {
    /// Per-activation exceedance probability.
    pub p: f64,
    /// From the GEV block-maxima fit.
    pub gev_ns: u64,
    /// From the GPD peaks-over-threshold fit.
    pub gpd_ns: Option<u64>,
}

/// The EVT part of a stream's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvtSummary {
    /// Activations per block.
    pub block_size: usize,
    /// Blocks.
    pub blocks: usize,
    /// GEV location, scale, shape ξ.
    pub gev: [f64; 3],
    /// GPD threshold, scale, shape ξ.
    pub gpd: Option<[f64; 3]>,
    /// pWCET rows.
    pub pwcet: Vec<PwcetRow>,
    /// Verdicts of Ljung–Box and runs tests on the samples, then on the block maxima.
    pub independence: Vec<String>,
}

/// One stream in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Stream name.
    pub name: String,
    /// The bound and its analysis.
    pub bound: StreamBound,
    /// Every measured stage (DMA → dequeue first, when present).
    pub stages: Vec<StageStats>,
    /// Observed maximum of DMA → dequeue.
    pub observed_max_ns: Option<u64>,
    /// bound − observed max (negative when violated).
    pub margin_ns: Option<i64>,
    /// bound / observed max, 3 decimals.
    pub ratio: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Samples the verdict rests on (DMA → dequeue latencies).
    pub samples: u64,
    /// Why that is fewer than the target, when it is.
    pub samples_short: Option<String>,
    /// Samples above the bound.
    pub violation_count: u64,
    /// The first [`MAX_LISTED_VIOLATIONS`] of them.
    pub violations: Vec<Violation>,
    /// The EVT estimate.
    pub evt: Option<EvtSummary>,
    /// Why there is no EVT estimate.
    pub evt_error: Option<String>,
    /// For a violation: the stalls of the fusion thread its samples waited through, and whether
    /// they explain it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_finding: Option<StallFinding>,
    #[serde(skip)]
    sorted: Vec<u64>,
    #[serde(skip)]
    curve: Vec<(f64, f64)>,
}

/// Host, calibration and configuration summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Kernel release.
    pub kernel: String,
    /// PREEMPT_RT.
    pub preempt_rt: bool,
    /// CPU model.
    pub cpu_model: String,
    /// Isolated CPUs.
    pub isolated_cpus: String,
    /// Whether the host accounts interrupt time apart from threads (unknown: absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub irq_time_accounting: Option<bool>,
    /// Calibrated figures the bound uses (ns): t_cc per line (p99.99), t_enq (p99.99), timer
    /// wake-up (max), futex wake-up (max).
    pub calibration_used_ns: [u64; 4],
    /// Policy the calibration ran under.
    pub calibration_policy: String,
    /// Fusion thread wake-up policy.
    pub wakeup: String,
    /// Fusion thread priority.
    pub priority: i32,
    /// Dedicated core.
    pub dedicated_core: bool,
    /// Other RT threads on the core.
    pub other_rt_threads: usize,
    /// Utilisation of the fusion core.
    pub utilisation: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Host and configuration.
    pub summary: Summary,
    /// True when every stream's bound held.
    pub all_hold: bool,
    /// Traces read, whether they certify, and why not.
    pub traces: usize,
    /// Whether the traces can certify the result.
    pub certified: bool,
    /// Reasons they cannot.
    pub not_certified_because: Vec<String>,
    /// Streams in traces that the input does not describe.
    pub unknown_trace_streams: Vec<String>,
    /// Samples per stream the verdicts should rest on.
    pub sample_target: u64,
    /// Tick → "DMA complete" of every phase-locked stream, as the traces show it.
    pub releases: BTreeMap<String, ReleaseObservation>,
    /// The assumptions of each phase-locked synchronised set, checked on the traces.
    pub set_checks: Vec<SetCheck>,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// A stall is an interval longer than this (T_sched of the bound, ns) in which the fusion
    /// thread made no progress while a sample waited ([`crate::stall`]).
    pub stall_threshold_ns: u64,
    /// Stalls found in the traces.
    pub stall_count: u64,
    /// The longest [`MAX_LISTED_STALLS`] of them, in time order.
    pub stalls: Vec<Stall>,
    /// When stalls explain a violation: what on this host can stop a running fusion thread, and
    /// the fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_cause: Option<String>,
    /// When the host throttles RT threads, the fusion CPU is not isolated and the bound does not
    /// charge the throttle window: that the bound does not cover it, and the option that does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rt_throttling_note: Option<String>,
}

fn sig4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let mag = 10f64.powi(3 - x.abs().log10().floor() as i32);
    (x * mag).round() / mag
}

fn ceil_ns(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.ceil() as u64
    } else {
        0
    }
}

fn evt_part(samples: &[(u64, u64)]) -> (Option<EvtSummary>, Option<String>, Vec<(f64, f64)>) {
    let xs: Vec<f64> = samples.iter().map(|s| s.1 as f64).collect();
    match evt::analyze(&xs, &EvtOptions::default()) {
        Ok(r) => {
            let ind = [&r.samples_independence, &r.maxima_independence];
            let independence = ind
                .iter()
                .zip(["samples", "block maxima"])
                .flat_map(|(i, what)| {
                    [&i.ljung_box, &i.runs].map(|t| format!("{what}: {}: {}", t.test, t.verdict))
                })
                .collect();
            let summary = EvtSummary {
                block_size: r.block_size,
                blocks: r.blocks,
                gev: [sig4(r.gev.mu), sig4(r.gev.sigma), sig4(r.gev.xi)],
                gpd: r
                    .pot
                    .as_ref()
                    .map(|p| [sig4(p.threshold), sig4(p.gpd.sigma), sig4(p.gpd.xi)]),
                pwcet: r
                    .pwcet
                    .iter()
                    .map(|p| PwcetRow {
                        p: p.p,
                        gev_ns: ceil_ns(sig4(p.gev)),
                        gpd_ns: p.gpd.map(|g| ceil_ns(sig4(g))),
                    })
                    .collect(),
                independence,
            };
            (Some(summary), None, r.exceedance_curve)
        }
        Err(e) => (None, Some(e.to_string()), Vec::new()),
    }
}

/// Builds the report from the input, its bounds and the traces, with the default
/// [`ReportOptions`].
///
/// # Examples
/// ```no_run
/// # fn f(input: &wcet::bound::AnalysisInput, traces: &[rtfuse_trace::TraceReader]) {
/// let bounds = wcet::bound::analyze(input).expect("schedulable");
/// let report = wcet::report::build(input, &bounds, traces);
/// std::fs::write("report.html", report.to_html()).unwrap();
/// # }
/// ```
pub fn build(input: &AnalysisInput, bounds: &BoundReport, traces: &[TraceReader]) -> Report {
    build_with(input, bounds, traces, &ReportOptions::default())
}

/// Builds the report from the input, its bounds and the traces.
pub fn build_with(
    input: &AnalysisInput,
    bounds: &BoundReport,
    traces: &[TraceReader],
    options: &ReportOptions,
) -> Report {
    let obs: Observations = observe(traces);
    let locked: Vec<_> = input
        .sync_sets
        .iter()
        .filter(|set| {
            bounds
                .sets
                .iter()
                .any(|o| o.name == set.name && o.phase_locked)
        })
        .cloned()
        .collect();
    let releases = phase::observe_releases(&input.streams, &locked, traces);
    let (used, set_checks) = bounds_in_force(input, bounds, &locked, traces, &releases);
    let stall_threshold_ns = used.iter().map(|b| b.terms.t_sched_ns).max().unwrap_or(0);
    let mut stalls = stall::find_all(traces, stall_threshold_ns);
    let streams: Vec<StreamReport> = used
        .iter()
        .map(|b| {
            let o = obs.streams.iter().find(|o| o.name == b.name);
            let samples: &[(u64, u64)] = o.map_or(&[], |o| &o.samples);
            let rate = input
                .streams
                .iter()
                .find(|s| s.name == b.name)
                .map_or(0.0, |s| s.rate_hz);
            let max = samples.iter().map(|s| s.1).max();
            let bad: Vec<Violation> = samples
                .iter()
                .filter(|s| s.1 > b.bound_ns)
                .map(|&(seq, latency_ns)| Violation { seq, latency_ns })
                .collect();
            let (evt, evt_error, curve) = evt_part(samples);
            let mut sorted: Vec<u64> = samples.iter().map(|s| s.1).collect();
            sorted.sort_unstable();
            let mut b = b.clone();
            if let Some(note) = longer_steps(input, &b.name, o) {
                b.notes.push(note);
            }
            StreamReport {
                name: b.name.clone(),
                bound: b.clone(),
                stages: o.map(|o| o.stages.clone()).unwrap_or_default(),
                observed_max_ns: max,
                margin_ns: max.map(|m| {
                    let d = i128::from(b.bound_ns) - i128::from(m);
                    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
                }),
                ratio: max
                    .filter(|&m| m > 0)
                    .map(|m| (b.bound_ns as f64 / m as f64 * 1000.0).round() / 1000.0),
                verdict: match max {
                    None => Verdict::NoSamples,
                    Some(_) if bad.is_empty() => Verdict::Holds,
                    Some(_) => Verdict::Violated,
                },
                samples: samples.len() as u64,
                samples_short: shortfall(
                    &b.name,
                    rate,
                    samples.len() as u64,
                    options.sample_target,
                ),
                violation_count: bad.len() as u64,
                violations: bad.into_iter().take(MAX_LISTED_VIOLATIONS).collect(),
                evt,
                evt_error,
                stall_finding: if max > Some(b.bound_ns) {
                    why::finding(&b.name, b.bound_ns, traces, &stalls)
                } else {
                    None
                },
                sorted,
                curve,
            }
        })
        .collect();
    let mut not_certified_because = obs.not_certified_because.clone();
    not_certified_because.extend(jitter_findings(input, &releases));
    not_certified_because.extend(unbacked(&used, &set_checks));
    not_certified_because.extend(work_not_backed(input, &obs));
    let stall_count = stalls.len() as u64;
    stalls.sort_by_key(|s| std::cmp::Reverse(s.len_ns()));
    stalls.truncate(MAX_LISTED_STALLS);
    stalls.sort_by_key(|s| (s.trace, s.start_ns));
    let stall_cause = streams
        .iter()
        .any(|s| s.stall_finding.as_ref().is_some_and(|f| f.explained > 0))
        .then(|| why::cause(input));
    let cal = &input.host;
    Report {
        summary: Summary {
            kernel: cal.host.kernel.clone(),
            preempt_rt: cal.host.preempt_rt,
            cpu_model: cal.host.cpu_model.clone(),
            isolated_cpus: cal.host.isolated_cpus.clone(),
            irq_time_accounting: cal.host.irq_time_accounting,
            calibration_used_ns: [
                cal.cache_line_transfer.p9999_ns,
                cal.enqueue.p9999_ns,
                cal.fifo_wakeup.max_ns,
                cal.futex_wakeup.max_ns,
            ],
            calibration_policy: cal.policy.clone(),
            wakeup: match input.fusion.wakeup {
                Wakeup::Spin { poll_period_ns } => format!("spin (poll every {poll_period_ns} ns)"),
                Wakeup::Futex => "futex".into(),
                Wakeup::SpinThenFutex => "spin, then futex".into(),
            },
            priority: input.fusion.priority,
            dedicated_core: input.fusion.dedicated_core,
            other_rt_threads: input.other_rt_load.len(),
            utilisation: sig4(bounds.utilisation),
        },
        all_hold: streams.iter().all(|s| s.verdict == Verdict::Holds),
        traces: obs.traces,
        certified: not_certified_because.is_empty(),
        not_certified_because,
        unknown_trace_streams: obs
            .streams
            .iter()
            .filter(|o| !bounds.streams.iter().any(|b| b.name == o.name))
            .map(|o| o.name.clone())
            .collect(),
        sample_target: options.sample_target,
        releases,
        set_checks,
        streams,
        stall_threshold_ns,
        stall_count,
        stalls,
        stall_cause,
        rt_throttling_note: why::throttling_note(input),
    }
}

pub(crate) fn us(ns: u64) -> String {
    format!("{:.3} µs", ns as f64 / 1000.0)
}

fn opt_us(ns: Option<u64>) -> String {
    ns.map_or_else(|| "—".into(), us)
}

/// The method of a bound, in words.
fn method(m: &Method) -> String {
    match m {
        Method::Sporadic => "sporadic".into(),
        Method::SetCharged { sets } => format!("sporadic, {} once per set", sets.join(", ")),
        Method::PhaseLocked {
            set,
            sets_counted,
            sporadic_wait_ns,
        } => format!(
            "phase-locked member of {set}: {sets_counted} set(s) can reach it (sporadic wait {})",
            us(*sporadic_wait_ns)
        ),
    }
}

impl Report {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    fn headline(&self) -> Vec<String> {
        let mut v = vec![if self.all_hold {
            "ALL BOUNDS HOLD against the observed maxima.".to_string()
        } else {
            let bad: Vec<&str> = self
                .streams
                .iter()
                .filter(|s| s.verdict != Verdict::Holds)
                .map(|s| s.name.as_str())
                .collect();
            format!(
                "**VIOLATION / NOT SHOWN**: the bound did not hold or was not measured for: {}.",
                bad.join(", ")
            )
        }];
        v.extend(
            self.streams
                .iter()
                .filter_map(|s| s.stall_finding.as_ref())
                .map(|f| format!("**{}**", f.text)),
        );
        v.extend(self.stall_cause.clone());
        v.extend(self.rt_throttling_note.clone());
        if self.stall_count > 0 {
            v.push(format!(
                "The fusion thread stalled {} time(s) for longer than T_sched ({}): no dequeue and \
                 no fusion step while work was queued (the longest {} are listed below).",
                self.stall_count,
                us(self.stall_threshold_ns),
                self.stalls.len()
            ));
        }
        if self.certified {
            v.push(format!(
                "Certified: {} complete trace(s), nothing lost, no sequence gaps.",
                self.traces
            ));
        } else {
            v.push("**NOT CERTIFIED**:".into());
            v.extend(self.not_certified_because.iter().map(|r| format!("- {r}")));
        }
        if !self.unknown_trace_streams.is_empty() {
            v.push(format!(
                "Trace streams not in the input (not analysed): {}",
                self.unknown_trace_streams.join(", ")
            ));
        }
        let short: Vec<&str> = self
            .streams
            .iter()
            .filter_map(|s| s.samples_short.as_deref())
            .collect();
        if short.is_empty() {
            v.push(format!(
                "Every verdict rests on at least {} samples.",
                self.sample_target
            ));
        } else {
            v.push(format!(
                "**FEWER THAN {} SAMPLES** behind these verdicts:",
                self.sample_target
            ));
            v.extend(short.iter().map(|s| format!("- {s}")));
        }
        for c in &self.set_checks {
            v.push(format!(
                "Synchronised set `{}`: phase-locked assumptions {} on these traces.",
                c.set,
                if c.holds { "hold" } else { "**DO NOT HOLD**" }
            ));
        }
        for s in &self.streams {
            for n in &s.bound.notes {
                v.push(format!("- `{}`: {n}", s.name));
            }
        }
        v
    }

    /// The report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# rtfuse latency-bound report\n\n");
        for l in self.headline() {
            out.push_str(&l);
            out.push('\n');
        }
        for t in self.tables() {
            t.markdown(&mut out);
        }
        out
    }

    /// The report as one self-contained HTML page with inline SVG plots.
    pub fn to_html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>rtfuse latency-bound report</title>\n\
             <style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse;margin:1em 0}\
             td,th{border:1px solid #999;padding:2px 6px;font-size:13px}.bad{color:#b00;font-weight:bold}</style></head><body>\n\
             <h1>rtfuse latency-bound report</h1>\n",
        );
        for l in self.headline() {
            let class = if l.contains("**") {
                " class=\"bad\""
            } else {
                ""
            };
            out.push_str(&format!("<p{class}>{}</p>\n", esc(&l.replace("**", ""))));
        }
        let tables = self.tables();
        for t in &tables[..3] {
            t.html(&mut out);
        }
        let bounds: Vec<&StreamBound> = self.streams.iter().map(|s| &s.bound).collect();
        out.push_str(&plots::stacked_terms(&bounds));
        for t in &tables[3..] {
            t.html(&mut out);
        }
        for s in &self.streams {
            out.push_str(&format!("<h2>Stream {}</h2>\n", esc(&s.name)));
            if let Some(st) = s.stages.iter().find(|x| x.stage == "dma_to_dequeue") {
                out.push_str(&plots::histogram(
                    &format!("{}: DMA → dequeue latency histogram", s.name),
                    &st.histogram,
                    Some(s.bound.bound_ns),
                ));
            }
            if !s.sorted.is_empty() {
                out.push_str(&plots::exceedance(
                    &format!("{}: exceedance probability", s.name),
                    &s.sorted,
                    &s.curve,
                    Some(s.bound.bound_ns),
                ));
            }
        }
        out.push_str("</body></html>\n");
        out
    }
}
