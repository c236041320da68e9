//! Per-stream counters and per-stream, per-stage HDR latency histograms, and the way they leave the
//! real-time thread.
//!
//! The real-time side touches only two things, both allocation- and lock-free:
//! - [`StreamCounters`] / [`NodeCounters`]: relaxed atomics (single writer, any number of readers),
//!   so the CLI reads live counts at any time;
//! - a [`RecordSink`]: a pre-allocated `crossbeam_queue::ArrayQueue` of 64-byte [`Record`]s with all
//!   stage stamps of one sample. A full queue drops the record and counts it (never blocks).
//!
//! A non-real-time [`StatsWorker`] drains the queue into a [`StatsCollector`] (pre-allocated
//! `hdrhistogram` histograms; `saturating_record` never allocates — the steady-state tests check it)
//! and publishes a [`StatsSnapshot`] every period behind a mutex that only non-RT threads take.
//!
//! # Example
//! ```
//! use fusion::stats::{StatsCollector, StreamCounters};
//! use rtfuse_trace::{Record, StreamInfo};
//! use std::sync::Arc;
//! let info = StreamInfo { id: 0, name: "imu".into(), kind: "imu".into(), rate_hz: 400.0, payload_bytes: 64 };
//! let counters = Arc::new(StreamCounters::default());
//! let mut c = StatsCollector::new(vec![(info, counters.clone())]);
//! counters.received.inc();
//! c.record(&Record { stream: 0, seq: 1, t_dma_ns: 100, t_dequeue_ns: 1_100, t_fuse_start_ns: 2_100,
//!                    ..Record::default() });
//! let snap = c.snapshot(1.0);
//! assert_eq!(snap.streams[0].received, 1);
//! assert_eq!(snap.streams[0].dma_to_fuse_start.max_ns, 2_000);
//! ```

use crossbeam_queue::ArrayQueue;
use hdrhistogram::Histogram;
use rtfuse_trace::{Record, StreamInfo};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::rt::RtStatus;

/// Largest latency a histogram tracks exactly (10 s); larger values are clamped to it.
pub const MAX_TRACKED_NS: u64 = 10_000_000_000;

/// A monotonically growing event count: one writer, any readers, relaxed (a statistic, not a sync).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Overwrites the value (for gauges).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// Raises the value to `n` if it is smaller (for maxima).
    #[inline]
    pub fn raise_to(&self, n: u64) {
        self.0.fetch_max(n, Ordering::Relaxed);
    }
    /// Current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one input stream, written by the fusion thread.
#[derive(Debug, Default)]
pub struct StreamCounters {
    /// Samples received and valid.
    pub received: Counter,
    /// Samples lost upstream: the sum of sequence-number gaps.
    pub dropped: Counter,
    /// Transport errors (receive failures, disconnects, re-attaches after damaged rings).
    pub errors: Counter,
    /// Samples that failed validation (bad metadata, wrong size) and were released unused.
    pub invalid: Counter,
    /// Times the channel was (re)opened after its publisher went away.
    pub reconnects: Counter,
}

/// Counters of the fusion node as a whole, written by the fusion thread.
#[derive(Debug, Default)]
pub struct NodeCounters {
    /// Synchronised sets fused.
    pub sets_fused: Counter,
    /// Samples the synchroniser discarded without using them in a set.
    pub sync_discarded: Counter,
    /// Fusion steps that reported an error.
    pub fuse_errors: Counter,
    /// Slices the fusion of sets was cut into (see [`crate::node::NodeConfig::fuse_slice_points`]).
    pub fuse_slices: Counter,
    /// Longest slice of a set's fusion (ns): the longest time any other input waited for a set
    /// being fused, beyond the samples served before it.
    pub fuse_slice_max_ns: Counter,
    /// Loop iterations of the fusion thread.
    pub loop_iterations: Counter,
    /// Heap allocations on the fusion thread since warm-up ended (needs the counting allocator).
    pub steady_allocations: Counter,
    /// Minor page faults on the fusion thread since warm-up ended.
    pub steady_minor_faults: Counter,
    /// 1 once warm-up is over and the steady-state counters are live.
    pub steady: Counter,
    /// EKF measurements accepted.
    pub ekf_accepted: Counter,
    /// EKF measurements rejected by the Mahalanobis gate.
    pub ekf_rejected: Counter,
    /// EKF measurements that arrived after later ones and were fused at their stamp by rewinding.
    pub ekf_late: Counter,
    /// EKF measurements older than the filter's history: dropped, never applied.
    pub ekf_too_late: Counter,
}

