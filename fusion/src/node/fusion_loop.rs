//! The fusion thread's loop. Everything it needs is allocated before the loop starts; inside it only
//! loans, receives, pushes into pre-allocated queues and writes into pre-allocated buffers (the
//! `steady_state` test counts allocations and page faults on this thread and asserts zero).
//!
//! Each turn takes at most one waiting sample per input at a time and hands them on in sensor-time
//! order: camera and LiDAR to the synchroniser, whose pairs are fused a slice at a time ([`pair`]),
//! IMU and odometry to the EKF ([`measure`]). Between two slices of a pair the loop serves the inputs
//! that are not synchronised ([`Service::serve_unpaired`]), so an IMU sample waits for one slice of
//! the projection at most, not for all of it.

mod measure;
mod pair;
#[cfg(test)]
mod tests;

use rtfuse_trace::{Record, FLAG_GAP_BEFORE, FLAG_SCHED_FIFO};
use shm_transport::{ReceiveError, Sample, Subscriber};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use super::outputs::Outputs;
use super::{Estimate, NodeConfig, SyncPolicy, Wakeup, MAX_STREAMS, SYNC_CAPACITY};
use crate::alloc_check::{self, AllocCounts};
use crate::driver::meta::{FrameMeta, MetaError};
use crate::driver::StreamKind;
use crate::ekf::Ekf;
use crate::projection::Projector;
use crate::rt::{self, now_ns, RtStatus, ThreadUsage};
use crate::stats::{NodeCounters, RecordSink, StreamCounters};
use crate::sync::{AddError, ApproximateTime, ExactTime, SyncEvent};
use crossbeam_queue::ArrayQueue;

/// Handles shared between the starter and the fusion thread.
pub(crate) struct Shared {
    pub stop: Arc<AtomicBool>,
    pub node: Arc<NodeCounters>,
    pub streams: Vec<Arc<StreamCounters>>,
    pub stats: RecordSink,
    pub trace: Option<RecordSink>,
    pub estimates: Arc<ArrayQueue<Estimate>>,
    pub mcap: Option<super::mcap_worker::McapTap>,
}

/// A received sample the thread still holds (in the synchroniser or being fused).
struct Held {
    sample: Sample,
    stream: u16,
    flags: u16,
    t_dequeue: u64,
    meta: FrameMeta,
}

/// A fusion step: its wall-clock span and the fusion thread's CPU time for it (`Step::default()`:
/// the sample was not fused).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Step {
    pub t0: u64,
    pub t1: u64,
    pub cpu_ns: u64,
}

impl Held {
    fn record(&self, step: Step) -> Record {
        let d = self.sample.descriptor();
        Record {
            stream: self.stream,
            flags: self.flags,
            seq: d.seq,
            t_sensor_ns: d.t_sensor_ns,
            t_dma_ns: d.t_dma_ns,
            t_enqueue_ns: d.t_enqueue_ns,
            t_dequeue_ns: self.t_dequeue,
            t_fuse_start_ns: step.t0,
            t_fuse_end_ns: step.t1,
            fuse_cpu_ns: u32::try_from(step.cpu_ns).unwrap_or(u32::MAX),
        }
    }
}

/// Boxed: the queues live inline in the policies (allocated once, before the loop).
enum Syncer {
    Exact(Box<ExactTime<Held, 2, SYNC_CAPACITY>>),
    Approx(Box<ApproximateTime<Held, 2, SYNC_CAPACITY>>),
}

impl Syncer {
    fn new(
        policy: SyncPolicy,
        lower_bounds_ns: [i64; 2],
    ) -> Result<Syncer, crate::sync::ConfigError> {
        Ok(match policy {
            SyncPolicy::ExactTime { queue_size } => {
                Syncer::Exact(Box::new(ExactTime::new(queue_size)?))
            }
            SyncPolicy::ApproximateTime {
                queue_size,
                age_penalty,
                max_interval_ns,
            } => {
                let mut s = ApproximateTime::new(queue_size, age_penalty)?;
                if let Some(m) = max_interval_ns {
                    s.set_max_interval(m)?;
                }
                for (i, b) in lower_bounds_ns.iter().enumerate() {
                    s.set_inter_message_lower_bound(i, *b)?;
                }
                Syncer::Approx(Box::new(s))
            }
        })
    }

