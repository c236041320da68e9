//! The measurement side: per stream and stage statistics from the fusion node's traces, and
//! whether the traces can certify anything (complete, nothing lost, no sequence gaps).

use hdrhistogram::Histogram;
use rtfuse_trace::{Record, TraceReader, FLAG_GAP_BEFORE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a stage's latency is read from a record.
pub type StageFn = fn(&Record) -> Option<u64>;

/// Stages measured, in pipeline order: name and how to get it from a record. `fuse` is the
/// wall-clock span of the step that fused the sample; `fuse_cpu` the fusion thread's CPU time for
/// it (its work without preemption or stalls; only in traces that measured it).
pub const STAGES: [(&str, StageFn); 5] = [
    ("dma_to_dequeue", Record::dma_to_dequeue_ns),
    ("dma_to_enqueue", |r| stage(r.t_dma_ns, r.t_enqueue_ns)),
    ("enqueue_to_dequeue", |r| {
        stage(r.t_enqueue_ns, r.t_dequeue_ns)
    }),
    ("fuse", |r| stage(r.t_fuse_start_ns, r.t_fuse_end_ns)),
    ("fuse_cpu", Record::fuse_cpu),
];

fn stage(from: u64, to: u64) -> Option<u64> {
    (from != 0 && to != 0 && to >= from).then(|| to - from)
}

/// One bucket of a latency histogram: counts of values in (lower, upper].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    /// Exclusive lower edge (ns).
    pub lower_ns: u64,
    /// Inclusive upper edge (ns).
    pub upper_ns: u64,
    /// Values in the bucket.
    pub count: u64,
}

/// Statistics of one stage of one stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageStats {
    /// Stage name (see [`STAGES`]).
    pub stage: String,
    /// Samples.
    pub count: u64,
    /// Median (ns).
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Maximum (exact).
    pub max_ns: u64,
    /// Histogram with logarithmic buckets (factor 2).
    pub histogram: Vec<Bucket>,
}

impl StageStats {
    /// Summarises values with an HDR histogram (3 significant digits; the maximum is exact).
    pub fn from_values(stage: &str, values: &[u64]) -> Option<StageStats> {
        let max = *values.iter().max()?;
        let mut h = Histogram::<u64>::new(3).ok()?;
        for &v in values {
            // `record` grows the auto-resizing histogram; `saturating_record` would clamp.
            if h.record(v).is_err() {
                h.saturating_record(v);
            }
        }
        let mut histogram = Vec::new();
        let mut lower = 0u64;
        let mut upper = 1u64;
        while lower < max {
            let count = h
                .count_between(lower.saturating_add(1), upper)
                .min(values.len() as u64);
            histogram.push(Bucket {
                lower_ns: lower,
                upper_ns: upper,
                count,
            });
            lower = upper;
            upper = upper.saturating_mul(2);
        }
        let zeros = values.iter().filter(|&&v| v == 0).count() as u64;
        if zeros > 0 {
            histogram.insert(
                0,
                Bucket {
                    lower_ns: 0,
                    upper_ns: 0,
                    count: zeros,
                },
            );
        }
        histogram.retain(|b| b.count > 0);
        Some(StageStats {
            stage: stage.into(),
            count: values.len() as u64,
            p50_ns: h.value_at_quantile(0.5).min(max),
            p95_ns: h.value_at_quantile(0.95).min(max),
            p99_ns: h.value_at_quantile(0.99).min(max),
            p999_ns: h.value_at_quantile(0.999).min(max),
            max_ns: max,
            histogram,
        })
    }
}

/// One stream's measurements across all traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamObservation {
    /// Stream name (from the trace header).
    pub name: String,
    /// Per stage, those with data.
    pub stages: Vec<StageStats>,
    /// Records without a "DMA complete" → dequeue latency (missing or disordered stamps).
    pub missing_stamps: u64,
    /// Sequence gaps seen (samples dropped upstream).
    pub gaps: u64,
    /// (seq, DMA → dequeue latency) of every sample, in trace order — the input of the verdict
    /// and of the EVT fit (not serialised).
    #[serde(skip)]
    pub samples: Vec<(u64, u64)>,
}

impl StreamObservation {
    /// The stage the bound covers, if it has data.
    pub fn dma_to_dequeue(&self) -> Option<&StageStats> {
        self.stages.iter().find(|s| s.stage == STAGES[0].0)
    }
}

/// All traces summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// Traces read.
    pub traces: usize,
    /// True when every trace is complete, lost nothing and has no sequence gaps, every record
    /// carries both stamps, and the fusion thread ran under SCHED_FIFO (where the header says).
    pub certified: bool,
    /// Why not, one line per reason.
    pub not_certified_because: Vec<String>,
    /// Per stream, sorted by name.
    pub streams: Vec<StreamObservation>,
}

#[derive(Default)]
struct Acc {
    samples: Vec<(u64, u64)>,
    stage_values: [Vec<u64>; STAGES.len()],
    missing: u64,
    gaps: u64,
    first_gap: Option<u64>,
}

