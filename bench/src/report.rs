//! The transport report: rows, ratios against the baselines of the same run, table and JSON.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::peer::{PeerReport, System};
use crate::rt::FIFO_PRIORITY;

/// Target: rtfuse p50 ≤ this × floor p50 at every payload.
pub const TARGET_OVER_FLOOR: f64 = 2.0;
/// Target: iceoryx2 p50 ≥ this × rtfuse p50 at every payload.
pub const TARGET_VS_ICEORYX2: f64 = 2.0;
/// Target: rtfuse p50 at the largest payload ≤ this × at the smallest.
pub const TARGET_SIZE_FLAT: f64 = 1.2;

/// One latency row (one-way, ns).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// System name.
    pub system: &'static str,
    /// Payload bytes.
    pub payload: usize,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Measured iterations.
    pub iters: u64,
}

/// One-way streaming throughput.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// System name.
    pub system: &'static str,
    /// Payload bytes.
    pub payload: usize,
    /// Messages timed.
    pub messages: u64,
    /// Time they took.
    pub elapsed_ns: u64,
    /// Descriptors (messages) per second.
    pub per_sec: f64,
}

/// A ratio at one payload size, with its target where the issue sets one.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// Payload bytes.
    pub payload: usize,
    /// The ratio of the two p50s.
    pub ratio: f64,
    /// The target, if any (direction given by the ratio's name in [`Ratios`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// Whether the target is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// rtfuse p50 at the largest payload over its p50 at the smallest.
#[derive(Debug, Clone, Serialize)]
pub struct SizeRatio {
    /// Smallest payload.
    pub small: usize,
    /// Largest payload.
    pub large: usize,
    /// p50(large) / p50(small).
    pub ratio: f64,
    /// Target (≤).
    pub target: f64,
    /// Whether it is met.
    pub met: bool,
}

/// All ratios; every one compares figures measured in this run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    /// rtfuse p50 / floor p50 (target ≤ 2).
    pub rtfuse_over_floor_p50: Vec<Ratio>,
    /// iceoryx2 p50 / rtfuse p50 (target ≥ 2).
    pub iceoryx2_over_rtfuse_p50: Vec<Ratio>,
    /// rtfuse p50 at the largest payload / at the smallest (target ≤ 1.2).
    pub rtfuse_size_p50: Option<SizeRatio>,
    /// rtfuse p50 / floor-touch p50 (no target; context: the floor with the payload touched).
    pub rtfuse_over_floor_touch_p50: Vec<Ratio>,
    /// iceoryx2 p50 / floor p50 (no target; context).
    pub iceoryx2_over_floor_p50: Vec<Ratio>,
    /// uds-copy p50 / rtfuse p50 (no target; context).
    pub uds_copy_over_rtfuse_p50: Vec<Ratio>,
    /// rtfuse descriptors per second / iceoryx2's (no target; context).
    pub rtfuse_over_iceoryx2_throughput: Option<f64>,
}

/// Conditions of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Env {
    /// Whether every peer got SCHED_FIFO.
    pub sched_fifo: bool,
    /// The SCHED_FIFO priority asked for.
    pub fifo_priority: i32,
    /// Whether every peer's memory was locked after set-up.
    pub mlocked: bool,
    /// Cores of the two peers.
    pub cores: [usize; 2],
    /// Median cost of one clock read in the ping peers (included in every figure, halved).
    pub clock_read_ns: u64,
}

/// The whole report, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct TransportReport {
    /// Always "transport".
    pub bench: &'static str,
    /// Latency rows.
    pub results: Vec<Row>,
    /// Ratios.
    pub ratios: Ratios,
    /// Throughput rows.
    pub throughput: Vec<Throughput>,
    /// Conditions.
    pub env: Env,
}

/// What the runs produced so far.
#[derive(Debug, Default)]
pub struct Measured {
    rows: Vec<(System, Row)>,
    throughput: Vec<(System, Throughput)>,
    all_fifo: Option<bool>,
    all_locked: Option<bool>,
    clock_reads: Vec<u64>,
}