    // The error hands the message (a held sample) back by value, as the sync module's API does.
    #[allow(clippy::result_large_err)]
    fn add(
        &mut self,
        slot: usize,
        stamp: i64,
        h: Held,
        out: &mut impl FnMut(SyncEvent<Held, 2>),
    ) -> Result<(), AddError<Held>> {
        match self {
            Syncer::Exact(s) => s.add(slot, stamp, h, out),
            Syncer::Approx(s) => s.add(slot, stamp, h, out),
        }
    }

    fn drain(&mut self, out: &mut impl FnMut(SyncEvent<Held, 2>)) {
        match self {
            Syncer::Exact(s) => s.drain(out),
            Syncer::Approx(s) => s.drain(out),
        }
    }
}

/// Where the records of handled samples go (stats and trace queues), and the node's counters.
#[derive(Clone)]
struct Emitter {
    node: Arc<NodeCounters>,
    stats: RecordSink,
    trace: Option<RecordSink>,
}

impl Emitter {
    /// Pushes `h`'s record (fused in `step`; `Step::default()`: not fused) and releases the
    /// sample: the chunk goes back to its publisher.
    fn emit(&self, h: Held, step: Step) {
        let r = h.record(step);
        self.stats.push(r);
        if let Some(t) = &self.trace {
            t.push(r);
        }
        drop(h);
    }
}

struct Input {
    channel: String,
    kind: StreamKind,
    sub: Option<Subscriber>,
    last_seq: u64,
    /// The subscriber's re-attaches after damaged rings, as last counted into `errors`.
    resyncs_seen: u64,
    next_open_ns: u64,
    opened_before: bool,
    counters: Arc<StreamCounters>,
    /// Position in the synchroniser (0 camera, 1 LiDAR) when paired.
    sync_slot: Option<usize>,
}

impl Input {
    fn try_open(&mut self, now: u64, period_ns: u64) {
        self.next_open_ns = now + period_ns;
        if let Ok(s) = Subscriber::open(&self.channel) {
            self.sub = Some(s);
            self.last_seq = 0;
            self.resyncs_seen = 0;
            if self.opened_before {
                self.counters.reconnects.inc();
            }
            self.opened_before = true;
        }
    }
}

fn validate(s: &Sample, kind: StreamKind) -> Result<FrameMeta, MetaError> {
    if s.user() != kind.user_word() {
        return Err(MetaError::BadMagic((s.user() >> 32) as u32));
    }
    let meta = FrameMeta::decode(s.user_header(), kind)?;
    meta.check_payload(s.payload().len())?;
    Ok(meta)
}

/// Samples taken per input in one loop turn, or at one slice boundary of a pair, at most: no stream
/// starves the others, and a pair resumes after a bounded service.
const BURST: usize = 32;
/// Period of the steady-state self-check (allocations and faults), ns.
const SELF_CHECK_NS: u64 = 100_000_000;

struct SteadyCheck {
    start_ns: u64,
    next_ns: u64,
    base: Option<(AllocCounts, ThreadUsage)>,
}

impl SteadyCheck {
    fn tick(&mut self, now: u64, node: &NodeCounters) {
        if now < self.next_ns {
            return;
        }
        self.next_ns = now + SELF_CHECK_NS;
        if now < self.start_ns {
            return;
        }
        let (a, u) = (alloc_check::thread_counts(), rt::thread_usage());
        match &self.base {
            None => {
                self.base = Some((a, u));
                node.steady.set(1);
            }
            Some((a0, u0)) => {
                node.steady_allocations.set(a.since(a0).allocs);
                node.steady_minor_faults.set(u.since(u0).minor_faults);
            }
        }
    }
}