/// Reads what the traces say.
pub fn observe(traces: &[TraceReader]) -> Observations {
    let mut reasons = Vec::new();
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (ti, tr) in traces.iter().enumerate() {
        if !tr.complete {
            reasons.push(format!(
                "trace {ti}: incomplete (no valid trailer: the writer was cut short)"
            ));
        }
        if tr.lost > 0 {
            reasons.push(format!(
                "trace {ti}: {} records lost by the trace writer",
                tr.lost
            ));
        }
        if !tr.header.fusion_policy.is_empty() && tr.header.fusion_policy != "SCHED_FIFO" {
            reasons.push(format!(
                "trace {ti}: the fusion thread ran under {}, not SCHED_FIFO as the analysis assumes",
                tr.header.fusion_policy
            ));
        }
        if tr.trailing_bytes > 0 {
            reasons.push(format!(
                "trace {ti}: {} bytes of a torn record at the end",
                tr.trailing_bytes
            ));
        }
        let names: BTreeMap<u16, &str> = tr
            .header
            .streams
            .iter()
            .map(|s| (s.id, s.name.as_str()))
            .collect();
        let mut last_seq: BTreeMap<u16, u64> = BTreeMap::new();
        let mut unknown = 0u64;
        for r in &tr.records {
            let Some(name) = names.get(&r.stream) else {
                unknown += 1;
                continue;
            };
            let a = acc.entry((*name).to_string()).or_default();
            let gap = r.flags & FLAG_GAP_BEFORE != 0
                || last_seq
                    .get(&r.stream)
                    .is_some_and(|&p| r.seq != p.wrapping_add(1));
            if gap {
                a.gaps += 1;
                a.first_gap.get_or_insert(r.seq);
            }
            last_seq.insert(r.stream, r.seq);
            for (i, (_, f)) in STAGES.iter().enumerate() {
                if let Some(v) = f(r) {
                    a.stage_values[i].push(v);
                }
            }
            match r.dma_to_dequeue_ns() {
                Some(v) => a.samples.push((r.seq, v)),
                None => a.missing += 1,
            }
        }
        if unknown > 0 {
            reasons.push(format!(
                "trace {ti}: {unknown} records name a stream id missing from the header"
            ));
        }
    }
    let streams = acc
        .into_iter()
        .map(|(name, a)| {
            if a.gaps > 0 {
                reasons.push(format!(
                    "stream `{name}`: {} sequence gaps (first before seq {})",
                    a.gaps,
                    a.first_gap.unwrap_or(0)
                ));
            }
            if a.missing > 0 {
                reasons.push(format!(
                    "stream `{name}`: {} records lack the DMA or dequeue stamp",
                    a.missing
                ));
            }
            StreamObservation {
                stages: STAGES
                    .iter()
                    .zip(&a.stage_values)
                    .filter_map(|((n, _), v)| StageStats::from_values(n, v))
                    .collect(),
                name,
                missing_stamps: a.missing,
                gaps: a.gaps,
                samples: a.samples,
            }
        })
        .collect();
    if traces.is_empty() {
        reasons.push("no traces given".into());
    }
    Observations {
        traces: traces.len(),
        certified: reasons.is_empty(),
        not_certified_because: reasons,
        streams,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtfuse_trace::{StreamInfo, TraceHeader, TraceWriter};

    fn trace(seqs: &[u64], finish: bool) -> TraceReader {
        let header = TraceHeader {
            streams: vec![StreamInfo {
                id: 0,
                name: "imu".into(),
                ..StreamInfo::default()
            }],
            ..TraceHeader::default()
        };
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &header).unwrap();
        for &s in seqs {
            w.write(&Record {
                stream: 0,
                seq: s,
                t_dma_ns: 1000,
                t_dequeue_ns: 1000 + s * 10,
                ..Record::default()
            })
            .unwrap();
        }
        if finish {
            w.finish(0).unwrap();
        }
        TraceReader::from_bytes(&buf).unwrap()
    }

    #[test]
    fn gaps_and_truncation_are_not_certified() {
        let ok = observe(&[trace(&[1, 2, 3, 4], true)]);
        assert!(ok.certified, "{:?}", ok.not_certified_because);
        let s = ok.streams[0].dma_to_dequeue().unwrap();
        assert_eq!((s.count, s.max_ns), (4, 40));
        let gap = observe(&[trace(&[1, 2, 5], true)]);
        assert!(!gap.certified);
        assert!(
            gap.not_certified_because[0].contains("sequence gaps"),
            "{:?}",
            gap.not_certified_because
        );
        let cut = observe(&[trace(&[1, 2], false)]);
        assert!(cut.not_certified_because[0].contains("incomplete"));
        let mut other = trace(&[1, 2], true);
        other.header.fusion_policy = "SCHED_OTHER".into();
        let other = observe(&[other]);
        assert!(
            other.not_certified_because[0].contains("SCHED_OTHER"),
            "{:?}",
            other.not_certified_because
        );
    }
}
