//! Stalls of the fusion thread, found in its traces: intervals in which it made **no progress**
//! (dequeued nothing and ran no fusion step) while at least one sample **was waiting** for it
//! (enqueued, not yet dequeued), longer than the wake-up delay T_sched the bound allows for.
//!
//! The bound covers the fusion thread waking up late (T_sched) and serving other work first
//! (backlog); it has no term for a thread that is runnable, has work queued, and does not run —
//! RT throttling, the hypervisor descheduling the vCPU, a higher-priority thread outside the
//! analysis. A stall is the trace's evidence of that, derived from the trace's own stamps only:
//!
//! * progress: every dequeue stamp (an instant) and every fusion step `[fuse start, fuse end]`;
//!   these are merged into busy intervals, and the thread made no progress in each gap between
//!   two of them;
//! * waiting: a sample waits over `[enqueue, dequeue]`. No sample is dequeued inside a gap, so the
//!   samples waiting in a gap only grow during it: the stall is the part of the gap from the
//!   moment the first sample still waiting at its end was enqueued (or the gap's start) to the
//!   gap's end.
//!
//! A gap with nothing waiting is idleness, not a stall; a long fusion step is progress, not a
//! stall (a step that is interrupted shows as a long step, which the report lists separately).

use rtfuse_trace::{Record, TraceReader};
use serde::{Deserialize, Serialize};

/// One stall of the fusion thread in one trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// Index of the trace (in the order given).
    pub trace: usize,
    /// Start (`CLOCK_MONOTONIC` ns): the thread's last progress, or the first waiting sample's
    /// enqueue when later.
    pub start_ns: u64,
    /// End: the thread's next progress (a dequeue or a fusion step starting).
    pub end_ns: u64,
    /// Start relative to the trace's earliest stamp (ns), to find it in the run.
    pub offset_ns: u64,
    /// Samples waiting at its end.
    pub waiting: u64,
}

impl Stall {
    /// Its length (ns).
    pub fn len_ns(&self) -> u64 {
        self.end_ns - self.start_ns
    }

    /// Overlap with `[from, to]` (ns).
    pub fn overlap_ns(&self, from: u64, to: u64) -> u64 {
        to.min(self.end_ns).saturating_sub(from.max(self.start_ns))
    }
}

/// The earliest nonzero stamp of a trace (its time origin for [`Stall::offset_ns`]).
pub fn origin_ns(trace: &TraceReader) -> u64 {
    trace
        .records
        .iter()
        .flat_map(|r| {
            [
                r.t_dma_ns,
                r.t_enqueue_ns,
                r.t_dequeue_ns,
                r.t_fuse_start_ns,
            ]
        })
        .filter(|&t| t != 0)
        .min()
        .unwrap_or(0)
}

fn progress(r: &Record) -> impl Iterator<Item = (u64, u64)> {
    let deq = (r.t_dequeue_ns != 0).then_some((r.t_dequeue_ns, r.t_dequeue_ns));
    let fuse = (r.t_fuse_start_ns != 0 && r.t_fuse_end_ns >= r.t_fuse_start_ns)
        .then_some((r.t_fuse_start_ns, r.t_fuse_end_ns));
    deq.into_iter().chain(fuse)
}