/// Receives and validates the next sample of one input (counting gaps, invalid samples and
/// disconnects); `None` when it has nothing now.
fn take_one(inp: &mut Input, stream: u16, flags0: u16) -> Option<Held> {
    loop {
        let sub = inp.sub.as_mut()?;
        let sample = match sub.receive() {
            Ok(Some(s)) => s,
            Ok(None) => {
                // A re-attach after damaged rings is a transport error the operator should see.
                let r = sub.resyncs();
                if r != inp.resyncs_seen {
                    inp.counters.errors.add(r - inp.resyncs_seen);
                    inp.resyncs_seen = r;
                }
                return None;
            }
            Err(ReceiveError::Disconnected) | Err(_) => {
                // The publisher is gone and everything it sent was received: look for a new one.
                inp.sub = None;
                inp.next_open_ns = now_ns();
                return None;
            }
        };
        let t_dequeue = now_ns();
        let mut flags = flags0;
        let seq = sample.seq();
        // Saturating: a sequence number in shared memory may be anything.
        if inp.last_seq != 0 && seq > inp.last_seq.saturating_add(1) {
            inp.counters.dropped.add(seq - inp.last_seq - 1);
            flags |= FLAG_GAP_BEFORE;
        }
        inp.last_seq = seq;
        match validate(&sample, inp.kind) {
            Ok(meta) => {
                inp.counters.received.inc();
                return Some(Held {
                    sample,
                    stream,
                    flags,
                    t_dequeue,
                    meta,
                });
            }
            Err(_) => inp.counters.invalid.inc(),
        }
    }
}

/// The inputs, and what handles the samples of those that are not synchronised.
struct Service {
    inputs: Vec<Input>,
    /// One received, validated sample per input waiting for its turn (in sensor-time order).
    pending: [Option<Held>; MAX_STREAMS],
    /// Record flags every sample gets (SCHED_FIFO).
    flags0: u16,
    meas: measure::Measurements,
}

impl Service {
    /// The waiting sample with the oldest sensor stamp (ties: the first input), after refilling each
    /// input's empty slot; the synchronised inputs only with `paired`. At most one sample per input
    /// waits, so the EKF sees IMU and odometry interleaved as they were measured even after a stall
    /// left a backlog in several rings (a per-input burst would apply old odometry after newer IMU).
    fn next(&mut self, paired: bool) -> Option<(usize, Held)> {
        let mut oldest: Option<(u64, usize)> = None;
        for (i, inp) in self.inputs.iter_mut().enumerate() {
            if !paired && inp.sync_slot.is_some() {
                continue;
            }
            let slot = &mut self.pending[i];
            if slot.is_none() {
                *slot = take_one(inp, i as u16, self.flags0);
            }
            if let Some(h) = slot {
                let key = (h.sample.sensor_time(), i);
                if oldest.is_none_or(|o| key < o) {
                    oldest = Some(key);
                }
            }
        }
        let (_, i) = oldest?;
        Some((i, self.pending[i].take()?))
    }

    /// A sample of an input that is not synchronised: IMU and odometry go to the EKF, anything else
    /// is released unused.
    fn handle_unpaired(&mut self, i: usize, h: Held) {
        let inp = &self.inputs[i];
        match inp.kind {
            kind @ (StreamKind::Imu | StreamKind::Odometry) => {
                if self.meas.on_measurement(h, kind).is_err() {
                    inp.counters.invalid.inc();
                }
            }
            _ => self.meas.out.emit(h, Step::default()),
        }
    }

    /// Between two slices of a pair: takes and handles, in sensor-time order, what waits on the
    /// inputs that are not synchronised ([`BURST`] samples per input at most).
    fn serve_unpaired(&mut self) {
        for _ in 0..BURST * self.inputs.len() {
            let Some((i, h)) = self.next(false) else {
                break;
            };
            self.handle_unpaired(i, h);
        }
    }
}