/// The real-time end of a bounded, pre-allocated queue of records. Cloning shares the queue.
#[derive(Clone)]
pub struct RecordSink {
    queue: Arc<ArrayQueue<Record>>,
    lost: Arc<Counter>,
}

impl RecordSink {
    /// A queue of `capacity` records, allocated now.
    ///
    /// # Panics
    /// If `capacity` is 0.
    pub fn with_capacity(capacity: usize) -> RecordSink {
        RecordSink {
            queue: Arc::new(ArrayQueue::new(capacity)),
            lost: Arc::new(Counter::default()),
        }
    }

    /// Enqueues `r`; on a full queue counts it lost and returns false. Never blocks or allocates.
    #[inline]
    pub fn push(&self, r: Record) -> bool {
        match self.queue.push(r) {
            Ok(()) => true,
            Err(_) => {
                self.lost.inc();
                false
            }
        }
    }

    /// Takes the oldest record (consumer side).
    #[inline]
    pub fn pop(&self) -> Option<Record> {
        self.queue.pop()
    }

    /// Records dropped because the queue was full.
    pub fn lost(&self) -> u64 {
        self.lost.get()
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when no record waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A latency stage: the difference of two stamps of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// "DMA complete" to descriptor dequeued by the fusion thread (what the WCET bound covers).
    DmaToDequeue,
    /// "DMA complete" to the start of the fusion step that used the sample (the headline latency).
    DmaToFuseStart,
    /// Descriptor enqueued to dequeued (queueing plus wake-up).
    EnqueueToDequeue,
    /// Duration of the fusion step that used the sample.
    Fuse,
}

impl Stage {
    /// All stages, in histogram order.
    pub const ALL: [Stage; 4] = [
        Stage::DmaToDequeue,
        Stage::DmaToFuseStart,
        Stage::EnqueueToDequeue,
        Stage::Fuse,
    ];

    /// The stage's duration in `r`, `None` when a stamp is missing or out of order.
    #[inline]
    pub fn of(self, r: &Record) -> Option<u64> {
        let (a, b) = match self {
            Stage::DmaToDequeue => (r.t_dma_ns, r.t_dequeue_ns),
            Stage::DmaToFuseStart => (r.t_dma_ns, r.t_fuse_start_ns),
            Stage::EnqueueToDequeue => (r.t_enqueue_ns, r.t_dequeue_ns),
            Stage::Fuse => (r.t_fuse_start_ns, r.t_fuse_end_ns),
        };
        (a != 0 && b != 0 && b >= a).then(|| b - a)
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Stage::DmaToDequeue => "dma→dequeue",
            Stage::DmaToFuseStart => "dma→fuse",
            Stage::EnqueueToDequeue => "enqueue→dequeue",
            Stage::Fuse => "fuse",
        }
    }
}

/// A pre-allocated latency histogram in nanoseconds, 1 ns .. [`MAX_TRACKED_NS`], 3 significant digits.
#[derive(Debug, Clone)]
pub struct LatencyHistogram(Histogram<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        let mut h =
            Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3).expect("static bounds are valid");
        h.auto(false);
        LatencyHistogram(h)
    }
}

impl LatencyHistogram {
    /// Records one value; values beyond the range are clamped. Never allocates.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.0.saturating_record(ns.max(1));
    }

    /// Percentile summary.
    pub fn summary(&self) -> LatencySummary {
        let h = &self.0;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }

    /// The underlying histogram.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.0
    }
}

/// Percentiles of one stage of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest value.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

/// One stream's counters and latency summaries at a point in time.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StreamSnapshot {
    /// Channel name.
    pub name: String,
    /// Sensor kind.
    pub kind: String,
    /// Valid samples received.
    pub received: u64,
    /// Samples lost upstream (sequence gaps).
    pub dropped: u64,
    /// Transport errors.
    pub errors: u64,
    /// Invalid samples.
    pub invalid: u64,
    /// Reconnections to a restarted publisher.
    pub reconnects: u64,
    /// Receive rate over the last snapshot period (the whole run for the final snapshot).
    pub rate_hz: f64,
    /// "DMA complete" → dequeued.
    pub dma_to_dequeue: LatencySummary,
    /// "DMA complete" → fusion start.
    pub dma_to_fuse_start: LatencySummary,
    /// Enqueued → dequeued.
    pub enqueue_to_dequeue: LatencySummary,
    /// Fusion step duration.
    pub fuse: LatencySummary,
}

