//! Why a bound did not hold: the stalls of the fusion thread ([`crate::stall`]) that the violating
//! samples waited through, and what on this host can cause them, in plain sentences.

use crate::bound::AnalysisInput;
use crate::stall::Stall;
use rtfuse_trace::TraceReader;
use serde::{Deserialize, Serialize};

/// Most stalls listed per stream's finding and in the report.
pub const MAX_LISTED_STALLS: usize = 20;

/// What the stalls say about one stream's violating samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StallFinding {
    /// Samples above the bound.
    pub violating: u64,
    /// Of them, those that waited through stalls long enough that, without the stalled time,
    /// they would have met the bound.
    pub explained: u64,
    /// Of them, those whose wait overlaps a stall that does not account for all of the excess.
    pub partly: u64,
    /// The stalls the explained samples waited through (the first [`MAX_LISTED_STALLS`]).
    pub stalls: Vec<Stall>,
    /// Distinct stalls the explained samples waited through.
    pub stall_count: u64,
    /// The finding as a sentence.
    pub text: String,
}

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

fn at(s: &Stall) -> String {
    format!("{} at {:.2} s", ms(s.len_ns()), s.offset_ns as f64 / 1e9)
}

/// The finding for the stream `name`, whose bound is `bound_ns`, or `None` when no sample of it
/// exceeded the bound.
pub(super) fn finding(
    name: &str,
    bound_ns: u64,
    traces: &[TraceReader],
    stalls: &[Stall],
) -> Option<StallFinding> {
    let (mut violating, mut explained, mut partly) = (0u64, 0u64, 0u64);
    let mut used: Vec<Stall> = Vec::new();
    for (ti, tr) in traces.iter().enumerate() {
        let ids: Vec<u16> = tr
            .header
            .streams
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.id)
            .collect();
        let mine: Vec<&Stall> = stalls.iter().filter(|s| s.trace == ti).collect();
        for r in tr.records.iter().filter(|r| ids.contains(&r.stream)) {
            let Some(lat) = r.dma_to_dequeue_ns().filter(|&l| l > bound_ns) else {
                continue;
            };
            violating += 1;
            let over: Vec<&&Stall> = mine
                .iter()
                .filter(|s| s.overlap_ns(r.t_dma_ns, r.t_dequeue_ns) > 0)
                .collect();
            let stalled: u64 = over
                .iter()
                .map(|s| s.overlap_ns(r.t_dma_ns, r.t_dequeue_ns))
                .sum();
            if over.is_empty() {
                continue;
            }
            if lat.saturating_sub(stalled) <= bound_ns {
                explained += 1;
                for s in over {
                    if !used.contains(s) {
                        used.push(**s);
                    }
                }
            } else {
                partly += 1;
            }
        }
    }
    if violating == 0 {
        return None;
    }
    used.sort_by_key(|s| (s.trace, s.start_ns));
    let stall_count = used.len() as u64;
    let who = if explained == violating {
        if violating == 1 {
            "it".to_string()
        } else {
            "all".to_string()
        }
    } else {
        format!("{explained} of them")
    };
    let through = match used.as_slice() {
        [] => String::new(),
        [one] => format!(
            "{who} waited through a {} stall at {:.2} s in which the fusion thread made no \
             progress while work was queued",
            ms(one.len_ns()),
            one.offset_ns as f64 / 1e9
        ),
        many => {
            let listed: Vec<String> = many.iter().take(5).map(at).collect();
            let more = if many.len() > 5 {
                format!(" and {} more", many.len() - 5)
            } else {
                String::new()
            };
            format!(
                "{who} waited through stalls in which the fusion thread made no progress while \
                 work was queued ({}{more}); without the stalled time each would have met the \
                 bound",
                listed.join(", ")
            )
        }
    };
    let rest = violating - explained;
    let unexplained = match (rest, explained) {
        (0, _) => String::new(),
        (_, 0) if partly == 0 => format!(
            "no stall in the trace explains {}: the analysis is unsound for this run — please \
             report",
            if violating == 1 { "it" } else { "them" }
        ),
        _ => format!(
            "{rest} {} not explained by a stall in the trace{}: the analysis is unsound for this \
             run — please report",
            if rest == 1 { "is" } else { "are" },
            if partly > 0 {
                format!(
                    " ({partly} waited through one that does not account for all of the excess)"
                )
            } else {
                String::new()
            }
        ),
    };
    let parts: Vec<&str> = [through.as_str(), unexplained.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let text = format!(
        "{name}: {violating} sample{} exceeded the bound; {}.",
        if violating == 1 { "" } else { "s" },
        parts.join("; ")
    );
    Some(StallFinding {
        violating,
        explained,
        partly,
        stalls: used.into_iter().take(MAX_LISTED_STALLS).collect(),
        stall_count,
        text,
    })
}