impl Measured {
    fn note_peers(&mut self, peers: [&PeerReport; 2]) {
        for p in peers {
            let fifo = self.all_fifo.unwrap_or(true) && p.rt.fifo;
            self.all_fifo = Some(fifo);
            let locked = self.all_locked.unwrap_or(true) && p.locked_after_setup;
            self.all_locked = Some(locked);
        }
    }

    /// Adds a ping-pong result.
    pub fn add_latency(
        &mut self,
        system: System,
        payload: usize,
        ping: &PeerReport,
        pong: &PeerReport,
    ) -> Result<()> {
        self.note_peers([ping, pong]);
        self.clock_reads.push(ping.clock_read_ns);
        let s = ping.latency.context("the ping peer reported no latency")?;
        self.rows.push((
            system,
            Row {
                system: system.name(),
                payload,
                p50_ns: s.p50_ns,
                p99_ns: s.p99_ns,
                p999_ns: s.p999_ns,
                max_ns: s.max_ns,
                iters: s.iters,
            },
        ));
        Ok(())
    }

    /// Adds a stream result.
    pub fn add_stream(
        &mut self,
        system: System,
        payload: usize,
        publisher: &PeerReport,
        subscriber: &PeerReport,
    ) -> Result<()> {
        self.note_peers([publisher, subscriber]);
        let s = subscriber
            .stream
            .context("the stream subscriber reported nothing")?;
        let per_sec = s.messages as f64 * 1e9 / s.elapsed_ns.max(1) as f64;
        self.throughput.push((
            system,
            Throughput {
                system: system.name(),
                payload,
                messages: s.messages,
                elapsed_ns: s.elapsed_ns,
                per_sec,
            },
        ));
        Ok(())
    }

    fn p50(&self, system: System, payload: usize) -> Option<u64> {
        self.rows
            .iter()
            .find(|(s, r)| *s == system && r.payload == payload)
            .map(|(_, r)| r.p50_ns)
    }

    /// `a / b` of the p50s at every payload where both ran.
    fn ratio(&self, a: System, b: System, target: Option<(f64, bool)>) -> Vec<Ratio> {
        let mut payloads: Vec<usize> = self.rows.iter().map(|(_, r)| r.payload).collect();
        payloads.sort_unstable();
        payloads.dedup();
        payloads
            .into_iter()
            .filter_map(|payload| {
                let ratio = div(self.p50(a, payload)?, self.p50(b, payload)?);
                Some(Ratio {
                    payload,
                    ratio,
                    target: target.map(|(t, _)| t),
                    met: target.map(|(t, at_most)| if at_most { ratio <= t } else { ratio >= t }),
                })
            })
            .collect()
    }

    /// Computes the ratios and assembles the report.
    pub fn finish(mut self, cores: [usize; 2]) -> TransportReport {
        let rt = System::Rtfuse;
        let mut ratios = Ratios {
            rtfuse_over_floor_p50: self.ratio(rt, System::Floor, Some((TARGET_OVER_FLOOR, true))),
            iceoryx2_over_rtfuse_p50: self.ratio(
                System::Iceoryx2,
                rt,
                Some((TARGET_VS_ICEORYX2, false)),
            ),
            rtfuse_over_floor_touch_p50: self.ratio(rt, System::FloorTouch, None),
            iceoryx2_over_floor_p50: self.ratio(System::Iceoryx2, System::Floor, None),
            uds_copy_over_rtfuse_p50: self.ratio(System::UdsCopy, rt, None),
            ..Ratios::default()
        };
        let rt_payloads: Vec<usize> = self
            .rows
            .iter()
            .filter(|(s, _)| *s == rt)
            .map(|(_, r)| r.payload)
            .collect();
        if let (Some(&small), Some(&large)) = (rt_payloads.iter().min(), rt_payloads.iter().max()) {
            if small != large {
                if let (Some(a), Some(b)) = (self.p50(rt, large), self.p50(rt, small)) {
                    let ratio = div(a, b);
                    ratios.rtfuse_size_p50 = Some(SizeRatio {
                        small,
                        large,
                        ratio,
                        target: TARGET_SIZE_FLAT,
                        met: ratio <= TARGET_SIZE_FLAT,
                    });
                }
            }
        }
        let rate = |sys: System| {
            self.throughput
                .iter()
                .find(|(s, _)| *s == sys)
                .map(|(_, t)| t.per_sec)
        };
        if let (Some(a), Some(b)) = (rate(rt), rate(System::Iceoryx2)) {
            ratios.rtfuse_over_iceoryx2_throughput = Some(a / b);
        }
        TransportReport {
            bench: "transport",
            results: self.rows.into_iter().map(|(_, r)| r).collect(),
            ratios,
            throughput: self.throughput.into_iter().map(|(_, t)| t).collect(),
            env: Env {
                sched_fifo: self.all_fifo.unwrap_or(false),
                fifo_priority: FIFO_PRIORITY,
                mlocked: self.all_locked.unwrap_or(false),
                cores,
                clock_read_ns: crate::stats::median(&mut self.clock_reads),
            },
        }
    }
}