/// Everything the CLI prints about a running node.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    /// Seconds since the stats started.
    pub elapsed_s: f64,
    /// Per input stream.
    pub streams: Vec<StreamSnapshot>,
    /// Sets fused.
    pub sets_fused: u64,
    /// Samples the synchroniser discarded.
    pub sync_discarded: u64,
    /// Fusion errors.
    pub fuse_errors: u64,
    /// Slices the fusion of sets was cut into.
    #[serde(default)]
    pub fuse_slices: u64,
    /// Longest slice of a set's fusion (ns): what one set can block another input for (the
    /// blocking term of a response-time bound for the streams the fusion thread serves).
    #[serde(default)]
    pub fuse_slice_max_ns: u64,
    /// Stats records lost (stats queue full).
    pub stats_lost: u64,
    /// Trace records lost (trace queue full).
    pub trace_lost: u64,
    /// Allocations on the fusion thread after warm-up (0 unless the counting allocator is installed).
    pub steady_allocations: u64,
    /// Minor faults on the fusion thread after warm-up.
    pub steady_minor_faults: u64,
    /// EKF measurements accepted.
    pub ekf_accepted: u64,
    /// EKF measurements rejected by the Mahalanobis gate (outliers).
    pub ekf_rejected: u64,
    /// EKF measurements fused at their stamp after later ones (out of sequence, by rewinding).
    #[serde(default)]
    pub ekf_late: u64,
    /// EKF measurements older than the filter's history: dropped.
    #[serde(default)]
    pub ekf_too_late: u64,
    /// The fusion thread's real-time status, once known.
    pub rt: Option<RtStatus>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rt {
            Some(rt) => writeln!(f, "fusion thread: {rt}")?,
            None => writeln!(f, "fusion thread: starting")?,
        }
        writeln!(
            f,
            "{:<12} {:>8} {:>9} {:>7} {:>6} {:>6}  {:>10} {:>10} {:>10}   (dma→fuse start, µs)",
            "stream", "rate Hz", "received", "dropped", "errors", "inval", "p50", "p99", "max"
        )?;
        for s in &self.streams {
            let l = &s.dma_to_fuse_start;
            writeln!(
                f,
                "{:<12} {:>8.1} {:>9} {:>7} {:>6} {:>6}  {:>10.1} {:>10.1} {:>10.1}",
                s.name,
                s.rate_hz,
                s.received,
                s.dropped,
                s.errors,
                s.invalid,
                us(l.p50_ns),
                us(l.p99_ns),
                us(l.max_ns)
            )?;
        }
        write!(
            f,
            "sets fused {} (slices {}, longest {:.1} µs)  sync discarded {}  fuse errors {}  EKF accepted/rejected {}/{} (late {}, too late {})  lost stats/trace {}/{}",
            self.sets_fused,
            self.fuse_slices,
            us(self.fuse_slice_max_ns),
            self.sync_discarded,
            self.fuse_errors,
            self.ekf_accepted,
            self.ekf_rejected,
            self.ekf_late,
            self.ekf_too_late,
            self.stats_lost,
            self.trace_lost
        )
    }
}

struct StreamStats {
    info: StreamInfo,
    counters: Arc<StreamCounters>,
    hists: [LatencyHistogram; 4],
    window_received: u64,
    rate_hz: f64,
}

/// Histograms of every stream, indexed by stream id (position in the list given to `new`).
pub struct StatsCollector {
    streams: Vec<StreamStats>,
    /// Records naming a stream id that does not exist.
    pub unknown_stream: u64,
}

impl StatsCollector {
    /// One set of histograms per stream; stream `i` is the record's `stream == i`.
    pub fn new(streams: Vec<(StreamInfo, Arc<StreamCounters>)>) -> StatsCollector {
        let streams = streams
            .into_iter()
            .map(|(info, counters)| StreamStats {
                info,
                counters,
                hists: Default::default(),
                window_received: 0,
                rate_hz: 0.0,
            })
            .collect();
        StatsCollector {
            streams,
            unknown_stream: 0,
        }
    }

    /// Records every stage of `r` into its stream's histograms. Allocation-free.
    #[inline]
    pub fn record(&mut self, r: &Record) {
        let Some(s) = self.streams.get_mut(r.stream as usize) else {
            self.unknown_stream += 1;
            return;
        };
        for (h, stage) in s.hists.iter_mut().zip(Stage::ALL) {
            if let Some(v) = stage.of(r) {
                h.record(v);
            }
        }
    }

    /// The histogram of one stream and stage.
    pub fn histogram(&self, stream: usize, stage: Stage) -> Option<&LatencyHistogram> {
        let i = Stage::ALL.iter().position(|s| *s == stage)?;
        self.streams.get(stream).map(|s| &s.hists[i])
    }

