//! The report's tables: host, verdicts, bound breakdown, busy windows, stage statistics, EVT,
//! phase-locked streams, violations and stalls.

use super::table::Table;
use super::{method, opt_us, us, Report, StreamReport, Verdict};

impl Report {
    /// Every table, in the order the report shows them.
    pub(super) fn tables(&self) -> Vec<Table> {
        let s = &self.summary;
        let host = Table {
            title: "Host and configuration",
            head: vec!["item", "value"],
            rows: [
                ("kernel", s.kernel.clone()),
                ("PREEMPT_RT", s.preempt_rt.to_string()),
                ("CPU", s.cpu_model.clone()),
                (
                    "isolated CPUs",
                    if s.isolated_cpus.is_empty() {
                        "none".into()
                    } else {
                        s.isolated_cpus.clone()
                    },
                ),
                ("t_cc per line (p99.99)", us(s.calibration_used_ns[0])),
                ("t_enq (p99.99)", us(s.calibration_used_ns[1])),
                ("timer wake-up (max)", us(s.calibration_used_ns[2])),
                ("futex wake-up (max)", us(s.calibration_used_ns[3])),
                ("calibration policy", s.calibration_policy.clone()),
                ("fusion wake-up", s.wakeup.clone()),
                ("fusion priority", s.priority.to_string()),
                ("dedicated core", s.dedicated_core.to_string()),
                ("other RT threads", s.other_rt_threads.to_string()),
                ("fusion-core utilisation", format!("{}", s.utilisation)),
            ]
            .into_iter()
            .chain(s.irq_time_accounting.map(|on| {
                (
                    "interrupt time",
                    if on {
                        "accounted apart from threads".to_string()
                    } else {
                        "charged to the interrupted thread".to_string()
                    },
                )
            }))
            .map(|(a, b)| vec![a.to_string(), b])
            .collect(),
        };
        // A GEV fit with ξ ≥ 0.5 (infinite variance) or a quantile a thousand times beyond the
        // observed maximum is not an estimate anyone should read as a bound: say so instead.
        let pw = |r: &StreamReport, i: usize| -> String {
            let Some(e) = r.evt.as_ref() else {
                return "—".into();
            };
            let Some(p) = e.pwcet.iter().find(|p| p.p == [1e-6, 1e-9][i]) else {
                return "—".into();
            };
            let xi = e.gev[2];
            let wild = r
                .observed_max_ns
                .is_some_and(|m| p.gev_ns / 1000 > m.max(1));
            if !xi.is_finite() || xi >= 0.5 || wild || p.gev_ns == u64::MAX {
                format!("unreliable (heavy tail, ξ = {xi:.2})")
            } else {
                us(p.gev_ns)
            }
        };
        let p999 = |r: &StreamReport| {
            r.stages
                .first()
                .filter(|s| s.stage == "dma_to_dequeue")
                .map(|s| s.p999_ns)
        };
        let verdicts = Table {
            title: "Bound against measurement (DMA complete → dequeue)",
            head: vec![
                "stream",
                "samples",
                "bound",
                "observed max",
                "p99.9",
                "pWCET 1e-6",
                "pWCET 1e-9",
                "margin",
                "bound/max",
                "verdict",
            ],
            rows: self
                .streams
                .iter()
                .map(|r| {
                    vec![
                        r.name.clone(),
                        r.samples.to_string(),
                        us(r.bound.bound_ns),
                        opt_us(r.observed_max_ns),
                        opt_us(p999(r)),
                        pw(r, 0),
                        pw(r, 1),
                        r.margin_ns
                            .map_or("—".into(), |m| format!("{:.3} µs", m as f64 / 1000.0)),
                        r.ratio.map_or("—".into(), |x| format!("{x:.3}")),
                        match r.verdict {
                            Verdict::Holds => "holds".into(),
                            Verdict::Violated => {
                                format!("VIOLATED ({} samples)", r.violation_count)
                            }
                            Verdict::NoSamples => "NO SAMPLES".into(),
                        },
                    ]
                })
                .collect(),
        };
        // The RT-throttle column only where some bound charges it.
        let throttled = self
            .streams
            .iter()
            .any(|r| r.bound.terms.rt_throttle_ns > 0);
        let shown = |name: &str| throttled || name != "RT throttle";
        let mut head = vec!["stream"];
        head.extend(
            crate::bound::Terms::default()
                .named()
                .iter()
                .map(|t| t.0)
                .filter(|n| shown(n)),
        );
        head.extend(["L_b", "with GPU ΔL", "backlog from"]);
        let terms = Table {
            title: "Bound breakdown",
            head,
            rows: self
                .streams
                .iter()
                .map(|r| {
                    let mut row = vec![r.name.clone()];
                    row.extend(
                        r.bound
                            .terms
                            .named()
                            .iter()
                            .filter(|t| shown(t.0))
                            .map(|t| us(t.1)),
                    );
                    row.push(us(r.bound.bound_ns));
                    row.push(opt_us(r.bound.chain_ns));
                    row.push(method(&r.bound.method));
                    row
                })
                .collect(),
        };
        let phased = Table {
            title: "Phase-locked streams (tick → DMA complete) and synchronised sets",
            head: vec!["stream or set", "observed", "assumed", "finding"],
            rows: self
                .streams
                .iter()
                .filter_map(|r| {
                    let o = self.releases.get(&r.name)?;
                    Some(vec![
                        r.name.clone(),
                        format!(
                            "{}–{} over {} samples",
                            us(o.min_ns),
                            us(o.max_ns),
                            o.records
                        ),
                        match &o.set {
                            Some(set) => format!(
                                "{}–{} (member of {set})",
                                us(o.assumed_ns.0),
                                us(o.assumed_ns.1)
                            ),
                            None => "not used: no phase-locked set".into(),
                        },
                        if o.off_tick > 0 {
                            format!("{} stamps off the tick", o.off_tick)
                        } else {
                            "stamps on ticks".into()
                        },
                    ])
                })
                .chain(self.set_checks.iter().map(|c| {
                    vec![
                        c.set.clone(),
                        String::new(),
                        if c.holds { "holds" } else { "DOES NOT HOLD" }.into(),
                        c.findings.join("; "),
                    ]
                }))
                .collect(),
        };
        let bw = Table {
            title: "Busy windows and rings",
            head: vec![
                "stream",
                "busy window",
                "jobs",
                "worst q",
                "interference",
                "min ring depth",
                "ring depth",
                "max rate",
            ],
            rows: self
                .streams
                .iter()
                .map(|r| {
                    let b = &r.bound.busy_window;
                    let inter: Vec<String> = b
                        .interference
                        .iter()
                        .map(|i| format!("{} ×{} = {}", i.task, i.jobs, us(i.time_ns)))
                        .collect();
                    vec![
                        r.name.clone(),
                        us(b.length_ns),
                        b.jobs.to_string(),
                        b.worst_q.to_string(),
                        if inter.is_empty() {
                            "none".into()
                        } else {
                            inter.join("; ")
                        },
                        r.bound.min_ring_depth.to_string(),
                        r.bound.ring_depth.to_string(),
                        format!("{:.1} Hz", r.bound.max_rate_hz),
                    ]
                })
                .collect(),
        };
        let stages = Table {
            title: "Stage statistics",
            head: vec![
                "stream", "stage", "count", "p50", "p95", "p99", "p99.9", "max",
            ],
            rows: self
                .streams
                .iter()
                .flat_map(|r| {
                    r.stages.iter().map(|s| {
                        vec![
                            r.name.clone(),
                            s.stage.clone(),
                            s.count.to_string(),
                            us(s.p50_ns),
                            us(s.p95_ns),
                            us(s.p99_ns),
                            us(s.p999_ns),
                            us(s.max_ns),
                        ]
                    })
                })
                .collect(),
        };
        let evt = Table {
            title: "Extreme-value analysis (p_block = 1 − (1 − p)^b)",
            head: vec![
                "stream",
                "blocks × b",
                "GEV μ, σ, ξ",
                "GPD u, σ, ξ",
                "independence",
            ],
            rows: self
                .streams
                .iter()
                .map(|r| match (&r.evt, &r.evt_error) {
                    (Some(e), _) => vec![
                        r.name.clone(),
                        format!("{} × {}", e.blocks, e.block_size),
                        format!("{:?}", e.gev),
                        e.gpd.map_or("—".into(), |g| format!("{g:?}")),
                        e.independence.join("; "),
                    ],
                    (None, err) => vec![
                        r.name.clone(),
                        "—".into(),
                        err.clone().unwrap_or_default(),
                        "—".into(),
                        "—".into(),
                    ],
                })
                .collect(),
        };
        let violations = Table {
            title: "Violations (samples above the bound)",
            head: vec!["stream", "seq", "latency", "bound"],
            rows: self
                .streams
                .iter()
                .flat_map(|r| {
                    r.violations.iter().map(|v| {
                        vec![
                            r.name.clone(),
                            v.seq.to_string(),
                            us(v.latency_ns),
                            us(r.bound.bound_ns),
                        ]
                    })
                })
                .collect(),
        };
        let stalls = Table {
            title:
                "Stalls of the fusion thread (no progress while work waited, longer than T_sched)",
            head: vec!["trace", "at", "length", "waiting at its end"],
            rows: self
                .stalls
                .iter()
                .map(|st| {
                    vec![
                        st.trace.to_string(),
                        format!("{:.3} s", st.offset_ns as f64 / 1e9),
                        us(st.len_ns()),
                        st.waiting.to_string(),
                    ]
                })
                .collect(),
        };
        let mut t = vec![host, verdicts, terms, bw, stages, evt];
        if !phased.rows.is_empty() {
            t.push(phased);
        }
        if !violations.rows.is_empty() {
            t.push(violations);
        }
        if !stalls.rows.is_empty() {
            t.push(stalls);
        }
        t
    }
}