fn div(a: u64, b: u64) -> f64 {
    a as f64 / b.max(1) as f64
}

/// Human form of a payload size: `64 B`, `4 KiB`, `2.5 MiB`.
pub fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes % (MIB / 10) < MIB / 1000 {
        let m = bytes as f64 / MIB as f64;
        format!("{} MiB", trim(m))
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "",
    }
}

/// The human-readable table and ratios.
pub fn table(r: &TransportReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "one-way latency (round trip / 2), ns");
    let _ = writeln!(
        out,
        "{:<11} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
        "system", "payload", "p50", "p99", "p99.9", "max", "iters"
    );
    for row in &r.results {
        let _ = writeln!(
            out,
            "{:<11} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}",
            row.system,
            size(row.payload),
            row.p50_ns,
            row.p99_ns,
            row.p999_ns,
            row.max_ns,
            row.iters
        );
    }
    let _ = writeln!(out, "\nratios of p50 (same run)");
    let groups = [
        (
            "rtfuse / floor   (target <= 2)",
            &r.ratios.rtfuse_over_floor_p50,
        ),
        (
            "iceoryx2 / rtfuse (target >= 2)",
            &r.ratios.iceoryx2_over_rtfuse_p50,
        ),
        (
            "rtfuse / floor-touch",
            &r.ratios.rtfuse_over_floor_touch_p50,
        ),
        ("iceoryx2 / floor", &r.ratios.iceoryx2_over_floor_p50),
        ("uds-copy / rtfuse", &r.ratios.uds_copy_over_rtfuse_p50),
    ];
    for (name, list) in groups {
        for x in list.iter() {
            let _ = writeln!(
                out,
                "  {name:<32} {:>9}: {:>8.2} {}",
                size(x.payload),
                x.ratio,
                verdict(x.met)
            );
        }
    }
    if let Some(s) = &r.ratios.rtfuse_size_p50 {
        let _ = writeln!(
            out,
            "  rtfuse p50 @{} / @{} (target <= {}): {:.2} {}",
            size(s.large),
            size(s.small),
            s.target,
            s.ratio,
            verdict(Some(s.met))
        );
    }
    if !r.throughput.is_empty() {
        let _ = writeln!(out, "\nthroughput, one-way stream of 64 B messages");
        for t in &r.throughput {
            let _ = writeln!(
                out,
                "  {:<9} {:>8.2} M descriptors/s ({} messages)",
                t.system,
                t.per_sec / 1e6,
                t.messages
            );
        }
        if let Some(x) = r.ratios.rtfuse_over_iceoryx2_throughput {
            let _ = writeln!(out, "  rtfuse / iceoryx2: {x:.2}");
        }
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(
        out,
        "\npeers pinned to cores {} and {}; SCHED_FIFO {} applied: {}; memory locked: {}; clock read: {} ns",
        r.env.cores[0],
        r.env.cores[1],
        r.env.fifo_priority,
        yes(r.env.sched_fifo),
        yes(r.env.mlocked),
        r.env.clock_read_ns
    );
    out
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_print() {
        assert_eq!(size(64), "64 B");
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(2_621_440), "2.5 MiB");
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(1000), "1000 B");
    }
}