/// What on this host can stop a running fusion thread, and the fix, for a report in which stalls
/// explain violations.
pub(super) fn cause(input: &AnalysisInput) -> String {
    let h = &input.host.host;
    let throttling = h.rt_runtime_us >= 0 && h.rt_period_us > 0 && h.rt_runtime_us < h.rt_period_us;
    let isolated = input.fusion.dedicated_core;
    let others = match input.other_rt_load.len() {
        0 => "other SCHED_FIFO threads".to_string(),
        1 => "1 other SCHED_FIFO thread".to_string(),
        n => format!("{n} other SCHED_FIFO threads"),
    };
    let mut causes = Vec::new();
    if throttling {
        causes.push(format!(
            "on this host RT throttling is enabled ({}/{} µs)",
            h.rt_runtime_us, h.rt_period_us
        ));
    } else if h.rt_period_us == 0 {
        causes.push("the calibration does not record whether RT throttling is enabled".into());
    }
    if !isolated {
        let cpus = if h.isolated_cpus.is_empty() {
            " (this host isolates none)".to_string()
        } else {
            String::new()
        };
        causes.push(format!("the fusion thread shares CPUs with {others}{cpus}"));
    }
    let mut text = String::from(
        "The bound assumes the fusion thread is not preempted by anything outside the analysis",
    );
    match causes.len() {
        0 => text.push_str(
            "; its CPU is isolated and RT throttling is off, so the hypervisor (steal time on a \
             VM), an interrupt storm or a thread outside the analysis stopped it.",
        ),
        n => {
            text.push_str("; ");
            text.push_str(&causes.join(" and "));
            text.push_str(if n > 1 {
                " — either can stop it for tens of ms (so can the hypervisor on a VM)."
            } else {
                ", which can stop it for tens of ms (so can the hypervisor on a VM)."
            });
        }
    }
    // Where the bound already charges the throttle window, charging it is no fix.
    let account = if crate::bound::rt_throttling(input).is_some() {
        ""
    } else {
        ", or charge the throttle window in the bound ([report] rt_throttling = \"charge\")"
    };
    let fix = match (throttling, isolated) {
        (true, false) => format!(
            " Fix: set kernel.sched_rt_runtime_us = -1 with the fusion thread on an isolated CPU \
             (node.thread.cpu){account}."
        ),
        (true, true) => format!(" Fix: set kernel.sched_rt_runtime_us = -1{account}."),
        (false, false) => {
            " Fix: run the fusion thread on an isolated CPU (node.thread.cpu).".into()
        }
        (false, true) => " Fix: find what took the CPU (steal time, /proc/interrupts).".into(),
    };
    text.push_str(&fix);
    text
}

/// The sentence that the bound does not cover the host's RT throttling, and the option that
/// charges it, or `None` where it is covered, disabled or the fusion CPU is isolated.
pub(super) fn throttling_note(input: &AnalysisInput) -> Option<String> {
    let h = &input.host.host;
    crate::bound::throttling_uncovered(input).then(|| {
        format!(
            "The bound does not cover RT throttling: it is enabled on this host ({}/{} µs) and the \
             fusion thread's CPU is not isolated, so for {} ms of every {} ms no SCHED_FIFO thread \
             may run. Charge it with [report] rt_throttling = \"charge\" (wcet input: \
             \"rt_throttling\": \"charge\").",
            h.rt_runtime_us,
            h.rt_period_us,
            (h.rt_period_us - h.rt_runtime_us) as f64 / 1000.0,
            h.rt_period_us as f64 / 1000.0
        )
    })
}