/// The loop's state: inputs, synchroniser, and the fusion of pairs and of measurements.
struct FusionLoop {
    service: Service,
    syncer: Option<Syncer>,
    pair: pair::PairFuser,
}

impl FusionLoop {
    /// Everything the loop needs, allocated now; the inputs are opened by [`Self::open_missing`].
    fn new(cfg: &NodeConfig, sh: &Shared, outs: Outputs, flags0: u16) -> FusionLoop {
        let cam = cfg
            .streams
            .iter()
            .position(|s| s.kind == StreamKind::Camera);
        let lidar = cfg.streams.iter().position(|s| s.kind == StreamKind::Lidar);
        let paired = cam.zip(lidar);
        let inputs: Vec<Input> = cfg
            .streams
            .iter()
            .enumerate()
            .map(|(i, s)| Input {
                channel: s.channel.clone(),
                kind: s.kind,
                sub: None,
                last_seq: 0,
                resyncs_seen: 0,
                next_open_ns: 0,
                opened_before: false,
                counters: sh.streams[i].clone(),
                sync_slot: paired
                    .and_then(|(c, l)| (i == c).then_some(0).or((i == l).then_some(1))),
            })
            .collect();
        let lower_bound = |i: usize| {
            let s = &cfg.streams[i];
            cfg.sync_lower_bound_ns
                .iter()
                .find(|(n, _)| *n == s.channel)
                // Drivers tick at whole periods; 90 % of one is a safe lower bound that lets the
                // policy publish without waiting for the next message.
                .map_or((0.9e9 / s.rate_hz) as i64, |(_, b)| *b)
        };
        let bounds = paired.map_or([0, 0], |(c, l)| [lower_bound(c), lower_bound(l)]);
        let syncer = match Syncer::new(cfg.sync, bounds) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(
                    "node {}: synchroniser: {e}; camera and LiDAR are not paired",
                    cfg.name
                );
                None
            }
        };
        let projector = cfg.projection.as_ref().and_then(|p| {
            match Projector::new(&p.camera, &p.extrinsic, p.model) {
                Ok(pr) => Some(pr),
                Err(e) => {
                    tracing::error!("node {}: projection disabled: {e}", cfg.name);
                    None
                }
            }
        });
        let n_px = projector.as_ref().map_or(0, |p| {
            p.camera_info().width as usize * p.camera_info().height as usize
        });
        let out = Emitter {
            node: sh.node.clone(),
            stats: sh.stats.clone(),
            trace: sh.trace.clone(),
        };
        let pair = pair::PairFuser {
            out: out.clone(),
            projector,
            depth: vec![f32::NAN; n_px],
            depth_pub: outs.depth,
            depth_frame: 0,
            cloud_pub: outs.cloud,
            cloud_frame: 0,
            mcap: sh.mcap.clone(),
            slice_points: cfg.fuse_slice_points.max(1),
        };
        let meas = measure::Measurements {
            out,
            ekf: cfg.ekf.map(|spec| {
                let q = Ekf::default().process_noise();
                (Box::new(Ekf::with_history(q, spec.lag)), spec)
            }),
            ekf_started: false,
            ekf_time_ns: 0,
            has_odometry: cfg.streams.iter().any(|s| s.kind == StreamKind::Odometry),
            odometry_pub: outs.odometry,
            estimates: sh.estimates.clone(),
            mcap: sh.mcap.clone(),
        };
        FusionLoop {
            service: Service {
                inputs,
                pending: Default::default(),
                flags0,
                meas,
            },
            syncer,
            pair,
        }
    }

    /// Opens the inputs whose channel is missing and due for another look (every `period_ns`).
    fn open_missing(&mut self, now: u64, period_ns: u64) {
        for inp in self
            .service
            .inputs
            .iter_mut()
            .filter(|i| i.sub.is_none() && now >= i.next_open_ns)
        {
            inp.try_open(now, period_ns);
        }
    }

    /// Sleeps until any open input has data, at most `max_wait` (`reconnect` while an input is
    /// missing, then only that long when none is open). Returns at once while a received sample
    /// waits for its turn ([`Service::pending`]): a turn that ended at its [`BURST`] limit can leave
    /// one there with every channel empty, and `wait_any` only sees the channels.
    fn wait(&self, now: u64, max_wait: Duration, reconnect: Duration) {
        if self.service.pending.iter().any(Option::is_some) {
            return;
        }
        let inputs = &self.service.inputs;
        let mut refs: heapless::Vec<&Subscriber, MAX_STREAMS> = heapless::Vec::new();
        for s in inputs.iter().filter_map(|i| i.sub.as_ref()) {
            let _ = refs.push(s);
        }
        if refs.is_empty() {
            rt::sleep_until_ns(now + reconnect.as_nanos() as u64);
        } else {
            let wait = if refs.len() < inputs.len() {
                max_wait.min(reconnect)
            } else {
                max_wait
            };
            shm_transport::wait_any(&refs, wait);
        }
    }

    /// One turn: takes what waits ([`BURST`] samples per input at most) and handles it in
    /// sensor-time order. A pair the synchroniser completes is fused in slices, `between` running
    /// on the service at every slice boundary ([`Service::serve_unpaired`] in the node).
    fn serve(&mut self, between: &mut dyn FnMut(&mut Service)) {
        let FusionLoop {
            service,
            syncer,
            pair,
        } = self;
        for _ in 0..BURST * service.inputs.len() {
            let Some((i, h)) = service.next(true) else {
                break;
            };
            match (service.inputs[i].sync_slot, syncer.as_mut()) {
                (Some(slot), Some(sy)) => {
                    let stamp = h.sample.sensor_time() as i64;
                    let mut serve_others = || between(service);
                    let res = sy.add(slot, stamp, h, &mut |ev| {
                        pair.on_event(ev, &mut serve_others)
                    });
                    if let Err(e) = res {
                        // Non-monotonic stamps: counted, the sample is released unused.
                        service.inputs[i].counters.invalid.inc();
                        pair.out.emit(e.into_msg().msg, Step::default());
                    }
                }
                _ => service.handle_unpaired(i, h),
            }
        }
    }

    /// Releases every held sample (recorded as not fused).
    fn release_all(&mut self) {
        for h in self.service.pending.iter_mut().filter_map(Option::take) {
            self.pair.out.emit(h, Step::default());
        }
        if let Some(sy) = self.syncer.as_mut() {
            sy.drain(&mut |ev| self.pair.on_event(ev, &mut || {}));
        }
    }
}