    /// Updates the per-stream rates from the counters: received in the window of `window_s` seconds.
    pub fn update_rates(&mut self, window_s: f64) {
        for s in &mut self.streams {
            let now = s.counters.received.get();
            if window_s > 0.0 {
                s.rate_hz = now.saturating_sub(s.window_received) as f64 / window_s;
            }
            s.window_received = now;
        }
    }

    /// The per-stream part of a snapshot. `elapsed_s` is used for rates not yet measured over a window.
    pub fn snapshot(&self, elapsed_s: f64) -> StatsSnapshot {
        let streams = self
            .streams
            .iter()
            .map(|s| {
                let c = &s.counters;
                let received = c.received.get();
                let rate_hz = if s.rate_hz > 0.0 || elapsed_s <= 0.0 {
                    s.rate_hz
                } else {
                    received as f64 / elapsed_s
                };
                StreamSnapshot {
                    name: s.info.name.clone(),
                    kind: s.info.kind.clone(),
                    received,
                    dropped: c.dropped.get(),
                    errors: c.errors.get(),
                    invalid: c.invalid.get(),
                    reconnects: c.reconnects.get(),
                    rate_hz,
                    dma_to_dequeue: s.hists[0].summary(),
                    dma_to_fuse_start: s.hists[1].summary(),
                    enqueue_to_dequeue: s.hists[2].summary(),
                    fuse: s.hists[3].summary(),
                }
            })
            .collect();
        StatsSnapshot {
            elapsed_s,
            streams,
            ..StatsSnapshot::default()
        }
    }
}

/// Where the stats worker gets node-level facts for its snapshots.
#[derive(Clone)]
pub struct NodeStatsSources {
    /// Node counters.
    pub node: Arc<NodeCounters>,
    /// The trace queue's lost count, if tracing.
    pub trace: Option<RecordSink>,
    /// The fusion thread's status, set once it is known.
    pub rt: Arc<Mutex<Option<RtStatus>>>,
}

/// A non-real-time thread that drains a [`RecordSink`] into a [`StatsCollector`] and publishes
/// snapshots.
pub struct StatsWorker {
    latest: Arc<Mutex<StatsSnapshot>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<StatsSnapshot>>,
}