/// The stalls of one trace (index `trace`) longer than `min_ns`, in time order.
///
/// # Examples
/// ```
/// use rtfuse_trace::{Record, TraceHeader, TraceReader, TraceWriter};
/// let mut buf = Vec::new();
/// let mut w = TraceWriter::new(&mut buf, &TraceHeader::default()).unwrap();
/// // dequeued at 1 ms; the next sample, enqueued at 2 ms, waits until 30 ms.
/// for (enq, deq) in [(500_000, 1_000_000), (2_000_000, 30_000_000)] {
///     w.write(&Record { seq: enq, t_dma_ns: enq, t_enqueue_ns: enq, t_dequeue_ns: deq,
///         ..Record::default() }).unwrap();
/// }
/// w.finish(0).unwrap();
/// let stalls = wcet::stall::find(&TraceReader::from_bytes(&buf).unwrap(), 0, 5_000_000);
/// assert_eq!((stalls[0].start_ns, stalls[0].len_ns()), (2_000_000, 28_000_000));
/// ```
pub fn find(trace: &TraceReader, index: usize, min_ns: u64) -> Vec<Stall> {
    let mut busy: Vec<(u64, u64)> = trace.records.iter().flat_map(progress).collect();
    busy.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(busy.len());
    for (s, e) in busy {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    // Waits sorted by dequeue, with the earliest enqueue of every suffix: the first sample still
    // waiting at a gap's end is the earliest enqueue among those dequeued at or after it.
    let mut waits: Vec<(u64, u64)> = trace
        .records
        .iter()
        .filter(|r| r.t_enqueue_ns != 0 && r.t_dequeue_ns >= r.t_enqueue_ns)
        .map(|r| (r.t_dequeue_ns, r.t_enqueue_ns))
        .collect();
    waits.sort_unstable();
    let mut first_enq = vec![u64::MAX; waits.len() + 1];
    for i in (0..waits.len()).rev() {
        first_enq[i] = first_enq[i + 1].min(waits[i].1);
    }
    let origin = origin_ns(trace);
    merged
        .windows(2)
        .filter_map(|w| {
            let (gap_start, gap_end) = (w[0].1, w[1].0);
            let i = waits.partition_point(|&(deq, _)| deq < gap_end);
            let start = gap_start.max(first_enq[i]);
            (start < gap_end && gap_end - start > min_ns).then(|| Stall {
                trace: index,
                start_ns: start,
                end_ns: gap_end,
                offset_ns: start - origin.min(start),
                waiting: waits[i..].iter().filter(|&&(_, enq)| enq < gap_end).count() as u64,
            })
        })
        .collect()
}

/// The stalls of every trace longer than `min_ns`, trace by trace.
pub fn find_all(traces: &[TraceReader], min_ns: u64) -> Vec<Stall> {
    traces
        .iter()
        .enumerate()
        .flat_map(|(i, t)| find(t, i, min_ns))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtfuse_trace::{TraceHeader, TraceWriter};

    fn reader(records: &[Record]) -> TraceReader {
        let mut buf = Vec::new();
        let mut w = TraceWriter::new(&mut buf, &TraceHeader::default()).unwrap();
        for r in records {
            w.write(r).unwrap();
        }
        w.finish(0).unwrap();
        TraceReader::from_bytes(&buf).unwrap()
    }

    fn rec(enq: u64, deq: u64, fuse: Option<(u64, u64)>) -> Record {
        let (fs, fe) = fuse.unwrap_or((0, 0));
        Record {
            t_dma_ns: enq,
            t_enqueue_ns: enq,
            t_dequeue_ns: deq,
            t_fuse_start_ns: fs,
            t_fuse_end_ns: fe,
            ..Record::default()
        }
    }

    #[test]
    fn waiting_counts_only_samples_queued_at_the_end() {
        // Idle 1..10 ms; one sample queued at 4 ms, a second at 6 ms; both dequeued at 10 ms.
        let t = reader(&[
            rec(500_000, 1_000_000, None),
            rec(4_000_000, 10_000_000, None),
            rec(6_000_000, 10_000_000, None),
        ]);
        let s = find(&t, 0, 1_000_000);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].start_ns, s[0].end_ns, s[0].waiting),
            (4_000_000, 10_000_000, 2)
        );
        assert_eq!(s[0].offset_ns, 3_500_000);
        assert!(
            find(&t, 0, 6_000_000).is_empty(),
            "6 ms is not longer than 6 ms"
        );
    }

    #[test]
    fn samples_dequeued_inside_a_fusion_step_are_progress() {
        // A 20 ms fusion step with a sample dequeued in the middle of it, one waiting through it.
        let t = reader(&[
            rec(0, 1_000, Some((1_000, 21_000_000))),
            rec(5_000_000, 9_000_000, Some((9_000_000, 9_010_000))),
            rec(2_000_000, 21_000_100, None),
        ]);
        assert!(find(&t, 0, 1_000_000).is_empty());
    }
}