/// The fusion thread: real-time set-up, report the status, loop until stop, release everything.
pub(crate) fn run(cfg: NodeConfig, sh: Shared, outs: Outputs, status_tx: Sender<RtStatus>) {
    let status = rt::setup_current_thread(&cfg.rt);
    let fifo = status.is_fifo();
    let _ = status_tx.send(status);
    drop(status_tx);

    let flags0 = if fifo { FLAG_SCHED_FIFO } else { 0 };
    let mut lp = FusionLoop::new(&cfg, &sh, outs, flags0);
    let reconnect_ns = cfg.reconnect_period.as_nanos() as u64;
    let mut check = SteadyCheck {
        start_ns: now_ns() + cfg.warmup.as_nanos() as u64,
        next_ns: 0,
        base: None,
    };
    // SYNC: Acquire pairs with NodeHandle's Release store of `stop`.
    while !sh.stop.load(Ordering::Acquire) {
        sh.node.loop_iterations.inc();
        let now = now_ns();
        lp.open_missing(now, reconnect_ns);
        if let Wakeup::Sleep { max_wait } = cfg.wakeup {
            lp.wait(now, max_wait, cfg.reconnect_period);
        }
        lp.serve(&mut Service::serve_unpaired);
        check.tick(now_ns(), &sh.node);
    }
    lp.release_all();
}