impl StatsWorker {
    /// Starts the worker; it publishes a snapshot every `period`.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn(
        mut collector: StatsCollector,
        sink: RecordSink,
        sources: NodeStatsSources,
        period: Duration,
    ) -> std::io::Result<StatsWorker> {
        let latest = Arc::new(Mutex::new(StatsSnapshot::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (latest.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("rtfuse-stats".into())
            .spawn(move || {
                let start = Instant::now();
                let mut window_start = start;
                let fill = |c: &StatsCollector, elapsed: f64| {
                    let mut snap = c.snapshot(elapsed);
                    let n = &sources.node;
                    snap.sets_fused = n.sets_fused.get();
                    snap.sync_discarded = n.sync_discarded.get();
                    snap.fuse_errors = n.fuse_errors.get();
                    snap.fuse_slices = n.fuse_slices.get();
                    snap.fuse_slice_max_ns = n.fuse_slice_max_ns.get();
                    snap.steady_allocations = n.steady_allocations.get();
                    snap.steady_minor_faults = n.steady_minor_faults.get();
                    snap.ekf_accepted = n.ekf_accepted.get();
                    snap.ekf_rejected = n.ekf_rejected.get();
                    snap.ekf_late = n.ekf_late.get();
                    snap.ekf_too_late = n.ekf_too_late.get();
                    snap.stats_lost = sink.lost();
                    snap.trace_lost = sources.trace.as_ref().map_or(0, RecordSink::lost);
                    snap.rt = sources.rt.lock().map(|g| g.clone()).unwrap_or(None);
                    snap
                };
                loop {
                    let stopping = s.load(Ordering::Acquire);
                    while let Some(r) = sink.pop() {
                        collector.record(&r);
                    }
                    if window_start.elapsed() >= period {
                        collector.update_rates(window_start.elapsed().as_secs_f64());
                        window_start = Instant::now();
                        let snap = fill(&collector, start.elapsed().as_secs_f64());
                        if let Ok(mut g) = l.lock() {
                            *g = snap;
                        }
                    }
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                // Final snapshot: rates over the whole run.
                let elapsed = start.elapsed().as_secs_f64();
                for st in &mut collector.streams {
                    st.rate_hz = 0.0;
                }
                let snap = fill(&collector, elapsed);
                if let Ok(mut g) = l.lock() {
                    *g = snap.clone();
                }
                snap
            })?;
        Ok(StatsWorker {
            latest,
            stop,
            thread: Some(thread),
        })
    }

    /// The latest published snapshot (a clone; non-RT callers only).
    pub fn latest(&self) -> StatsSnapshot {
        self.latest.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// A handle that reads snapshots without owning the worker.
    pub fn reader(&self) -> SnapshotReader {
        SnapshotReader(self.latest.clone())
    }

    /// Drains what is left, stops the worker and returns the final snapshot.
    pub fn finish(mut self) -> StatsSnapshot {
        self.stop_and_join().unwrap_or_default()
    }

    fn stop_and_join(&mut self) -> Option<StatsSnapshot> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for StatsWorker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Reads the latest snapshot of a [`StatsWorker`] (cloneable, for the CLI).
#[derive(Clone)]
pub struct SnapshotReader(Arc<Mutex<StatsSnapshot>>);

impl SnapshotReader {
    /// The latest published snapshot.
    pub fn latest(&self) -> StatsSnapshot {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u16, name: &str) -> StreamInfo {
        StreamInfo {
            id,
            name: name.into(),
            kind: "imu".into(),
            rate_hz: 100.0,
            payload_bytes: 8,
        }
    }

    #[test]
    fn stages_ignore_missing_and_reversed_stamps() {
        let r = Record {
            t_dma_ns: 10,
            t_dequeue_ns: 5,
            t_enqueue_ns: 0,
            ..Record::default()
        };
        assert_eq!(Stage::DmaToDequeue.of(&r), None);
        assert_eq!(Stage::EnqueueToDequeue.of(&r), None);
        let r = Record {
            t_fuse_start_ns: 7,
            t_fuse_end_ns: 9,
            ..Record::default()
        };
        assert_eq!(Stage::Fuse.of(&r), Some(2));
    }

    #[test]
    fn collector_percentiles_and_unknown_streams() {
        let c0 = Arc::new(StreamCounters::default());
        let mut c = StatsCollector::new(vec![(info(0, "a"), c0.clone())]);
        for i in 1..=1000u64 {
            c.record(&Record {
                stream: 0,
                t_dma_ns: 1,
                t_dequeue_ns: 1 + i * 1000,
                ..Record::default()
            });
        }
        c.record(&Record {
            stream: 9,
            ..Record::default()
        });
        c.record(&Record {
            stream: 0,
            t_dma_ns: 1,
            t_dequeue_ns: u64::MAX,
            ..Record::default()
        });
        assert_eq!(c.unknown_stream, 1);
        let s = c.snapshot(1.0).streams[0].dma_to_dequeue;
        assert_eq!(s.count, 1001);
        assert!((498_000..=503_000).contains(&s.p50_ns), "{s:?}");
        assert!(
            s.max_ns >= MAX_TRACKED_NS && s.max_ns < MAX_TRACKED_NS + MAX_TRACKED_NS / 500,
            "{s:?}"
        );
    }

    #[test]
    fn sink_counts_lost_when_full() {
        let s = RecordSink::with_capacity(2);
        assert!(s.push(Record::default()) && s.push(Record::default()));
        assert!(!s.push(Record::default()));
        assert_eq!((s.lost(), s.len()), (1, 2));
        assert!(s.pop().is_some() && s.pop().is_some() && s.is_empty());
    }

    #[test]
    fn worker_publishes_final_snapshot() {
        let c0 = Arc::new(StreamCounters::default());
        let collector = StatsCollector::new(vec![(info(0, "a"), c0.clone())]);
        let sink = RecordSink::with_capacity(64);
        let sources = NodeStatsSources {
            node: Arc::new(NodeCounters::default()),
            trace: None,
            rt: Arc::new(Mutex::new(None)),
        };
        sources.node.sets_fused.add(3);
        let w = StatsWorker::spawn(collector, sink.clone(), sources, Duration::from_millis(10))
            .unwrap();
        for i in 0..10 {
            c0.received.inc();
            sink.push(Record {
                stream: 0,
                seq: i,
                t_dma_ns: 100,
                t_fuse_start_ns: 300,
                ..Record::default()
            });
        }
        let snap = w.finish();
        assert_eq!(snap.sets_fused, 3);
        assert_eq!(snap.streams[0].received, 10);
        assert_eq!(snap.streams[0].dma_to_fuse_start.count, 10);
        assert_eq!(snap.streams[0].dma_to_fuse_start.p50_ns, 200);
        assert!(snap.streams[0].rate_hz > 0.0);
        assert!(snap.to_string().contains("sets fused 3"));
    }
}
